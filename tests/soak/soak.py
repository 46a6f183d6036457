#!/usr/bin/env python3
"""soak: mixed load under chaos against a stack of its own, then an invariant
checker (make soak; SOAK_MINUTES, default 10).

The stack: scripts/stack with a var dir of its own (var/soak, or --var),
2 responders x 4 threads under multiwatch, 2 workers under their supervisor,
durable PostgreSQL commits. Ports: --http/--https/--pg (SOAK_HTTP_PORT,
SOAK_HTTPS_PORT, SOAK_PG_PORT), else free loopback ports.

Load (client threads, X-Requester "soak", every POST /tasks with an
Idempotency-Key and retried with it until 201): DAG batches with trigger
rules, batches under a concurrency rule (max 2 per tenant), tasks with
retries (failing once, or hanging past their heartbeat timeout), scheduled
starts, cancels, pauses and resumes, reads; two cron schedules (every 3 s,
catch-up all). The executor (ExecRx) answers start calls (sometimes 500, too
late or slowly), reports progress with PUT and outcomes with PATCH; the
end/cancel target (EndRx) is flaky too.

Chaos (every 2-6 s, one at random): kill -9 a responder, a worker or an
nginx worker; restart PostgreSQL (-m fast or -m immediate); fill the
end target's backlog (every call answered too late for 8 s).

Then: the chaos stops, paused tasks are resumed, schedules paused, the
system settles, and the checker (soaklib.Checker) reads the database, the
receivers' records and /metrics. Prints the summary, writes it to
--results (default var/soak-results/<time>.json) and exits 1 on any
violation.
"""

import argparse
import json
import os
import random
import socket
import sys
import threading
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import soaklib  # noqa: E402
from soaklib import REPO, Checker, Client, ExecRx, Faulty, Sampler, Stack, log  # noqa: E402

RULED_KIND = "soak-ruled"
RULE_MAX = 2
CRON_STEP = 3


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Load:
    """The client threads and what they were told (accepted 201s)."""

    def __init__(self, client, exec_rx, end_rx, threads):
        self.client, self.exec_rx, self.end_rx = client, exec_rx, end_rx
        self.sampler = None      # when set, bounds the ruled tasks waiting
        self.accepted = {}       # key -> (batch id, [task ids])
        self.gave_up = []        # keys never accepted within patience
        self.ops = Counter()
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(threads)]

    # Task shapes -------------------------------------------------------

    def start_action(self, **spec):
        return {"kind": "Webhook", "params": {"url": self.exec_rx.url("/start"), "body": spec}}

    def end_actions(self):
        return {"on_success": [{"kind": "Webhook", "params": {"url": self.end_rx.url("/ok")}}],
                "on_failure": [{"kind": "Webhook", "params": {"url": self.end_rx.url("/failed")}}],
                "on_cancel": [{"kind": "Webhook", "params": {"url": self.end_rx.url("/cancel")}}]}

    def t(self, lid, kind, outcome="success", work=0.1, puts=1, **fields):
        d = {"id": lid, "name": f"{kind} {lid}", "kind": kind, "timeout": 30,
             "on_start": self.start_action(outcome=outcome, work=work, puts=puts)}
        d.update(self.end_actions())
        d.update(fields)
        return d

    def dag(self):
        rule = random.choice(["all_success", "all_done", "one_success", "none_failed",
                              "one_failed", "all_failed"])
        a_out = random.choice(["success", "success", "fail"])
        return [self.t("a", "soak-dag", a_out),
                self.t("b", "soak-dag", dependencies=[{"id": "a", "requires_success": True}]),
                self.t("c", "soak-dag", random.choice(["success", "fail"]),
                       dependencies=[{"id": "a", "requires_success": False}]),
                self.t("d", "soak-dag", trigger_rule=rule,
                       dependencies=[{"id": "b"}, {"id": "c"}])]

    def ruled(self):
        tenant = random.choice(["t1", "t2", "t3"])
        rule = {"type": "Concurrency", "max_concurrency": RULE_MAX,
                "matcher": {"kind": RULED_KIND, "status": "Running", "fields": ["tenant"]}}
        return [self.t(f"r{i}", RULED_KIND, work=0.25, puts=2, metadata={"tenant": tenant},
                       rules=[rule], fair_by=["tenant"]) for i in range(3)]

    def retried(self):
        backoff = {"initial_ms": 200, "factor": 2, "max_ms": 1000}
        return [self.t("f1", "soak-retry", "fail_once", max_retries=2, retry_backoff=backoff),
                self.t("f2", "soak-retry", "fail_once", max_retries=1, retry_backoff=backoff),
                self.t("h1", "soak-retry", "hang", timeout=2, max_retries=1,
                       retry_backoff=backoff)]

    def scheduled(self):
        at = datetime.now(timezone.utc) + timedelta(seconds=random.uniform(1, 4))
        return [self.t(f"s{i}", "soak-sched", scheduled_at=at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
                for i in range(2)]

    def chain(self, kind):
        return [self.t("a", kind, work=1.5),
                self.t("b", kind, dependencies=[{"id": "a"}]),
                self.t("c", kind, dependencies=[{"id": "b"}])]

    # Calls -------------------------------------------------------------

    def create(self, tasks):
        key = str(uuid.uuid4())
        code, rh, body, _ = self.client.call("POST", "/tasks", tasks,
                                             headers={"Idempotency-Key": key}, retry_409=True)
        if code != 201:
            with self.lock:
                self.gave_up.append((key, code))
            return None
        ids = [t["id"] for t in body]
        with self.lock:
            self.accepted[key] = (rh.get("x-batch-id"), ids)
        return {t["local_id"]: t["id"] for t in body}

    def _loop(self):
        while not self.stopping.is_set():
            op = random.choices(["dag", "ruled", "retried", "scheduled", "cancel", "pause",
                                 "read"], [3, 2, 2, 1, 1, 1, 2])[0]
            self.ops[op] += 1
            try:
                getattr(self, f"op_{op}")()
            except Exception as e:
                print(f"load: {op}: {e!r}", file=sys.stderr, flush=True)
            self.stopping.wait(random.uniform(0.05, 0.25))

    def op_dag(self):
        self.create(self.dag())

    def op_ruled(self):
        # A rule lets 6 run at once: more than a short queue would only
        # lengthen the settling, not add contention.
        if self.sampler is None or self.sampler.pending < 40:
            self.create(self.ruled())

    def op_retried(self):
        self.create(self.retried())

    def op_scheduled(self):
        self.create(self.scheduled())

    def op_cancel(self):
        ids = self.create(self.chain("soak-cancel"))
        if ids:
            time.sleep(random.uniform(0, 1.0))
            victim = ids[random.choice("abc")]
            self.client.call("DELETE", f"/tasks/{victim}")

    def op_pause(self):
        ids = self.create(self.chain("soak-pause"))
        if ids:
            code, _, _, _ = self.client.call("POST", f"/tasks/{ids['c']}/pause")
            time.sleep(random.uniform(0.2, 1.5))
            # A retried resume may find it resumed already (409); the settle
            # step resumes whatever stays Paused.
            self.client.call("POST", f"/tasks/{ids['c']}/resume")

    def op_read(self):
        with self.lock:
            if not self.accepted:
                return
            bid, ids = random.choice(list(self.accepted.values()))
        tid = random.choice(ids)
        for path in (f"/tasks/{tid}", f"/batches/{bid}", f"/tasks/{tid}/history",
                     f"/tasks/{tid}/blockers", "/tasks?page_size=20"):
            code, _, body, _ = self.client.call("GET", path)
            if code == 200 and path == f"/tasks/{tid}" and body.get("id") != tid:
                self.client.bad.append(f"GET /tasks/{tid} answered task {body.get('id')}")


class Chaos:
    """One fault every 2-6 s, chosen at random; counts them by kind."""

    KINDS = [("kill_responder", 3), ("kill_worker", 3), ("kill_nginx_worker", 2),
             ("pg_restart_fast", 1), ("pg_restart_immediate", 1), ("webhook_backlog", 1)]

    def __init__(self, stack, end_rx):
        self.stack, self.end_rx = stack, end_rx
        self.faults = Counter()
        self.errors = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.thread.join(timeout=120)

    def _kill(self, pids, kind):
        if pids:
            pid = random.choice(pids)
            try:
                os.kill(pid, 9)
                self.faults[kind] += 1
            except ProcessLookupError:
                pass

    def _loop(self):
        while not self.stopping.wait(random.uniform(2, 6)):
            kind = random.choices([k for k, _ in self.KINDS], [w for _, w in self.KINDS])[0]
            try:
                if kind == "kill_responder":
                    self._kill(self.stack.responders(), kind)
                elif kind == "kill_worker":
                    self._kill(self.stack.workers(), kind)
                elif kind == "kill_nginx_worker":
                    self._kill(self.stack.nginx_workers(), kind)
                elif kind.startswith("pg_restart"):
                    self.stack.pg_restart(kind.rsplit("_", 1)[1])
                    self.faults[kind] += 1
                else:
                    self.end_rx.backlog_until = time.time() + 8
                    self.faults[kind] += 1
            except Exception as e:
                self.errors.append(f"{kind}: {e}")
                log(f"chaos: {kind}: {e}")


def wait_up(stack, client, timeout=60):
    """Waits until the whole stack is back (every process and /health)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stack.script("status", check=False).returncode == 0 and \
                len(stack.responders()) == 2 and len(stack.workers()) == 2:
            code, _, _ = client.once("GET", "/health")
            if code == 200:
                return True
        time.sleep(0.5)
    return False


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float,
                    default=float(os.environ.get("SOAK_MINUTES", "10")))
    ap.add_argument("--var", default=os.environ.get("SOAK_VAR", os.path.join(REPO, "var", "soak")))
    ap.add_argument("--bin", default=os.environ.get("SOAK_BIN", os.path.join(REPO, "build")))
    ap.add_argument("--http", type=int, default=int(os.environ.get("SOAK_HTTP_PORT", 0)))
    ap.add_argument("--https", type=int, default=int(os.environ.get("SOAK_HTTPS_PORT", 0)))
    ap.add_argument("--pg", type=int, default=int(os.environ.get("SOAK_PG_PORT", 0)))
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--results", default=os.environ.get("SOAK_RESULTS"))
    ap.add_argument("--keep", action="store_true", help="leave the stack running")
    args = ap.parse_args()
    args.minutes = min(max(args.minutes, 0.2), 24 * 60)
    ports = [args.http or free_port(), args.https or free_port(), args.pg or free_port()]

    stack = Stack(args.var, *ports, os.path.abspath(args.bin), extra={
        "TASKRUNNER_WEBHOOK_TIMEOUT_MS": "2000",
        "TASKRUNNER_RETRY_BASE_MS": "200",
        "TASKRUNNER_RETRY_CAP_MS": "2000",
        "TASKRUNNER_BREAKER_COOLDOWN_MAX_MS": "4000",
        "TASKRUNNER_SHUTDOWN_GRACE_MS": "3000",
    })
    log(f"soak: {args.minutes:g} min against a stack in {args.var} (http {ports[0]}, "
        f"pg {ports[2]}, binaries {args.bin})")
    stack.start()
    client = Client([stack.url], requester="soak", patience=150)
    started = time.time()
    summary = {"minutes": args.minutes, "started": datetime.now(timezone.utc).isoformat()}
    violations = []
    try:
        with ExecRx(client, threads=24) as exec_rx, Faulty() as end_rx:
            load = Load(client, exec_rx, end_rx, args.clients)
            sched_tpl = [load.t("x", "soak-cron")]
            for name in ("soak-every-3s-a", "soak-every-3s-b"):
                code, _, body, _ = client.call("POST", "/schedules", {
                    "name": name, "cron": f"*/{CRON_STEP} * * * * *", "overlap": "allow",
                    "catchup": "all", "tasks": sched_tpl})
                if code != 201:
                    raise RuntimeError(f"POST /schedules: {code} {body}")
            with Sampler(stack, RULED_KIND) as sampler:
                load.sampler = sampler
                for t in load.threads:
                    t.start()
                with Chaos(stack, end_rx) as chaos:
                    end = time.monotonic() + args.minutes * 60
                    while time.monotonic() < end:
                        time.sleep(min(30, max(0.1, end - time.monotonic())))
                        log(f"soak: {len(load.accepted)} batches accepted, faults "
                            f"{dict(chaos.faults)}, answers {dict(client.codes)}")
                log("soak: chaos stopped; waiting for the stack to be whole")
                load.stopping.set()
                for t in load.threads:
                    t.join(timeout=200)
                if not wait_up(stack, client):
                    violations.append("the stack was not whole again 60 s after the chaos")
                # Settle: schedules paused, paused tasks resumed, everything ends.
                for name in ("soak-every-3s-a", "soak-every-3s-b"):
                    client.call("POST", f"/schedules/{name}/pause")
                for (tid,) in stack.sql("SELECT id FROM tasks WHERE status = 'Paused'"):
                    client.call("POST", f"/tasks/{tid}/resume")
                end_rx.backlog_until = 0
                log("soak: settling")
                left = soaklib.wait_settled(stack, timeout=240)
                if left:
                    violations.append(f"not settled after 240 s: {left}")
            time.sleep(2.5)  # the last in-memory metrics flushes (1 s)
            log("soak: checking the invariants")
            chk = Checker(stack, client)
            chk.accepted(load.accepted)
            chk.terminal()
            chk.rules(RULED_KIND, RULE_MAX, sampler)
            chk.webhooks([exec_rx, end_rx])
            chk.retries()
            chk.progress(exec_rx)
            chk.acked(exec_rx)
            chk.schedules(CRON_STEP)
            chk.metrics()
            violations += chk.violations
            if load.gave_up:
                violations.append(f"creations never accepted within the clients' patience: "
                                  f"{len(load.gave_up)}, e.g. {load.gave_up[:3]}")
            if client.bad:
                violations.append(f"wrong answers (500 or mismatched): {len(client.bad)}, "
                                  f"e.g. {client.bad[:3]}")
            violations += [f"chaos could not inject: {e}" for e in chaos.errors[:5]]
            san = stack.sanitizer_reports()
            violations += [f"sanitizer report: {s}" for s in san]
            summary.update({
                "wall_seconds": round(time.time() - started, 1),
                "requests": sum(client.codes.values()),
                "answers": {str(k): v for k, v in sorted(client.codes.items(), key=str)},
                "operations": dict(load.ops),
                "faults": dict(chaos.faults),
                "receiver_faults": {"executor": dict(exec_rx.faults),
                                    "end_target": dict(end_rx.faults)},
                **chk.figures,
                "violations": violations,
            })
    finally:
        if not args.keep:
            stack.stop()
    results = args.results or os.path.join(
        REPO, "var", "soak-results", time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + ".json")
    os.makedirs(os.path.dirname(results), exist_ok=True)
    with open(results, "w") as f:
        json.dump(summary, f, indent=2)
    print("\n=== soak summary ===")
    for k, v in summary.items():
        if k != "violations":
            print(f"{k}: {json.dumps(v)}")
    print(f"violations: {len(violations)}")
    for v in violations:
        print(f"  VIOLATION: {v}")
    print(f"results: {results}")
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())

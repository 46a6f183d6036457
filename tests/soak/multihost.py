#!/usr/bin/env python3
"""multihost: several hosts on one PostgreSQL.

Two complete front stacks, as two hosts would run them: stack A (its own
PostgreSQL, nginx, 2 responders, 2 workers; var/multihost-a) and stack B
(nginx, 2 responders, 1 worker; var/multihost-b) whose services use A's
database (TASKRUNNER_STACK_DATABASE_URL), each on its own ports. Clients
spread every call over both (the soak's mixed load: DAGs with trigger
rules, concurrency rules, retries, scheduled starts, cancels, pauses,
progress and outcomes through the handles, which point at the stack whose
worker started the task), for --seconds; then the system settles and the
soak's invariant checker runs on the shared database, /metrics of both
hosts agree with it, both hosts served, and the workers of both hosts took work (a start call's handle names the
public URL of the host whose worker made it).
"""

import argparse
import os
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import soaklib  # noqa: E402
from soak import RULE_MAX, RULED_KIND, Load, free_port  # noqa: E402
from soaklib import REPO, Checker, Client, ExecRx, Faulty, Sampler, Stack, log  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--bin", default=os.environ.get("MULTIHOST_BIN", os.path.join(REPO, "build")))
    ap.add_argument("--var", default=os.path.join(REPO, "var", "multihost"))
    ap.add_argument("--clients", type=int, default=4)
    args = ap.parse_args()
    bin_dir = os.path.abspath(args.bin)
    extra = {"TASKRUNNER_WEBHOOK_TIMEOUT_MS": "2000", "TASKRUNNER_RETRY_BASE_MS": "200",
             "TASKRUNNER_RETRY_CAP_MS": "2000", "TASKRUNNER_BREAKER_COOLDOWN_MAX_MS": "4000"}
    a = Stack(args.var + "-a", free_port(), free_port(), free_port(), bin_dir, extra=extra)
    b = None
    violations = []
    rc = 1
    try:
        a.start()
        db = (f"postgresql://taskrunner@{urllib.parse.quote(a.run_dir, safe='')}:"
              f"{a.info['TASKRUNNER_PG_PORT']}/taskrunner")
        b = Stack(args.var + "-b", free_port(), free_port(), free_port(), bin_dir,
                  extra=dict(extra, TASKRUNNER_STACK_DATABASE_URL=db, TASKRUNNER_WORKERS="1"))
        b.start()
        log(f"multihost: host A {a.url} (its database), host B {b.url} (A's database: {db})")
        client = Client([a.url, b.url], requester="multihost", patience=120)
        per_host = {a.url: 0, b.url: 0}
        orig_once = client.once

        def once(method, path, body=None, headers=None, base=None):
            base = base or (a.url if time.monotonic_ns() % 2 else b.url)
            r = orig_once(method, path, body, headers, base)
            if r[0] is not None:
                with client.lock:
                    per_host[base] += 1
            return r
        client.once = once
        with ExecRx(client, threads=24) as exec_rx, Faulty() as end_rx:
            load = Load(client, exec_rx, end_rx, args.clients)
            with Sampler(a, RULED_KIND) as sampler:
                load.sampler = sampler
                for t in load.threads:
                    t.start()
                time.sleep(args.seconds)
                load.stopping.set()
                for t in load.threads:
                    t.join(timeout=200)
                for (tid,) in a.sql("SELECT id FROM tasks WHERE status = 'Paused'"):
                    client.call("POST", f"/tasks/{tid}/resume")
                log(f"multihost: load stopped ({len(load.accepted)} batches); settling")
                left = soaklib.wait_settled(a, timeout=240)
                if left:
                    violations.append(f"not settled after 240 s: {left}")
            time.sleep(2.5)
            chk = Checker(a, client)
            chk.accepted(load.accepted)
            chk.terminal()
            chk.rules(RULED_KIND, RULE_MAX, sampler)
            chk.webhooks([exec_rx, end_rx])
            chk.retries()
            chk.progress(exec_rx)
            chk.acked(exec_rx)
            chk.metrics()
            # The other host's /metrics are the same totals (from the database).
            chk_b = Checker(b, client)
            chk_b.metrics()
            violations += chk.violations + [f"host B: {v}" for v in chk_b.violations]
            if load.gave_up:
                violations.append(f"creations never accepted: {load.gave_up[:3]}")
            violations += client.bad[:5]
            for url, n in per_host.items():
                if n < 50:
                    violations.append(f"host {url} answered only {n} calls")
            # Which workers called: each worker's start calls carry the
            # handle of its own host's public URL.
            starts = [c for c in exec_rx.snapshot() if c.headers.get("x-task-trigger") == "start"]
            by_host = {a.url: 0, b.url: 0}
            for c in starts:
                h = c.query.get("handle", [""])[0]
                for url in by_host:
                    if h.startswith(url + "/"):
                        by_host[url] += 1
            for url, n in by_host.items():
                if n == 0:
                    violations.append(f"no worker of host {url} started a task")
            for s in (a, b):
                violations += [f"sanitizer report: {r}" for r in s.sanitizer_reports()]
            print("\n=== multihost summary ===")
            print(f"calls answered per host: {per_host}")
            print(f"start calls made by each host's workers: {by_host}")
            print(f"figures: {chk.figures}")
            print(f"violations: {len(violations)}")
            for v in violations:
                print(f"  VIOLATION: {v}")
            rc = 1 if violations else 0
    finally:
        if b is not None:
            b.stop()
        a.stop()
    return rc


if __name__ == "__main__":
    sys.exit(main())

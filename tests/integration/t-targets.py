"""t-targets: outbound isolation (API.md, "Outbound isolation").

- per-target cap: a receiver counting its concurrent connections never sees
  more than TASKRUNNER_MAX_INFLIGHT_PER_HOST (default 32) from the worker,
  and every call still arrives;
- a hanging target (accepts, never answers) does not delay a healthy one:
  with 200 calls hanging, a healthy target's task is called at once;
- a refusing target (nothing listens) is held back after 5 consecutive
  failures (the default; in a worker of its own, the stack's worker is
  configured to hold no target back): the worker logs it, its
  tasks wait Pending (not Claimed) with the target_unavailable blocker,
  without spending the attempts of their calls, and the gauge
  taskrunner_webhook_targets_unavailable counts it;
- the target comes back: a probe call succeeds, the worker logs the resume,
  the waiting tasks are called, the gauge and the blockers clear.
"""

import os
import socket
import threading
import time

from trlib import (_QuietServer, api, check, create_map, expect, new_kind, run, sql_count, step,
                   task, wait_for, webhook)
from seclib import paused_stack_worker
from workerlib import ExtraWorker, Hooks, free_port, worker_settings

CAP = int(os.environ.get("TASKRUNNER_MAX_INFLIGHT_PER_HOST") or 32)
FAILURES = 5  # the default, in a worker of its own (the stack's holds no target back)


class Hanging:
    """Accepts connections on 127.0.0.1 and never answers; counts them."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.stop = False
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        self.sock.settimeout(0.2)
        while not self.stop:
            try:
                c, _ = self.sock.accept()
                self.conns.append(c)
            except OSError:
                continue

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop = True
        self.thread.join(5)
        for c in self.conns:
            c.close()
        self.sock.close()
        return False


class Counting(Hooks):
    """A receiver answering 200 after `delay` s, counting concurrent calls."""

    def __init__(self, delay):
        super().__init__()
        self.delay = delay
        self.now = 0
        self.most = 0

    def respond(self, call):
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        time.sleep(self.delay)
        with self.lock:
            self.now -= 1
        return 200, b"", 0


def tasks_to(url, n, kind, prefix="t"):
    return [task(f"{prefix}{i}", kind=kind, timeout=86400, on_start=webhook(url))
            for i in range(n)]


def create_many(tasks):
    ids = []
    for i in range(0, len(tasks), 500):
        m, _ = create_map(tasks[i:i + 500])
        ids += [m[t["id"]]["id"] for t in tasks[i:i + 500]]
    return ids


def metric(name):
    _, _, _, raw = api("GET", "/metrics")
    text = raw.decode(errors="replace")
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def count_status(kind, status):
    return sql_count(f"SELECT count(*) FROM tasks WHERE kind = '{kind}' AND status = '{status}'")


def step_per_host_cap(rx):
    step(f"100 calls to one slow target: never more than {CAP} at once, all arrive")
    kind = new_kind("t-targets-cap")
    with Counting(0.3) as slow:
        create_many(tasks_to(slow.url("/slow"), 100, kind))
        wait_for(lambda: len(slow.received("/slow")) >= 100, 30, "100 calls to the slow target")
        print(f"   most concurrent calls seen: {slow.most}")
        check(slow.most <= CAP, f"{slow.most} concurrent calls to one target, cap {CAP}")
        check(slow.most >= CAP // 2, f"only {slow.most} concurrent calls: the cap is not used")


def step_hanging_target(rx):
    step("200 calls hang at one target; a healthy target is called at once")
    kind = new_kind("t-targets-hang")
    with Hanging() as hang, Hooks() as healthy:
        create_many(tasks_to(f"http://127.0.0.1:{hang.port}/hang", 200, kind))
        wait_for(lambda: len(hang.conns) >= CAP, 10, f"{CAP} connections to the hanging target")
        time.sleep(0.3)
        check(len(hang.conns) <= CAP,
              f"{len(hang.conns)} connections to the hanging target, cap {CAP}")
        # Claimed: the calls in flight and as many waiting in the worker; the
        # others went back to Pending (a claim's extra tasks are Claimed for
        # the moment it takes to hand them back).
        wait_for(lambda: count_status(kind, "Claimed") <= 2 * CAP, 5,
                 f"at most {2 * CAP} tasks Claimed behind the hanging target")
        claimed = count_status(kind, "Claimed")
        t0 = time.monotonic()
        m, _ = create_map([task("ok", kind=kind + "-ok", on_start=webhook(healthy.url("/ok")))])
        healthy.wait_calls("/ok", 1, timeout=5, what="the healthy target's call")
        took = time.monotonic() - t0
        print(f"   healthy target called {took * 1000:.0f} ms after creation "
              f"({len(hang.conns)} calls hanging, {claimed} tasks Claimed)")
        # Behind the hanging target it would wait for a webhook timeout (10 s
        # in the test stack); the bound is far from both that and a busy
        # machine's few hundred ms.
        limit = worker_settings().webhook_timeout_ms / 1000 / 3
        check(took < limit, f"the healthy target waited {took:.2f}s behind the hanging one "
              f"(a call to the hanging target holds for the webhook timeout)")


def step_refusing_then_back(rx):
    with paused_stack_worker(), ExtraWorker("worker-breaker", {
            "TASKRUNNER_BREAKER_FAILURES": str(FAILURES),
            "TASKRUNNER_BREAKER_COOLDOWN_MS": "1000"}) as w:
        refusing_then_back(w.log)


def refusing_then_back(worker_log):
    port = free_port()
    target = f"http://127.0.0.1:{port}"
    kind = new_kind("t-targets-refuse")
    step(f"a refusing target is held back after {FAILURES} failures; its tasks wait Pending")
    ids = create_many(tasks_to(f"{target}/back", 20, kind))
    wait_for(lambda: f"target {target} held back" in worker_log(), 20,
             "the worker to log the target held back")
    wait_for(lambda: sql_count(f"SELECT count(*) FROM held_targets WHERE target = '{target}'")
             == 1, 5, "the target in held_targets")

    def one_blocked():
        for tid in ids:
            body = expect(api("GET", f"/tasks/{tid}/blockers"), 200, "blockers")
            if {"type": "target_unavailable", "target": target} in body["blockers"]:
                return body
        return None
    body = wait_for(one_blocked, 10, "a task with the target_unavailable blocker")
    check(body["status"] == "Pending", f"a held-back task is {body['status']}, expected Pending")
    gauge = metric("taskrunner_webhook_targets_unavailable")
    check(gauge is not None and gauge >= 1,
          f"taskrunner_webhook_targets_unavailable is {gauge}, expected >= 1")
    failed = count_status(kind, "Failure")
    check(failed == 0, f"{failed} tasks failed while their target was held back")
    tries = sql_count("SELECT coalesce(max(d.attempts), 0) FROM deliveries d JOIN tasks t "
                      f"ON t.id = d.task_id WHERE t.kind = '{kind}'")
    check(tries < 5, f"a held-back call spent {tries} attempts")

    step("the target comes back: a probe succeeds, the target resumes, every task is called")
    back = Hooks()  # moved to the refused port
    handler = back.server.RequestHandlerClass
    back.server.server_close()
    back.server = _QuietServer(("127.0.0.1", port), handler)
    back.server.daemon_threads = True
    back.port = port
    back.thread = threading.Thread(target=back.server.serve_forever, daemon=True)
    with back:
        wait_for(lambda: f"target {target} resumed" in worker_log(), 30,
                 "the worker to log the target resumed")
        wait_for(lambda: len({c.headers.get("x-task-id") for c in back.received("/back")})
                 >= 20, 30, "every task called once the target is back")
        wait_for(lambda: sql_count(f"SELECT count(*) FROM held_targets WHERE target = "
                                   f"'{target}'") == 0, 5, "the hold to be gone")
        body = expect(api("GET", f"/tasks/{ids[0]}/blockers"), 200, "blockers")
        check(not any(b.get("type") == "target_unavailable" for b in body["blockers"]),
              f"a blocker is left after the resume: {body}")
        held = sql_count("SELECT count(*) FROM held_targets")  # others' (the hanging one)
        gauge = metric("taskrunner_webhook_targets_unavailable")
        check(gauge == held, f"the gauge says {gauge}, {held} targets are held back")
        failed = count_status(kind, "Failure")
        check(failed == 0, f"{failed} tasks failed although their target came back")


if __name__ == "__main__":
    run(step_per_host_cap, step_hanging_target, step_refusing_then_back)

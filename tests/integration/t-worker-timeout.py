"""t-worker-timeout: the heartbeat timeout (API.md, "Task statuses", "Count
progress fast").

A Running task whose last sign of life (its start, or any PATCH/PUT since) is
older than its `timeout` fails with failure_reason "Timeout"; the worker
then calls its on_failure actions and, since the executor must be told to
stop, its on_cancel actions too; a child requiring it fails. Heartbeats
(PUT and PATCH) keep it alive; once they stop, it times out a timeout later.
"""

import time

from trlib import (api, check, create_map, dep, expect, get_task, new_kind, step, task,
                   wait_status, webhook)
from workerlib import Hooks, action_ids, idem_key, parse_ts, run, wait_outbox_settled

TIMEOUT = 2  # seconds, the tasks' heartbeat timeout
LATE = 1.0   # how much after its deadline the timeout may be noticed


def timeout_task(hooks, lid, kind):
    return task(lid, kind=kind, timeout=TIMEOUT, on_start=webhook(hooks.url("/start")),
                on_failure=[webhook(hooks.url("/failure"))],
                on_cancel=[webhook(hooks.url("/cancel"))],
                on_success=[webhook(hooks.url("/success"))])


def check_timed_out(hooks, tid, last_sign, what, applied_within=0.0):
    """The task failed with "Timeout" between TIMEOUT and TIMEOUT + LATE after
    last_sign (a POSIX time; a sign of life that may take applied_within
    seconds to count), and both its on_failure and on_cancel fired."""
    t = wait_status(tid, "Failure", TIMEOUT + LATE + 5, f"{what} to time out")
    check(t["failure_reason"] == "Timeout",
          f"{what}: failure_reason {t['failure_reason']!r}, expected 'Timeout'")
    after = parse_ts(t["ended_at"]) - last_sign
    print(f"   {what}: timed out {after:.2f}s after its last sign of life")
    latest = TIMEOUT + LATE + applied_within
    check(TIMEOUT - 0.05 <= after <= latest,
          f"{what}: ended {after:.2f}s after its last sign of life, expected "
          f"{TIMEOUT}..{latest:g}s")

    full = get_task(tid)
    fail_id = action_ids(full, "End", "Failure")[0]
    cancel_id = action_ids(full, "Cancel")[0]
    calls = hooks.wait_calls("/failure", 1, tid, timeout=10, what=f"on_failure of {what}")
    h = calls[0].headers
    check(h.get("x-task-trigger") == "end" and h.get("x-task-status") == "Failure"
          and h.get("idempotency-key") == idem_key(tid, "end", fail_id, "Failure"),
          f"{what}: on_failure headers trigger {h.get('x-task-trigger')!r}, "
          f"status {h.get('x-task-status')!r}, key {h.get('idempotency-key')!r}")
    calls = hooks.wait_calls("/cancel", 1, tid, timeout=10, what=f"on_cancel of {what}")
    h = calls[0].headers
    check(h.get("x-task-trigger") == "cancel"
          and h.get("idempotency-key") == idem_key(tid, "cancel", cancel_id),
          f"{what}: on_cancel headers trigger {h.get('x-task-trigger')!r}, "
          f"key {h.get('idempotency-key')!r}")
    check(h.get("x-task-status") == "Failure",
          f"{what}: on_cancel X-Task-Status {h.get('x-task-status')!r}, expected the task's "
          f"status, Failure")
    wait_outbox_settled(tid)
    check(len(hooks.received("/failure", tid)) == 1, f"{what}: on_failure should fire once")
    check(len(hooks.received("/cancel", tid)) == 1, f"{what}: on_cancel should fire once")
    check(not hooks.received("/success", tid), f"{what}: on_success should not fire")
    return t


def part_no_heartbeat(rx):
    step(f"a Running task (timeout {TIMEOUT}s) without any heartbeat fails with 'Timeout'")
    with Hooks() as hooks:
        kind = new_kind("t-worker-timeout")
        t, _ = create_map([timeout_task(hooks, "silent", kind),
                           task("child", kind=kind, on_start=webhook(hooks.url("/start")),
                                dependencies=[dep("silent")],
                                on_failure=[webhook(hooks.url("/failure"))])])
        tid = t["silent"]["id"]
        started = wait_status(tid, "Running", 10)
        check_timed_out(hooks, tid, parse_ts(started["started_at"]), "the silent task")

        step("the timeout propagates: the child requiring it fails, its on_failure fires")
        child = wait_status(t["child"]["id"], "Failure", 10)
        want = f"Required parent task {tid} failed"
        check(child["failure_reason"] == want,
              f"child failure_reason {child['failure_reason']!r}, expected {want!r}")
        hooks.wait_calls("/failure", 1, t["child"]["id"], timeout=10,
                         what="the child's on_failure")
        step("a timed-out task accepts no more updates")
        resp = api("PATCH", f"/tasks/{tid}", {"status": "Success"})
        check(resp[0] == 409, f"PATCH Success after the timeout: expected 409, got {resp[0]}")


def part_heartbeats(rx):
    step(f"heartbeats (PUT, PATCH) every 1s for 4s keep a task (timeout {TIMEOUT}s) Running")
    with Hooks() as hooks:
        t, _ = create_map([timeout_task(hooks, "beating", new_kind("t-worker-timeout"))])
        tid = t["beating"]["id"]
        started = wait_status(tid, "Running", 10)
        began = parse_ts(started["started_at"])
        beats = 0
        last_sign = time.time()
        while time.time() - began < 4.0 and beats < 10:
            time.sleep(max(0.0, began + beats + 1.0 - time.time()))  # one beat per second
            if beats % 2 == 0:  # PUT and PATCH both are signs of life
                expect(api("PUT", f"/tasks/{tid}", {"new_success": 1, "new_failures": 0}), 202,
                       f"PUT heartbeat {beats + 1}")
            else:
                expect(api("PATCH", f"/tasks/{tid}", {"new_success": 1}), 200,
                       f"PATCH heartbeat {beats + 1}")
            last_sign = time.time()
            beats += 1
            s = get_task(tid)["status"]
            check(s == "Running", f"after heartbeat {beats} ({time.time() - began:.1f}s after "
                  f"the start) the task should be Running, got {s}")
        check(time.time() - began > TIMEOUT + LATE,
              "the heartbeats should outlast the timeout")

        step("once the heartbeats stop, the task times out a timeout later")
        # A PUT may be applied up to 1 s late (API.md): so may its heartbeat.
        done = check_timed_out(hooks, tid, last_sign, "the beating task", applied_within=1.0)
        check(done["success"] == beats,
              f"every accepted count is kept: success {done['success']}, expected {beats}")


if __name__ == "__main__":
    run(part_no_heartbeat, part_heartbeats)

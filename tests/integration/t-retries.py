"""t-retries: task retries with backoff and the manual re-run (API.md, "Retries (F4)"),
through the real stack.

- A task with max_retries 3 fails twice from its executor and succeeds on its third
  attempt: each attempt gets a new handle (?attempt=n) and X-Task-Attempt, the history
  shows every attempt and retry, on_failure never fires, the child waits and then runs,
  the counters add up, /blockers says retry_backoff while it waits.
- A callback of a superseded attempt is 409 "attempt superseded" and changes nothing.
- "retryable": false, and no retry left: the task fails for good, on_failure fires,
  the child fails by the cascade; a heartbeat timeout is retried (reason timeout).
- Cancel and pause during the backoff: no further attempt; resumed, it retries.
- Two workers and a due retry: one new attempt only; kill -9 of the worker during the
  backoff: the retry still happens, once.
- POST /tasks/{id}/retry (with ?downstream=true): the task and the descendants the
  cascade ended run again; 409 for a task that has not ended.
- Validation of max_retries and retry_backoff; the metrics.
"""

import os
import signal
import time

from trlib import (api, check, check_error, create_map, expect, get_task, new_kind, q, run,
                   sql, sql_count, step, task, wait_for, wait_status, webhook)
from workerlib import ExtraWorker, Hooks, stack_worker_pid, wait_stack_worker

FAST = {"initial_ms": 300, "factor": 2, "max_ms": 600, "jitter": "none"}


def handle_path(call):
    """The path and query of a start call's handle (under TR_URL)."""
    h = call.query["handle"][0]
    return h[h.index("/tasks/"):]


def history(tid):
    return expect(api("GET", f"/tasks/{tid}/history?page_size=100"), 200, "history")


def part_succeeds_on_third_attempt(rx):
    step("max_retries 3: fails twice from the executor, succeeds on the third attempt")
    kind = new_kind("t-retries")
    with Hooks() as hooks:
        ts, _ = create_map([
            task("r", kind=kind, max_retries=3, retry_backoff=FAST,
                 on_start=webhook(hooks.url("/start")),
                 on_success=[webhook(hooks.url("/ok"))], on_failure=[webhook(hooks.url("/ko"))]),
            task("child", kind=kind, on_start=webhook(hooks.url("/child")),
                 dependencies=[{"id": "r", "requires_success": True}])])
        tid, child = ts["r"]["id"], ts["child"]["id"]
        check(ts["r"]["max_retries"] == 3 and ts["r"]["retry_count"] == 0
              and ts["r"]["retry_backoff"] == FAST and ts["r"]["next_retry_at"] is None,
              f"the task object shows the policy: {ts['r']}")
        handles = []
        for attempt in (1, 2, 3):
            call = hooks.wait_calls("/start", attempt, tid, timeout=15)[-1]
            check(call.headers.get("x-task-attempt") == str(attempt),
                  f"attempt {attempt}: X-Task-Attempt {call.headers.get('x-task-attempt')!r}")
            handle = handle_path(call)
            check(handle.endswith(f"?attempt={attempt}"), f"attempt {attempt}: handle {handle}")
            handles.append(handle)
            wait_status(tid, "Running")
            expect(api("PUT", handle, {"new_success": 1, "new_failures": 0}), 202, "PUT")
            if attempt < 3:
                t = expect(api("PATCH", handle, {"status": "Failure",
                                                 "failure_reason": f"flaky {attempt}"}),
                           200, f"PATCH Failure of attempt {attempt}")
                check(t["status"] == "Pending" and t["retry_count"] == attempt
                      and t["next_retry_at"] and t["failure_reason"] == f"flaky {attempt}",
                      f"after failure {attempt}: {t}")
                b = expect(api("GET", f"/tasks/{tid}/blockers"), 200, "blockers")
                check(any(x["type"] == "retry_backoff" for x in b["blockers"]),
                      f"blockers during the backoff: {b}")
                check(get_task(child)["status"] == "Waiting", "the child must keep waiting")
            else:
                t = expect(api("PATCH", handle, {"status": "Success"}), 200, "PATCH Success")
                check(t["status"] == "Success" and t["success"] == 3,
                      f"counters are cumulative over attempts: {t}")
        hooks.wait_calls("/ok", 1, tid)
        hooks.wait_calls("/child", 1, child)
        check(not hooks.received("/ko", tid), "on_failure fired for a retried failure")

        step("a callback of a superseded attempt: 409 attempt superseded, nothing changed")
        for method, body in (("PATCH", {"status": "Failure", "failure_reason": "late"}),
                             ("PUT", {"new_success": 5})):
            r = api(method, handles[0], body)
            check_error(r, 409, f"{method} from attempt 1")
            check(r[2]["error"] == "attempt superseded", f"{method}: {r[2]}")
        check(get_task(tid)["success"] == 3, "a superseded callback changed the counters")

        step("the history shows each attempt and each retry")
        ev = history(tid)
        attempts = [e["detail"].get("attempt") for e in ev
                if e["event"] == "status" and e["to_status"] == "Claimed"]
        retries = [(e["detail"]["retry_count"], e["detail"]["reason"], e["detail"]["attempt"])
                   for e in ev if e["event"] == "retry"]
        check(attempts == [1, 2, 3], f"claims per attempt: {attempts}")
        check(retries == [(1, "failure", 1), (2, "failure", 2)], f"retry events: {retries}")
        for e in ev:
            if e["event"] in ("status", "retry"):
                print(f"   {e['event']:<7} {e['from_status']:>8} -> {e['to_status']:<8} "
                      f"{ {k: v for k, v in e['detail'].items() if k != 'next_retry_at'} }")


def part_final_failures(rx):
    step("\"retryable\": false and no retry left: the task fails for good and cascades")
    kind = new_kind("t-retries-final")
    with Hooks() as hooks:
        ts, _ = create_map([
            task("nr", kind=kind, max_retries=5, on_start=webhook(hooks.url("/s")),
                 on_failure=[webhook(hooks.url("/ko"))]),
            task("last", kind=kind, max_retries=1, retry_backoff=FAST,
                 on_start=webhook(hooks.url("/s")), on_failure=[webhook(hooks.url("/ko"))]),
            task("kid", kind=kind, on_start=webhook(hooks.url("/kid")),
                 dependencies=[{"id": "last", "requires_success": True}])])
        nr, last, kid = ts["nr"]["id"], ts["last"]["id"], ts["kid"]["id"]
        call = hooks.wait_calls("/s", 1, nr)[0]
        wait_status(nr, "Running")
        t = expect(api("PATCH", handle_path(call), {"status": "Failure", "failure_reason": "bad",
                                                    "retryable": False}), 200, "PATCH final")
        check(t["status"] == "Failure" and t["retry_count"] == 0, f"not retried: {t}")
        hooks.wait_calls("/ko", 1, nr)
        check_error(api("PATCH", f"/tasks/{nr}", {"status": "Failure", "failure_reason": "x",
                                                   "retryable": "no"}), 400, "retryable not bool")
        for attempt in (1, 2):
            call = hooks.wait_calls("/s", attempt, last, timeout=15)[-1]
            wait_status(last, "Running")
            expect(api("PATCH", handle_path(call), {"status": "Failure",
                                                    "failure_reason": f"f{attempt}"}), 200, "PATCH")
        wait_status(last, "Failure")
        hooks.wait_calls("/ko", 1, last)
        k = wait_status(kid, "Failure")
        check(k["failure_reason"] == f"Required parent task {last} failed", f"cascade: {k}")

        step("POST /tasks/{id}/retry: 409 before it ends; with ?downstream=true the child "
             "runs again")
        check_error(api("POST", f"/tasks/{kid}/retry"), 409, "re-run of the child alone")
        r = expect(api("POST", f"/tasks/{last}/retry?downstream=true"), 200, "re-run downstream")
        check(r["status"] == "Pending" and r["rearmed"] == [kid] and r["retry_count"] == 1,
              f"re-run answer: {r}")
        check(get_task(kid)["status"] == "Waiting", "the child is re-armed")
        call = hooks.wait_calls("/s", 3, last, timeout=15)[-1]
        check(call.headers.get("x-task-attempt") == "3", "a re-run is a new attempt")
        wait_status(last, "Running")
        check_error(api("POST", f"/tasks/{last}/retry"), 409, "re-run of a Running task")
        expect(api("PATCH", handle_path(call), {"status": "Success"}), 200, "PATCH Success")
        hooks.wait_calls("/kid", 1, kid)
        ev = history(last)
        check(any(e["event"] == "rerun" and e["detail"]["rearmed"] == [kid] for e in ev),
              "the re-run is in the history")


def part_timeout_cancel_pause(rx):
    step("a heartbeat timeout is retried; cancel during the backoff: no further attempt")
    kind = new_kind("t-retries-timeout")
    with Hooks() as hooks:
        ts, _ = create_map([task("hb", kind=kind, timeout=1, max_retries=2,
                                 retry_backoff={"initial_ms": 2000, "jitter": "none"},
                                 on_start=webhook(hooks.url("/s")))])
        tid = ts["hb"]["id"]
        hooks.wait_calls("/s", 1, tid)
        t = wait_for(lambda: (lambda t: t if t["retry_count"] == 1 else None)(get_task(tid)),
                     10, "the timeout's retry")
        check(t["status"] == "Pending" and t["failure_reason"] == "Timeout", f"{t}")
        check([e["detail"]["reason"] for e in history(tid) if e["event"] == "retry"]
              == ["timeout"], "retry reason timeout")
        expect(api("DELETE", f"/tasks/{tid}"), 200, "cancel during the backoff")
        time.sleep(2.5)  # past the retry time: the scenario, not a wait for a state
        check(len(hooks.received("/s", tid)) == 1 and get_task(tid)["status"] == "Canceled",
              "a canceled task was started again")

        step("pause during the backoff holds it; resumed, it retries")
        ts, _ = create_map([task("p", kind=kind, max_retries=1,
                                 retry_backoff={"initial_ms": 500, "jitter": "none"},
                                 on_start=webhook(hooks.url("/p")))])
        tid = ts["p"]["id"]
        call = hooks.wait_calls("/p", 1, tid)[0]
        wait_status(tid, "Running")
        expect(api("PATCH", handle_path(call), {"status": "Failure", "failure_reason": "x"}),
               200, "fail")
        expect(api("POST", f"/tasks/{tid}/pause"), 200, "pause during the backoff")
        time.sleep(1.0)  # past the retry time
        check(len(hooks.received("/p", tid)) == 1, "a paused task was started")
        expect(api("POST", f"/tasks/{tid}/resume"), 200, "resume")
        hooks.wait_calls("/p", 2, tid, timeout=10)
        expect(api("DELETE", f"/tasks/{tid}"), 200, "cancel")


def part_two_workers_and_a_crash(rx):
    step("two workers and 20 due retries: each retry is one new attempt")
    kind = new_kind("t-retries-race")
    with Hooks() as hooks, ExtraWorker("worker-retries"):
        ts, _ = create_map([task(f"w{i}", kind=kind, max_retries=1,
                                 retry_backoff={"initial_ms": 400, "jitter": "none"},
                                 on_start=webhook(hooks.url("/w"))) for i in range(20)])
        ids = [t["id"] for t in ts.values()]
        for tid in ids:
            call = hooks.wait_calls("/w", 1, tid, timeout=15)[0]
            wait_status(tid, "Running")
            expect(api("PATCH", handle_path(call), {"status": "Failure", "failure_reason": "x"}),
                   200, "fail")
        for tid in ids:
            call = hooks.wait_calls("/w", 2, tid, timeout=15)[-1]
            check(call.headers.get("x-task-attempt") == "2", "second attempt")
        time.sleep(1.0)  # a duplicate start would have come by now
        counts = [len(hooks.received("/w", tid)) for tid in ids]
        check(counts == [2] * 20, f"start calls per task: {counts}")
        claims = sql_count(f"SELECT count(*) FROM task_events e JOIN tasks t ON t.id = e.task_id "
                           f"WHERE t.kind = {q(kind)} AND e.event = 'status' "
                           f"AND e.to_status = 'Claimed'")
        check(claims == 40, f"claims: {claims}, expected 40")
        for tid in ids:
            expect(api("DELETE", f"/tasks/{tid}"), 200, "cancel")

    step("kill -9 of the worker during the backoff: the retry still happens, once")
    kind = new_kind("t-retries-crash")
    with Hooks() as hooks:
        ts, _ = create_map([task("k", kind=kind, max_retries=1,
                                 retry_backoff={"initial_ms": 1500, "jitter": "none"},
                                 on_start=webhook(hooks.url("/k")))])
        tid = ts["k"]["id"]
        call = hooks.wait_calls("/k", 1, tid)[0]
        wait_status(tid, "Running")
        expect(api("PATCH", handle_path(call), {"status": "Failure", "failure_reason": "x"}),
               200, "fail")
        pid = stack_worker_pid()
        check(pid, "no stack worker")
        os.kill(pid, signal.SIGKILL)
        wait_stack_worker(pid)
        hooks.wait_calls("/k", 2, tid, timeout=20)
        time.sleep(1.0)  # a duplicate start would have come by now
        check(len(hooks.received("/k", tid)) == 2, "the retry was made more than once")
        expect(api("DELETE", f"/tasks/{tid}"), 200, "cancel")


def part_validation_and_metrics(rx):
    step("max_retries and retry_backoff are validated with their paths")
    kind = new_kind("t-retries-bad")
    cases = [({"max_retries": 101}, "[0].max_retries"),
             ({"max_retries": -1}, "[0].max_retries"),
             ({"retry_backoff": {"initial_ms": 0}}, "[0].retry_backoff.initial_ms"),
             ({"retry_backoff": {"factor": 11}}, "[0].retry_backoff.factor"),
             ({"retry_backoff": {"initial_ms": 5000, "max_ms": 1000}},
              "[0].retry_backoff.max_ms"),
             ({"retry_backoff": {"jitter": "some"}}, "[0].retry_backoff.jitter"),
             ({"retry_backoff": {"intial_ms": 5}}, "[0].retry_backoff.intial_ms"),
             ({"retry_backoff": 5}, "[0].retry_backoff")]
    for fields, path in cases:
        r = api("POST", "/tasks", [task("v", kind=kind, **fields)])
        check_error(r, 400, f"{fields}")
        got = [d["field"] for d in r[2].get("fields", r[2].get("details", []))
               if isinstance(d, dict)]
        check(path in got, f"{fields}: expected a problem at {path}, got {r[2]}")
    r = expect(api("POST", "/tasks", [task("ok", kind=kind, max_retries=2,
                                           retry_backoff={"factor": 1.5, "jitter": "EQUAL"})]),
               201, "a valid policy")
    check(r[0]["retry_backoff"] == {"initial_ms": 1000, "factor": 1.5, "max_ms": 3600000,
                                    "jitter": "equal"}, f"normalized: {r[0]['retry_backoff']}")
    expect(api("DELETE", f"/tasks/{r[0]['id']}"), 200, "cancel")

    step("the metrics count retries by reason and attempts per ended task")
    lines = api("GET", "/metrics")[3].decode().splitlines()
    retries = " ".join(x for x in lines if x.startswith("taskrunner_task_retries_total{"))
    for reason in ("failure", "timeout", "manual"):
        check(f'reason="{reason}"' in retries, f"no retries counted for {reason}: {retries}")
    for name in ('taskrunner_task_attempts_bucket{le="3"}', "taskrunner_task_attempts_count"):
        check(any(x.startswith(name) for x in lines), f"/metrics lacks {name}")


if __name__ == "__main__":
    run(part_succeeds_on_third_attempt, part_final_failures, part_timeout_cancel_pause,
        part_two_workers_and_a_crash, part_validation_and_metrics)

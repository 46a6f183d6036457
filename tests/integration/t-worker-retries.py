"""t-worker-retries: failed webhook calls are retried with exponential backoff
(API.md, "Webhooks sent by the worker").

- an on_start target answering 500 twice, then 200: the task is Running after
  three attempts, all with the same Idempotency-Key, the waits between them
  growing as TASKRUNNER_RETRY_BASE_MS/FACTOR/CAP of the stack's worker say;
- a dead on_start target (nothing listens): after TASKRUNNER_RETRY_ATTEMPTS
  attempts the task fails, its failure_reason naming on_start, and its
  on_failure actions fire;
- an end webhook that always fails: after every attempt its delivery is kept
  as a dead letter (deliveries.state = 'dead').

The three run at once to keep the test short; the stack's worker settings
are read from its environment.
"""

from trlib import (check, create_map, get_task, new_kind, patch_task, step, task, wait_for,
                   wait_status, webhook)
from workerlib import Hooks, action_ids, deliveries, free_port, idem_key, run, worker_settings

HOOKS = None  # the receiver of every part (a Hooks, set in __main__)
SLACK_MS = 60       # scheduling slack below the lowest expected wait
LATE_MS = 1500      # how much later than the highest expected wait an attempt may come


def check_gaps(calls, settings, what):
    """The waits between successive attempts lie in the backoff ranges."""
    gaps = [(b.at - a.at) * 1000 for a, b in zip(calls, calls[1:])]
    print(f"   {what}: waits between attempts (ms): {[round(g) for g in gaps]}")
    for k, gap in enumerate(gaps, start=1):
        lo, hi = settings.backoff_range_ms(k)
        check(lo - SLACK_MS <= gap <= hi + LATE_MS,
              f"{what}: wait after attempt {k} was {gap:.0f} ms, expected {lo:.0f}..{hi:.0f} ms "
              f"(base {settings.retry_base_ms}, factor {settings.retry_factor}, "
              f"cap {settings.retry_cap_ms})")
    return gaps


_made = {}  # what setup() made, shared by the parts


def setup():
    """Creates the three tasks once (they run at once, keeping the test short);
    returns (hooks, settings, {local id: task id}, time budget in seconds)."""
    if _made:
        return _made["hooks"], _made["settings"], _made["ids"], _made["budget"]
    settings = worker_settings()
    print(f"worker settings: {settings}")
    check(settings.retry_attempts >= 3,
          f"this test needs TASKRUNNER_RETRY_ATTEMPTS >= 3, the worker has "
          f"{settings.retry_attempts}")
    budget = settings.all_retries_s() + settings.retry_attempts * 1.0 + 10
    kind = new_kind("t-worker-retry")
    dead_url = f"http://127.0.0.1:{free_port()}/nothing-here"
    hooks = HOOKS
    hooks.sequence("/flaky", [500, 500], then=200)
    hooks.fixed("/end-broken", 500, b'{"error": "down"}')

    step("create: a flaky on_start, a dead on_start, a task whose on_success always fails")
    t, _ = create_map([
        task("flaky", kind=kind, on_start=webhook(hooks.url("/flaky"))),
        task("dead", kind=kind, on_start=webhook(dead_url),
             on_failure=[webhook(hooks.url("/dead-failure"))],
             on_success=[webhook(hooks.url("/dead-success"))]),
        task("broken-end", kind=kind, on_start=webhook(hooks.url("/ok")),
             on_success=[webhook(hooks.url("/end-broken"))])])
    ids = {lid: x["id"] for lid, x in t.items()}
    wait_status(ids["broken-end"], "Running", 10)
    patch_task(ids["broken-end"], {"status": "Success"})
    _made.update(hooks=hooks, settings=settings, ids=ids, budget=budget)
    return hooks, settings, ids, budget


def part_flaky_start(rx):
    hooks, settings, ids, budget = setup()
    step("flaky on_start: 500, 500, 200 -> Running after three attempts")
    wait_status(ids["flaky"], "Running", budget)
    calls = hooks.received("/flaky")
    check(len(calls) == 3, f"on_start should be tried 3 times, got {len(calls)}")
    start_id = action_ids(get_task(ids["flaky"]), "Start")[0]
    want = idem_key(ids["flaky"], "start", start_id)
    keys = [c.headers.get("idempotency-key") for c in calls]
    check(keys == [want] * 3, f"every attempt should carry Idempotency-Key {want}, got {keys}")
    check(all(c.headers.get("x-task-trigger") == "start" for c in calls),
          "every attempt is a start call")

    step("flaky on_start: the waits between attempts grow (backoff with jitter)")
    gaps = check_gaps(calls, settings, "flaky on_start")
    lo2 = settings.backoff_range_ms(2)[0]
    hi1 = settings.backoff_range_ms(1)[1]
    if lo2 >= hi1:  # the ranges do not overlap: the second wait must be longer
        check(gaps[1] > gaps[0], f"the second wait ({gaps[1]:.0f} ms) should be longer "
              f"than the first ({gaps[0]:.0f} ms)")
    rows = [r for r in deliveries(ids["flaky"]) if r["trigger"] == "Start"]
    check(len(rows) == 1 and rows[0]["state"] == "done" and rows[0]["attempts"] == "3",
          f"one start delivery, done after 3 attempts, expected; got {rows}")


def part_dead_start_target(rx):
    hooks, settings, ids, budget = setup()
    step(f"dead on_start target: Failure after {settings.retry_attempts} attempts, "
         "failure_reason names on_start")
    dead = wait_status(ids["dead"], "Failure", budget)
    reason = dead["failure_reason"] or ""
    check("on_start" in reason, f"failure_reason should mention on_start, got {reason!r}")
    rows = [r for r in deliveries(ids["dead"]) if r["trigger"] == "Start"]
    check(len(rows) == 1 and rows[0]["state"] == "failed"
          and rows[0]["attempts"] == str(settings.retry_attempts),
          f"one start delivery, failed after {settings.retry_attempts} attempts, expected; "
          f"got {rows}")
    check(dead["started_at"] is None and dead["ended_at"] is not None,
          f"the dead task never ran: started_at {dead['started_at']!r}, "
          f"ended_at {dead['ended_at']!r}")

    step("dead on_start target: its on_failure fires (and not its on_success)")
    calls = hooks.wait_calls("/dead-failure", 1, ids["dead"], timeout=10)
    h = calls[0].headers
    check(h.get("x-task-trigger") == "end" and h.get("x-task-status") == "Failure",
          f"on_failure headers: trigger {h.get('x-task-trigger')!r}, "
          f"status {h.get('x-task-status')!r}")
    check(not hooks.received("/dead-success"), "on_success of the dead task was called")


def part_dead_letter(rx):
    hooks, settings, ids, budget = setup()
    step(f"always failing on_success: a dead letter after {settings.retry_attempts} attempts")
    calls = hooks.wait_calls("/end-broken", settings.retry_attempts, ids["broken-end"],
                             timeout=budget)

    def dead_row():
        rows = [r for r in deliveries(ids["broken-end"]) if r["trigger"] == "End"]
        return rows if rows and rows[0]["state"] == "dead" else None
    rows = wait_for(dead_row, 10, "the on_success delivery to become 'dead'")
    check(len(rows) == 1 and rows[0]["attempts"] == str(settings.retry_attempts)
          and "500" in rows[0]["last_error"],
          f"one End delivery, dead after {settings.retry_attempts} attempts with the "
          f"HTTP 500 as last_error, expected; got {rows}")
    calls = hooks.received("/end-broken", ids["broken-end"])
    check(len(calls) == settings.retry_attempts,
          f"on_success should be tried {settings.retry_attempts} times, got {len(calls)}")
    end_id = action_ids(get_task(ids["broken-end"]), "End", "Success")[0]
    want = idem_key(ids["broken-end"], "end", end_id, "Success")
    keys = {c.headers.get("idempotency-key") for c in calls}
    check(keys == {want}, f"every attempt should carry Idempotency-Key {want}, got {keys}")
    check_gaps(calls, settings, "always failing on_success")
    check(get_task(ids["broken-end"])["status"] == "Success",
          "the task stays Success whatever its end webhook does")


if __name__ == "__main__":
    with Hooks() as HOOKS:
        run(part_flaky_start, part_dead_start_target, part_dead_letter)

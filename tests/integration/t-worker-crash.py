"""t-worker-crash: the worker killed (SIGKILL) in the middle of a run loses
nothing (API.md, "Rules"; STYLE.md, "Worker": recovery of deliveries left in
flight).

30 tasks under a rule of 3; the executor answers each on_start after 150 ms
and ends the task about 100 ms later. After about 10 have started, while
on_start calls are in flight, the stack's worker process is killed with
SIGKILL; its supervisor starts a new one, which takes back the calls the
dead one had in flight (its owner lock is gone). The executor treats the
answers the dead worker never read as lost and ends those tasks only when
their on_start comes again. Every task ends Success, every on_start arrived
at least once (repeats carry the same Idempotency-Key), and the rule of 3
held throughout (by the executor's count and in the database).

A call taken back for a task that ended meanwhile (its executor reported
Success while the worker was dead) is moot: it is not made again.
"""

import os
import signal
import urllib.parse

from trlib import (api, check, create, expect, get_task, new_kind, q, step, task, wait_for,
                   webhook)
from workerlib import (CountSampler, Executor, Hooks, action_ids, idem_key, run, stack_worker_pid,
                       statuses, wait_outbox_settled, wait_stack_worker)

N = 30
MAX = 3
KILL_AFTER = 10


def part_kill_worker(rx):
    kind = new_kind("t-worker-crash")
    rule = {"type": "Concurrency", "max_concurrency": MAX,
            "matcher": {"kind": kind, "status": "Running", "fields": []}}
    # on_start is answered after 150 ms, so that the kill finds calls in flight.
    db = CountSampler(f"SELECT '', count(*) FROM tasks WHERE kind = {q(kind)} "
                      "AND status IN ('Claimed', 'Running')")
    with Hooks() as hooks, Executor(hooks, "/start", delay=0.1,
                                    answer=lambda call: (200, b"", 0.15)) as ex, db:
        step("the stack's worker is running")
        old = wait_stack_worker(timeout=15)
        print(f"   worker pid {old}")

        step(f"create {N} tasks under a rule of {MAX}")
        body, _ = create([task(f"c{i}", kind=kind, rules=[rule],
                               on_start=webhook(hooks.url("/start"))) for i in range(N)])
        ids = [t["id"] for t in body]

        step(f"after {KILL_AFTER} tasks started, kill -9 the worker while it waits for an "
             "on_start answer")
        wait_for(lambda: len(ex.started()) >= KILL_AFTER and ex.answering() > 0, 30,
                 f"{KILL_AFTER} tasks to start, and an on_start call in flight")
        check(stack_worker_pid() == old, "the worker changed before the kill")
        # The dead worker never reads these answers: the executor waits for
        # the calls to come again (from the new worker) before ending them.
        lost = ex.drop_unanswered()
        os.kill(old, signal.SIGKILL)
        killed_at = len(ex.started())
        print(f"   killed pid {old} after {killed_at} starts, {len(lost)} call(s) in flight")

        step("the supervisor starts a new worker")
        new = wait_stack_worker(old_pid=old, timeout=15)
        print(f"   new worker pid {new}")

        step("every task ends Success")
        ex.wait_ended(ids, timeout=45)
        ex.check_clean()
        st = statuses(ids)
        check(all(s == "Success" for s in st.values()),
              f"every task should be Success: {sorted(st.values())}")

        step("the calls in flight at the kill were made again by the new worker")
        for tid in lost:
            n = len(ex.start_calls[tid])
            check(n >= 2, f"task {tid}: its on_start was in flight at the kill and should be "
                  f"made again, got {n} call(s)")

        step("every on_start arrived, repeats with the same Idempotency-Key")
        dups = 0
        for tid in ids:
            calls = ex.start_calls.get(tid, [])
            check(calls, f"task {tid}: on_start never arrived")
            want = idem_key(tid, "start", action_ids(get_task(tid), "Start")[0])
            keys = {c.headers.get("idempotency-key") for c in calls}
            check(keys == {want}, f"task {tid}: on_start Idempotency-Keys {keys}, "
                  f"expected only {want}")
            dups += len(calls) - 1
        print(f"   {dups} repeated on_start call(s); {len(ex.late_starts)} after the task ended")

        step(f"the rule of {MAX} held throughout")
        db.check_clean()
        print(f"   most running at once: {ex.max_running}; in the database (Claimed or "
              f"Running): {db.max_by_key.get('', 0)} in {db.samples} samples")
        check(ex.max_running <= MAX, f"rule of {MAX} exceeded: {ex.max_running} ran at once")
        check(db.max_by_key.get("", 0) <= MAX,
              f"rule of {MAX} exceeded in the database: {db.max_by_key.get('', 0)} tasks "
              f"Claimed or Running at once")


def part_task_ended_while_worker_dead(rx):
    step("a task's on_start is in flight when the worker is killed")
    kind = new_kind("t-worker-crash-ended")
    with Hooks() as hooks:
        hooks.fixed("/slow-start", 200, b"", delay=1.0)
        old = wait_stack_worker(timeout=15)
        body, _ = create([task("slow", kind=kind, on_start=webhook(hooks.url("/slow-start")))])
        tid = body[0]["id"]
        call = hooks.wait_calls("/slow-start", 1, tid, timeout=10)[0]
        check(get_task(tid)["status"] == "Claimed", "the task should be Claimed")
        os.kill(old, signal.SIGKILL)

        step("the executor ends the task (PATCH Success) before a new worker runs")
        handle = urllib.parse.urlsplit(call.query["handle"][0]).path
        done = expect(api("PATCH", handle, {"status": "Success"}), 200, "PATCH Success")
        check(done["status"] == "Success", f"PATCH answered {done['status']}")

        step("the new worker takes back the dead worker's call: moot, it is not made again")
        wait_stack_worker(old_pid=old, timeout=15)
        rows = wait_outbox_settled(tid, timeout=15)
        calls = hooks.received("/slow-start", tid)
        check(len(calls) == 1,
              f"on_start of a task that had already ended (Success) was made again after the "
              f"recovery: {len(calls)} calls; deliveries {rows}")
        check(get_task(tid)["status"] == "Success", "the task should stay Success")


if __name__ == "__main__":
    run(part_kill_worker, part_task_ended_while_worker_dead)

"""t-schedules-workers: exactly one batch per slot of a schedule, whatever the
number of workers, a kill -9 of the worker around a slot, or its restart
(API.md, "Scheduled start and cron schedules (F5)").

- two workers (the stack's and an extra one) and a schedule of every second
  (overlap allow): every slot from the first firing to the last made one
  batch, none two;
- the stack's worker killed with SIGKILL three times, each just before a
  slot, its supervisor starting a new one (catchup all): afterwards every
  slot from the first to the last made exactly one batch (the missed ones
  caught up), none two (unique slot of batches, and the count by slot).
"""
import os
import signal
import time
from datetime import datetime, timedelta

from trlib import api, check, expect, new_kind, q, sql, step, task, wait_for, webhook
from workerlib import ExtraWorker, Hooks, run, stack_worker_pid, wait_stack_worker


def slots_of(schedule_id):
    """[(slot, batches)] of the schedule, in slot order."""
    rows = sql(f"SELECT extract(epoch FROM scheduled_for)::bigint, count(*) FROM batches "
               f"WHERE schedule_id = {q(schedule_id)} GROUP BY 1 ORDER BY 1")
    return [(int(a), int(b)) for a, b in rows]


def check_one_per_slot(schedule_id, least):
    got = slots_of(schedule_id)
    check(len(got) >= least, f"at least {least} slots fired: {got}")
    doubles = [s for s, n in got if n != 1]
    check(not doubles, f"slots with more than one batch: {doubles}")
    secs = [s for s, _ in got]
    missing = sorted(set(range(secs[0], secs[-1] + 1)) - set(secs))
    check(not missing, f"slots without a batch between the first and the last: {missing}")
    return got


def part_two_workers(rx):
    kind = new_kind("t-schedules-2w")
    with Hooks() as hooks, ExtraWorker("sched-extra"):
        name = f"two-{kind}"
        step("two workers, a schedule of every second")
        s = expect(api("POST", "/schedules", {
            "name": name, "cron": "* * * * * *", "overlap": "allow",
            "tasks": [task("a", kind=kind, on_start=webhook(hooks.url("/start")))]}),
            201, "POST /schedules")
        time.sleep(8)
        api("POST", f"/schedules/{name}/pause")
        time.sleep(0.5)
        step("one batch per slot, no slot missed")
        got = check_one_per_slot(s["id"], 6)
        print(f"   {len(got)} slots, one batch each")
        api("DELETE", f"/schedules/{name}")


def part_kill_worker(rx):
    kind = new_kind("t-schedules-kill")
    with Hooks() as hooks:
        name = f"kill-{kind}"
        step("a schedule of every second, catchup all")
        s = expect(api("POST", "/schedules", {
            "name": name, "cron": "* * * * * *", "overlap": "allow", "catchup": "all",
            "tasks": [task("a", kind=kind, on_start=webhook(hooks.url("/start")))]}),
            201, "POST /schedules")
        wait_for(lambda: len(slots_of(s["id"])) >= 2, 10, "first firings")
        for i in range(3):
            old = wait_stack_worker(timeout=15)
            # Just before the next slot (a few ms), so that the kill may
            # land while the worker wakes for it or fires it.
            now = datetime.now()
            nxt = (now + timedelta(seconds=1)).replace(microsecond=0)
            time.sleep(max(0.0, (nxt - now).total_seconds() - 0.003 * (i + 1)))
            os.kill(old, signal.SIGKILL)
            step(f"kill -9 of worker {old} just before a slot ({i + 1} of 3)")
            wait_stack_worker(old_pid=old, timeout=15)
            time.sleep(1.5)
        count = len(slots_of(s["id"]))
        wait_for(lambda: len(slots_of(s["id"])) >= count + 2, 10, "firings after the kills")
        api("POST", f"/schedules/{name}/pause")
        time.sleep(0.5)
        step("every slot made exactly one batch, the missed ones caught up")
        got = check_one_per_slot(s["id"], 8)
        print(f"   {len(got)} slots, one batch each")
        api("DELETE", f"/schedules/{name}")


if __name__ == "__main__":
    run(part_two_workers, part_kill_worker)

"""t-preempt: preemption of preemptible tasks (API.md, "Groups, batch
controls and preemption").

A Pending task that only a full concurrency rule keeps back takes the slot of
a preemptible Claimed or Running task of strictly lower priority: the victim
(lowest priority, then most recently started) goes back to Pending as a new
attempt (its old handle 409, retry_count and max_retries untouched), its
on_cancel calls say X-Task-Status: Preempted, both histories name the other
task, and the rule's limit holds at every instant, with two workers (sampled
in the database while they run).
"""

import json
import random
import threading
import time

import workerlib
from trlib import (api, check, check_error, create_map, expect, get_task, new_kind, short, step,
                   task, wait_for, wait_status, webhook)
from workerlib import CountSampler, ExtraWorker, Hooks


def rule(kind, n):
    return {"type": "Concurrency", "max_concurrency": n,
            "matcher": {"kind": kind, "status": "Running", "fields": []}}


def handle_path(call):
    h = call.query["handle"][0]
    return h[h.index("/tasks/"):]


def history(tid):
    return expect(api("GET", f"/tasks/{tid}/history?page_size=1000"), 200, "history")


def job(hooks, local_id, kind, n, priority, preemptible=False, **fields):
    return task(local_id, kind=kind, rules=[rule(kind, n)], priority=priority,
                preemptible=preemptible, timeout=86400, on_start=webhook(hooks.url("/start")),
                on_cancel=[webhook(hooks.url("/cancel"))], **fields)


def free_cycles(n=2):
    """Lets the worker go through n more claims (a task of no rule runs after each)."""
    for i in range(n):
        t, _ = create_map([task(f"cycle{i}", kind="t-preempt-cycle")])
        wait_status(t[f"cycle{i}"]["id"], "Running")


def part_preempts(rx):
    kind = new_kind("t-preempt")
    with Hooks() as hooks:
        step("a preemptible task runs in the only slot of its rule")
        t, _ = create_map([job(hooks, "low", kind, 1, 0, preemptible=True)])
        low = t["low"]["id"]
        check(t["low"]["preemptible"] is True, f"preemptible in the task object: {t['low']}")
        first = hooks.wait_calls("/start", 1, low)[0]
        wait_status(low, "Running")
        old_handle = handle_path(first)

        step("a higher-priority task of the rule comes: it takes the slot at once")
        t2, _ = create_map([job(hooks, "high", kind, 1, 5)])
        high = t2["high"]["id"]
        check(t2["high"]["preemptible"] is False, "preemptible defaults to false")
        wait_status(high, "Running")
        lt = get_task(low)
        check(lt["status"] == "Pending" and lt["retry_count"] == 0 and lt["max_retries"] == 0,
              f"the victim: back to Pending, retry_count unchanged: {short(lt)}")
        cancel = hooks.wait_calls("/cancel", 1, low)[0]
        check(cancel.headers.get("x-task-status") == "Preempted",
              f"on_cancel of the victim: X-Task-Status {cancel.headers.get('x-task-status')!r}")
        key = cancel.headers.get("idempotency-key", "")
        check(":cancel:preempted:1:" in key, f"the preemption's call key: {key!r}")

        step("the victim's old handle is superseded (409), nothing changes")
        r = api("PATCH", old_handle, {"status": "Success"})
        check_error(r, 409, "PATCH from the preempted attempt")
        check(r[2]["error"] == "attempt superseded", f"PATCH old handle: {r[2]}")
        check(get_task(low)["status"] == "Pending", "a superseded PATCH changed the victim")
        b = expect(api("GET", f"/tasks/{low}/blockers"), 200, "blockers of the victim")
        check([x["type"] for x in b["blockers"]] == ["rule"], f"victim's blockers: {short(b)}")

        step("both histories name the other task")
        hl, hh = history(low), history(high)
        ev = [e for e in hl if e["event"] == "preempted"]
        check(len(ev) == 1 and ev[0]["detail"]["by"] == high and ev[0]["actor"] == "worker"
              and ev[0]["from_status"] == "Running" and ev[0]["to_status"] == "Pending",
              f"victim's preempted event: {short(ev)}")
        ev = [e for e in hh if e["event"] == "preempting"]
        check(len(ev) == 1 and ev[0]["detail"]["victim"] == low,
              f"preemptor's preempting event: {short(ev)}")
        print("history of the preempted task", low, flush=True)
        for e in hl:
            print("  ", json.dumps(e, separators=(",", ":")), flush=True)
        print("history of the preempting task", high, flush=True)
        for e in hh:
            print("  ", json.dumps(e, separators=(",", ":")), flush=True)

        step("when the preemptor ends, the victim starts again: attempt 2")
        hcall = hooks.wait_calls("/start", 1, high)[0]
        expect(api("PATCH", handle_path(hcall), {"status": "Success"}), 200, "end high")
        again = hooks.wait_calls("/start", 2, low)[-1]
        check(again.headers.get("x-task-attempt") == "2",
              f"the victim's next start: X-Task-Attempt {again.headers.get('x-task-attempt')!r}")
        wait_status(low, "Running")
        expect(api("PATCH", handle_path(again), {"status": "Success"}), 200, "end low")
        check(get_task(low)["status"] == "Success", "the victim ends with its new handle")

        step("the metric counts the preemption")
        _, _, _, raw = api("GET", "/metrics")
        lines = [x for x in raw.decode().splitlines()
                 if x.startswith("taskrunner_tasks_preempted_total{")]
        check(lines and sum(float(x.rsplit(" ", 1)[1]) for x in lines) >= 1,
              f"taskrunner_tasks_preempted_total: {lines}")


def part_never_preempts(rx):
    with Hooks() as hooks:
        for what, prio_low, preemptible, prio_high in (
                ("not preemptible", 0, False, 5),
                ("preemptible, same priority", 5, True, 5),
                ("preemptible, higher priority", 7, True, 5)):
            kind = new_kind("t-preempt-no")
            step(f"no preemption of a running task that is {what}")
            t, _ = create_map([job(hooks, "low", kind, 1, prio_low, preemptible=preemptible)])
            wait_status(t["low"]["id"], "Running")
            t2, _ = create_map([job(hooks, "high", kind, 1, prio_high)])
            free_cycles()
            check(get_task(t["low"]["id"])["status"] == "Running", f"{what}: victim preempted")
            check(get_task(t2["high"]["id"])["status"] == "Pending", f"{what}: task started")
            b = expect(api("GET", f"/tasks/{t2['high']['id']}/blockers"), 200, "blockers")
            check([x["type"] for x in b["blockers"]] == ["rule"], f"blockers: {short(b)}")
            check(not hooks.received("/cancel", t["low"]["id"]), f"{what}: cancel call made")


def part_victim_choice(rx):
    kind = new_kind("t-preempt-choice")
    with Hooks() as hooks:
        step("three preemptible tasks hold the 3 slots: b (prio 0), c (prio 0, later), a (prio 1)")
        ids = {}
        for name, prio in (("b", 0), ("c", 0), ("a", 1)):
            t, _ = create_map([job(hooks, name, kind, 3, prio, preemptible=True)])
            ids[name] = t[name]["id"]
            wait_status(ids[name], "Running")
        order = []
        for i in range(3):
            t, _ = create_map([job(hooks, f"h{i}", kind, 3, 9)])
            wait_status(t[f"h{i}"]["id"], "Running")
            pending = [n for n in "bca" if get_task(ids[n])["status"] == "Pending"]
            order.append([n for n in pending if n not in order][0] if pending else None)
        check(order == ["c", "b", "a"],
              f"victims: expected c (lowest priority, latest start), then b, then a; got {order}")


def part_limit_with_two_workers(rx):
    kind = new_kind("t-preempt-load")
    limit = 2
    with Hooks() as hooks, ExtraWorker("t-preempt-w2"):
        done = {}
        lock = threading.Lock()

        def after(call):
            # The executor: ends the attempt after a short while; a preempted
            # attempt's PATCH is 409 (superseded) and ends nothing.
            def end():
                time.sleep(random.uniform(0.05, 0.25))
                r = api("PATCH", handle_path(call), {"status": "Success"})
                with lock:
                    done.setdefault(call.headers.get("x-task-id"), []).append(r[0])
            threading.Thread(target=end, daemon=True).start()
        hooks.after("/start", after)
        step(f"two workers; 30 preemptible tasks of priority 0 and 15 of priority 5 under a "
             f"rule of {limit}, sampled")
        with CountSampler(f"SELECT kind, count(*) FROM tasks WHERE kind = '{kind}' "
                          "AND status IN ('Claimed', 'Running') GROUP BY kind") as sampler:
            all_ids = []
            for wave in range(5):
                lows, _ = create_map([job(hooks, f"l{i}", kind, limit, 0, preemptible=True)
                                      for i in range(6)])
                all_ids += [x["id"] for x in lows.values()]
                time.sleep(0.1)
                highs, _ = create_map([job(hooks, f"h{i}", kind, limit, 5) for i in range(3)])
                all_ids += [x["id"] for x in highs.values()]
            wait_for(lambda: all(get_task(i)["status"] == "Success" for i in all_ids), 120,
                     "every task to end Success")
        sampler.check_clean()
        most = sampler.max_by_key.get(kind, 0)
        check(most <= limit, f"{most} tasks of the rule ran at once (limit {limit})")
        preempted = sum(1 for i in all_ids for e in history(i) if e["event"] == "preempted")
        step(f"{sampler.samples} samples, at most {most} at once; {preempted} preemptions")
        check(preempted > 0, "no preemption happened: the test proved nothing")


if __name__ == "__main__":
    workerlib.run(part_preempts, part_never_preempts, part_victim_choice,
                  part_limit_with_two_workers)

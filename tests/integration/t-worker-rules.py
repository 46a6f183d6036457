"""t-worker-rules: concurrency rules and priority order (API.md, "Rules").

A task may start only while fewer than max_concurrency tasks match its rule
(Claimed counts as Running), at every instant and with any number of worker
processes: (a) 20 tasks under a rule of 2, run by two workers at once;
(b) a rule per metadata value: one task at a time per tenant, the tenants in
parallel; (c) among runnable tasks, higher priority starts first, then older;
(d) many rule keys and two workers (16 tenants x max 1, issue 24): the
workers never wait on each other's rule keys, so no deadlock and no pause,
and still never more than 1 per tenant.

The executor counts a task as running from its on_start call until it sends
its PATCH Success: a lower bound of what the database counts, so it must
never exceed the rule's maximum.
"""

import os
import time

from trlib import (check, create, create_map, env, get_task, held_rule, new_kind, patch_task, q,
                   start_holder, step, task, webhook)
from workerlib import CountSampler, Executor, ExtraWorker, Hooks, other_public_url, run, statuses


def rule(kind, max_concurrency, fields=()):
    return {"type": "Concurrency", "max_concurrency": max_concurrency,
            "matcher": {"kind": kind, "status": "Running", "fields": list(fields)}}


def step_two_workers(hooks):
    step("(a) 20 tasks under a rule of 2, two worker processes: never more than 2 running")
    kind = new_kind("t-worker-rule2")
    db = CountSampler(f"SELECT '', count(*) FROM tasks WHERE kind = {q(kind)} "
                      "AND status IN ('Claimed', 'Running')")
    with Executor(hooks, "/a/start", delay=(0.02, 0.08)) as ex, db:
        ex.public_urls.append(other_public_url())
        body, _ = create([task(f"t{i}", kind=kind, rules=[rule(kind, 2)],
                               on_start=webhook(hooks.url("/a/start"))) for i in range(20)])
        ids = [t["id"] for t in body]
        ex.wait_ended(ids, timeout=40)
    ex.check_clean()
    db.check_clean()
    print(f"   most running at once: {ex.max_running}; in the database (Claimed or "
          f"Running): {db.max_by_key.get('', 0)} in {db.samples} samples")
    check(db.max_by_key.get("", 0) <= 2,
          f"rule of 2 exceeded in the database: {db.max_by_key.get('', 0)} tasks "
          f"Claimed or Running at once")
    check(ex.max_running <= 2, f"rule of 2 exceeded: {ex.max_running} tasks ran at once")
    check(ex.max_running == 2, "the rule of 2 should let 2 tasks run at once; at most "
          f"{ex.max_running} did")
    check_both_workers(ex)
    st = statuses(ids)
    check(all(s == "Success" for s in st.values()),
          f"every task should end Success: {sorted(st.values())}")
    check(not ex.late_starts, f"on_start after the task ended: {ex.late_starts}")
    dups = {t: len(c) for t, c in ex.start_calls.items() if len(c) > 1}
    check(not dups, f"each task should be started once, some were started again: {dups}")


def step_per_tenant(hooks):
    step("(b) a rule per tenant (fields [\"tenant\"], max 1): one at a time per tenant, "
         "both tenants in parallel")
    kind = new_kind("t-worker-tenant")
    db = CountSampler(f"SELECT metadata->>'tenant', count(*) FROM tasks WHERE kind = {q(kind)} "
                      "AND status IN ('Claimed', 'Running') GROUP BY 1")
    with Executor(hooks, "/b/start", delay=(0.1, 0.15),
                  group=lambda call: call.headers.get("x-tenant")) as ex, db:
        ex.public_urls.append(other_public_url())
        tasks = []
        for i in range(6):
            for tenant in ("acme", "globex"):
                tasks.append(task(f"{tenant}-{i}", kind=kind, metadata={"tenant": tenant, "i": i},
                                  rules=[rule(kind, 1, ["tenant"])],
                                  on_start=webhook(hooks.url("/b/start"),
                                                   headers={"X-Tenant": tenant})))
        body, _ = create(tasks)
        ids = [t["id"] for t in body]
        ex.wait_ended(ids, timeout=40)
        ex.check_clean()
        db.check_clean()
        print(f"   most running at once: {ex.max_running}, per tenant: {ex.max_by_group}; "
              f"in the database per tenant: {db.max_by_key} in {db.samples} samples")
        check(all(n <= 1 for n in db.max_by_key.values()),
              f"rule of 1 per tenant exceeded in the database: {db.max_by_key}")
        for tenant in ("acme", "globex"):
            check(ex.max_by_group.get(tenant, 0) == 1,
                  f"tenant {tenant}: at most 1 (and some) should run at once, "
                  f"got {ex.max_by_group.get(tenant, 0)}")
        check(ex.max_running == 2, f"both tenants should run in parallel: at most "
              f"{ex.max_running} task(s) ran at once")
        check_both_workers(ex, required=False)  # 12 tasks: one may take all
        st = statuses(ids)
        check(all(s == "Success" for s in st.values()),
              f"every task should end Success: {sorted(st.values())}")


def step_priority(hooks):
    step("(c) priority: hold the kind (rule max 1) with a Running holder, queue tasks")
    kind = new_kind("t-worker-prio")
    holder = start_holder(kind)  # on trlib's receiver; it stays Running
    start = webhook(hooks.url("/c/start"))
    # Created in an order that is neither by priority nor reversed; the two
    # with priority 7 come from separate batches: "old" first.
    first, _ = create_map([task("p5", kind=kind, priority=5, rules=[held_rule(kind)],
                                on_start=start),
                           task("eq-old", kind=kind, priority=7, rules=[held_rule(kind)],
                                on_start=start),
                           task("m3", kind=kind, priority=-3, rules=[held_rule(kind)],
                                on_start=start)])
    second, _ = create_map([task("p10", kind=kind, priority=10, rules=[held_rule(kind)],
                                 on_start=start),
                            task("zero", kind=kind, rules=[held_rule(kind)], on_start=start),
                            task("eq-new", kind=kind, priority=7, rules=[held_rule(kind)],
                                 on_start=start)])
    t = {**first, **second}
    for lid, x in t.items():
        s = get_task(x["id"])["status"]
        check(s == "Pending", f"{lid} should wait Pending behind the holder, got {s}")
    lid_of = {x["id"]: lid for lid, x in t.items()}

    step("(c) release the holder: the tasks start one at a time, highest priority first, "
         "then older")
    with Executor(hooks, "/c/start", delay=0.02) as ex:
        patch_task(holder, {"status": "Success"})
        ex.wait_ended(list(lid_of), timeout=30)
        ex.check_clean()
        order = [lid_of[x] for x in ex.started()]
        want = ["p10", "eq-old", "eq-new", "p5", "zero", "m3"]
        check(order == want, f"start order {order}, expected {want}")
        check(ex.max_running == 1, f"max 1 running, got {ex.max_running}")


def log_tail(path, offset):
    """The lines of the file at path after byte offset."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace").splitlines()
    except OSError:
        return []


def log_size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def step_many_keys(hooks, extra):
    step("(d) 16 tenants x max 1, 160 tasks, two workers, Success 50 ms after each start: "
         "never more than 1 per tenant, no deadlock, no stall")
    kind = new_kind("t-worker-keys")
    logs = os.path.join(env("TR_VAR"), "log")
    watched = [os.path.join(logs, "worker.log"), extra.log_path,
               os.path.join(logs, "postgresql.log")]
    offsets = {p: log_size(p) for p in watched}
    db = CountSampler(f"SELECT metadata->>'tenant', count(*) FROM tasks WHERE kind = {q(kind)} "
                      "AND status IN ('Claimed', 'Running') GROUP BY 1")
    with Executor(hooks, "/d/start", delay=0.05, threads=16,
                  group=lambda call: call.headers.get("x-tenant")) as ex, db:
        ex.public_urls.append(other_public_url())
        tasks = []
        for i in range(160):
            tenant = f"tenant-{i % 16}"
            tasks.append(task(f"k{i}", kind=kind, metadata={"tenant": tenant},
                              rules=[rule(kind, 1, ["tenant"])],
                              on_start=webhook(hooks.url("/d/start"),
                                               headers={"X-Tenant": tenant})))
        t0 = time.monotonic()
        body, _ = create(tasks)
        ids = [t["id"] for t in body]
        # 10 rounds of 16 tasks, 50 ms each: well under a second of work. A
        # deadlock cycle costs deadlock_timeout (1 s) each, and there were
        # dozens of them: 15 s allows for a slow machine, not for those.
        ex.wait_ended(ids, timeout=15)
        elapsed = time.monotonic() - t0
        ex.check_clean()
        db.check_clean()
    print(f"   drained in {elapsed:.2f} s; most running at once: {ex.max_running}; per tenant "
          f"in the database: max {max(db.max_by_key.values(), default=0)} over "
          f"{len(db.max_by_key)} tenants in {db.samples} samples")
    check(all(n <= 1 for n in db.max_by_key.values()),
          f"rule of 1 per tenant exceeded in the database: {db.max_by_key}")
    check(all(n <= 1 for n in ex.max_by_group.values()),
          f"rule of 1 per tenant exceeded at the executor: {ex.max_by_group}")
    check(ex.max_running > 1, "tenants should run in parallel: at most "
          f"{ex.max_running} task ran at once")
    check_both_workers(ex, required=False)
    st = statuses(ids)
    check(all(s == "Success" for s in st.values()),
          f"every task should end Success: {sorted(set(st.values()))}")
    for path in watched:
        bad = [line for line in log_tail(path, offsets[path])
               if "deadlock" in line.lower() or "40P01" in line]
        check(not bad, f"{os.path.basename(path)}: {len(bad)} deadlock lines during the run, "
              f"e.g. {bad[:2]}")


def second_worker():
    """The second worker: its handles say localhost, so its calls can be told apart."""
    return ExtraWorker("worker-rules-2", {"TASKRUNNER_PUBLIC_URL": other_public_url()})


def check_both_workers(ex, required=True):
    """Both workers made on_start calls (told apart by their handles)."""
    by = ex.calls_by_public_url()
    print(f"   on_start calls by worker (handle base): {by}")
    both = by.get(other_public_url(), 0) > 0 and by.get(env("TASKRUNNER_PUBLIC_URL"), 0) > 0
    check(both or not required, f"both workers should have started tasks: {by}")


def part_two_workers(rx):
    with Hooks() as hooks, second_worker():
        step_two_workers(hooks)


def part_per_tenant(rx):
    with Hooks() as hooks, second_worker():
        step_per_tenant(hooks)


def part_many_keys(rx):
    with Hooks() as hooks, second_worker() as extra:
        step_many_keys(hooks, extra)


def part_priority(rx):
    with Hooks() as hooks:
        step_priority(hooks)


if __name__ == "__main__":
    run(part_two_workers, part_per_tenant, part_many_keys, part_priority)

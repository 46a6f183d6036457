"""t-fair: fair claiming through the real stack (API.md, "Fair claiming").

- no head-of-line blocking: 4,000 tasks of tenant A wait on "one per tenant";
  a task of tenant B created after them is free by /blockers, and the worker
  starts it within one second (before lanes, it stayed Pending for minutes
  while /blockers said []);
- fair_by is validated (each a key of the metadata, at its field path) and
  shown in the task object;
- two tenants share a pool of 2 places under fair_by, with two workers:
  while both have work the starts alternate (each gets half, within one).
"""

import time

from trlib import (api, check, check_error, create, create_map, detail_fields, get_task,
                   new_kind, patch_task, run, short, sql, sql_value, step, task, wait_for,
                   wait_status, q)
from workerlib import ExtraWorker, other_public_url


def rule(kind, fields, max_concurrency):
    return {"type": "Concurrency", "max_concurrency": max_concurrency,
            "matcher": {"kind": kind, "status": "Running", "fields": fields}}


def step_head_of_line(rx):
    kind = new_kind("t-fair-hol")
    r = rule(kind, ["tenant"], 1)
    step("tenant A: one Running holder, 4,000 tasks waiting on one per tenant")
    t, _ = create_map([task("holder", kind=kind, metadata={"tenant": "A"}, rules=[r],
                            timeout=86400)])
    hid = t["holder"]["id"]
    wait_status(hid, "Running")
    for b in range(2):
        create([task(f"a{b}-{i}", kind=kind, metadata={"tenant": "A"}, rules=[r])
                for i in range(2000)], what=f"POST /tasks (backlog {b + 1} of 2)")
    waiting = sql_value(f"SELECT count(*) FROM tasks WHERE kind = {q(kind)} AND status = 'Pending'")
    check(int(waiting) == 4000, f"4000 tasks of A should wait, {waiting} do")

    step("a task of tenant B: /blockers says free, and it starts (behind A's backlog it "
         "would wait for the holder, which never ends on its own)")
    t, _ = create_map([task("b", kind=kind, metadata={"tenant": "B"}, rules=[r], timeout=86400)])
    bid = t["b"]["id"]
    b = api("GET", f"/tasks/{bid}/blockers")[2]
    st = b.get("status") if isinstance(b, dict) else None
    if st == "Pending":
        check(b["blockers"] == [], f"B's task is free by /blockers: {short(b)}")
    t0 = time.monotonic()
    wait_status(bid, ["Claimed", "Running"], timeout=10.0,
                what="tenant B's task to start after /blockers said it is free")
    print(f"   tenant B's task started {1000 * (time.monotonic() - t0):.0f} ms after /blockers")

    step("A's waiting tasks are held by the rule, as /blockers says")
    aid = sql_value(f"SELECT id FROM tasks WHERE kind = {q(kind)} AND status = 'Pending' "
                    "ORDER BY seq LIMIT 1")
    b = api("GET", f"/tasks/{aid}/blockers")[2]
    check(b["status"] == "Pending" and [x["type"] for x in b["blockers"]] == ["rule"]
          and b["blockers"][0]["key"] == {"tenant": "A"}, f"A's first waiting task: {short(b)}")

    step("the holder ends: A's oldest waiting task takes the place")
    patch_task(hid, {"status": "Success"})
    wait_status(aid, ["Claimed", "Running"], timeout=5.0)
    api("DELETE", f"/tasks/{bid}")
    sql(f"SELECT count(*) FROM tr_move_tasks(ARRAY(SELECT id FROM tasks WHERE kind = {q(kind)} "
        "AND status = 'Pending'), 'Canceled')")
    api("DELETE", f"/tasks/{aid}")


def step_fair_by_fields(rx):
    kind = new_kind("t-fair-fields")
    step("fair_by: shown in the task object; null without it")
    t, _ = create_map([task("f", kind=kind, metadata={"tenant": 1, "region": "eu"},
                            fair_by=["tenant", "region"]),
                       task("n", kind=kind)])
    check(get_task(t["f"]["id"]).get("fair_by") == ["tenant", "region"],
          f"fair_by of the task object: {short(get_task(t['f']['id']))}")
    check("fair_by" in t["n"] and t["n"]["fair_by"] is None,
          f"a task without fair_by shows null: {short(t['n'])}")

    step("fair_by: each entry a key of the metadata, named by its field path")
    for fair_by, meta, path in ((["tenant", "nope"], {"tenant": 1}, "[0].fair_by[1]"),
                                ([], {"tenant": 1}, "[0].fair_by"),
                                ("tenant", {"tenant": 1}, "[0].fair_by"),
                                ([7], {"tenant": 1}, "[0].fair_by[0]"),
                                (["tenant"], None, "[0].fair_by[0]")):
        body = check_error(api("POST", "/tasks", [task("x", kind=kind, metadata=meta,
                                                       fair_by=fair_by)]),
                           400, f"fair_by {fair_by!r}")
        check(path in detail_fields(body), f"fair_by {fair_by!r}: want {path} in {short(body)}")


def step_fair_share(rx):
    kind = new_kind("t-fair-share")
    pool = rule(kind, [], 2)
    step("two tenants, a pool of 2, fair_by tenant, two workers: starts alternate")
    with ExtraWorker("worker-fair-2", {"TASKRUNNER_PUBLIC_URL": other_public_url()}):
        # X's 30 tasks are all older than Y's 30: oldest-first would start X's first.
        create([task(f"x{i}", kind=kind, metadata={"tenant": "X"}, rules=[pool],
                     fair_by=["tenant"], timeout=86400) for i in range(30)])
        create([task(f"y{i}", kind=kind, metadata={"tenant": "Y"}, rules=[pool],
                     fair_by=["tenant"], timeout=86400) for i in range(30)])
        deadline = time.monotonic() + 60
        done = 0
        while done < 60:
            check(time.monotonic() < deadline, f"the pool should work through 60 tasks, {done} done")
            ids = wait_for(lambda: [r[0] for r in sql(
                f"SELECT id FROM tasks WHERE kind = {q(kind)} AND status = 'Running'")] or None,
                10, "a Running task of the pool")
            for tid in ids:
                patch_task(tid, {"status": "Success"})
                done += 1
    order = [r[0] for r in sql(
        "SELECT t.metadata ->> 'tenant' FROM task_events e JOIN tasks t ON t.id = e.task_id "
        f"WHERE t.kind = {q(kind)} AND e.event = 'status' AND e.to_status = 'Claimed' "
        "ORDER BY e.id")]
    print(f"   start order: {''.join(order)}")
    # Before Y's tasks existed X had started twice; from Y's first start on,
    # while both have work (the next 40 starts), they take turns.
    check("Y" in order[:4], f"Y should start among the first 4: {''.join(order)}")
    first = order[order.index("Y"):][:40]
    xs = first.count("X")
    check(19 <= xs <= 21, f"X should get half of 40 starts, got {xs}: {''.join(first)}")
    runs = max(len(s) for s in "".join(first).replace("XY", "X Y").replace("YX", "Y X").split())
    check(runs <= 2, f"no tenant should start more than twice in a row: {''.join(first)}")

if __name__ == "__main__":
    run(step_head_of_line, step_fair_by_fields, step_fair_share)

"""t-groups: groups and batch holds (API.md, "Groups, batch controls and
preemption").

The group field and filter, GET /groups and GET /groups/{group}, group pause,
resume and cancel, batch pause and resume, the batch list's filters. Holds
are checked against the worker itself: a held task is never claimed, with two
workers and creations racing the pause, and starts when the hold is released.
Group names are new for each run (a hold outlives the test's batches).
"""

import threading
import urllib.parse
import uuid

import workerlib
from trlib import (api, check, check_error, create, create_map, detail_fields, expect, get_task,
                   q, short, sql_value, step, task, wait_for, wait_status)


def new_group(prefix):
    """A group name of this run with a '/' and a space, as clients write them."""
    return f"{prefix}/{uuid.uuid4().hex[:8]} nightly"


def gpath(name, suffix=""):
    return "/groups/" + urllib.parse.quote(name, safe="") + suffix


def history_events(tid):
    return expect(api("GET", f"/tasks/{tid}/history?page_size=1000"), 200, "history")


def step_field_and_filter(rx):
    step("group is validated: 1..255 characters, a string")
    for bad in ("", "x" * 256, 42, ["a"]):
        resp = api("POST", "/tasks", [task("a", group=bad)])
        check_error(resp, 400, f"group {short(bad, 40)}")
        check("[0].group" in detail_fields(resp[2]),
              f"group {short(bad, 40)}: expected the field path [0].group, got {short(resp[2])}")
    g = new_group("t-groups-a")
    step("the task object carries group; GET /tasks?group= lists the group's tasks")
    t, _ = create_map([task("a", group=g), task("b", group=g), task("c")])
    check(t["a"]["group"] == g and t["c"]["group"] is None,
          f"group in the task objects: {t['a']['group']!r}, {t['c']['group']!r}")
    check(get_task(t["a"]["id"])["group"] == g, "GET /tasks/{id}: group")
    listed = expect(api("GET", "/tasks?group=" + urllib.parse.quote(g)), 200, "GET /tasks?group")
    check(sorted(x["id"] for x in listed) == sorted([t["a"]["id"], t["b"]["id"]]),
          f"GET /tasks?group=: expected a and b, got {short(listed)}")
    check(all(x["group"] == g for x in listed), "list summaries carry group")

    step("GET /groups/{group} (URL-encoded) counts the group; unknown group 404")
    for tid in (t["a"]["id"], t["b"]["id"]):
        wait_status(tid, "Running")
    body = expect(api("GET", gpath(g)), 200, "GET /groups/{group}")
    check(body["group"] == g and body["total"] == 2 and body["by_status"] == {"Running": 2}
          and body["paused"] is False and body["success"] == 0 and body["failures"] == 0,
          f"GET /groups/{{group}}: {short(body)}")
    check_error(api("GET", gpath(new_group("t-groups-none"))), 404, "unknown group")

    step("GET /groups is paginated by name")
    g2 = g.replace("t-groups-a", "t-groups-b")
    create([task("x", group=g2)])
    page = expect(api("GET", "/groups?page_size=1000"), 200, "GET /groups")
    names = [x["group"] for x in page]
    check(names == sorted(names), "GET /groups: not in name order")
    check(g in names and g2 in names, f"GET /groups: {g!r} and {g2!r} missing")
    i = names.index(g)
    one = expect(api("GET", f"/groups?page_size=1&page={i}"), 200, "GET /groups page")
    check(len(one) == 1 and one[0]["group"] == g and one[0]["total"] == 2
          and one[0]["paused"] is False, f"GET /groups?page_size=1&page={i}: {short(one)}")


def step_group_hold(rx):
    g = new_group("t-groups-hold")
    step("pause a group: its Pending and Waiting tasks stay as they are, not started")
    t, _ = create_map([task("p", group=g, timeout=86400), task("w", group=g, timeout=86400,
                       dependencies=[{"id": "p", "requires_success": True}])])
    pid = t["p"]["id"]
    wait_status(pid, "Running")
    body = expect(api("POST", gpath(g, "/pause"), headers={"X-Requester": "ops-anna"}), 200,
                  "pause group")
    check(body["paused"] is True, f"pause answer: {short(body)}")
    step("tasks created into the paused group later are held too, whatever their status")
    t2, _ = create_map([task("n", group=g), task("m", group=g, dependencies=[
        {"id": "n", "requires_success": True}])])
    nid = t2["n"]["id"]
    check(t2["n"]["status"] == "Pending", f"a held task keeps its status: {t2['n']['status']}")
    blockers = expect(api("GET", f"/tasks/{nid}/blockers"), 200, "blockers")
    check({"type": "group_paused", "group": g} in blockers["blockers"],
          f"blockers of a held task: {short(blockers)}")
    step("the running task is not touched; finishing it frees its child, still held")
    expect(api("PATCH", f"/tasks/{pid}", {"status": "Success"}), 200, "finish p")
    wid = t["w"]["id"]
    wait_status(wid, "Pending")
    # Two more wake-ups of the worker: a free task runs after them.
    for i in range(2):
        free, _ = create_map([task(f"free{i}")])
        wait_status(free[f"free{i}"]["id"], "Running")
    for tid in (nid, wid):
        check(get_task(tid)["status"] == "Pending", f"held task {tid} must stay Pending")
    check(get_task(t2["m"]["id"])["status"] == "Waiting", "held Waiting child stays Waiting")
    ev = [e for e in history_events(nid) if e["event"] == "group_paused"]
    check(not ev, "a task created into a paused group has no group_paused event (it was born held)")
    ev = [e for e in history_events(wid) if e["event"] == "group_paused"]
    check(len(ev) == 1 and ev[0]["actor"] == "ops-anna" and ev[0]["detail"] == {"group": g},
          f"history of a task held by the pause: {short(ev)}")
    g_body = expect(api("GET", gpath(g)), 200, "GET group")
    check(g_body["paused"] is True and g_body["paused_by"] == "ops-anna",
          f"GET paused group: {short(g_body)}")
    step("the gauge taskrunner_group_tasks counts the group's tasks by status")
    _, _, _, raw = api("GET", "/metrics")
    lines = [x for x in raw.decode().splitlines() if x.startswith("taskrunner_group_tasks{")
             and f'group="{g}"' in x and 'status="Pending"' in x]
    check(len(lines) == 1 and float(lines[0].rsplit(" ", 1)[1]) == 2,
          f"taskrunner_group_tasks of {g!r} Pending: expected 2, got {lines}")
    step("pause again: nothing changes (200)")
    expect(api("POST", gpath(g, "/pause")), 200, "pause again")

    step("resume: the held tasks start at once")
    body = expect(api("POST", gpath(g, "/resume"), headers={"X-Requester": "ops-bob"}), 200,
                  "resume group")
    check(body["paused"] is False, f"resume answer: {short(body)}")
    for tid in (nid, wid):
        wait_status(tid, "Running")
    ev = [e for e in history_events(wid) if e["event"] == "group_resumed"]
    check(len(ev) == 1 and ev[0]["actor"] == "ops-bob", f"group_resumed event: {short(ev)}")
    blockers = expect(api("GET", f"/tasks/{t2['m']['id']}/blockers"), 200, "blockers")
    check(all(b["type"] != "group_paused" for b in blockers["blockers"]),
          f"blockers after resume: {short(blockers)}")


def step_group_cancel(rx):
    g = new_group("t-groups-cancel")
    step("DELETE /groups/{group} cancels every task of the group that has not ended")
    t, _ = create_map([task("r", group=g, timeout=86400, on_cancel=[{
        "kind": "Webhook", "params": {"url": rx.url("/cancel"), "verb": "Post"}}]),
        task("q", group=g, dependencies=[{"id": "r", "requires_success": True}]),
        task("other")])
    rid = t["r"]["id"]
    wait_status(rid, "Running")
    expect(api("POST", gpath(g, "/pause")), 200, "pause group")
    body = expect(api("DELETE", gpath(g), headers={"X-Requester": "ops-carl"}), 200,
                  "DELETE group")
    check(body["by_status"] == {"Canceled": 2} and body["total"] == 2,
          f"DELETE /groups/{{group}} answer: {short(body)}")
    check(get_task(t["other"]["id"])["status"] != "Canceled", "a task of no group is untouched")
    ev = [e for e in history_events(t["q"]["id"]) if e["event"] == "canceled"]
    check(len(ev) == 1 and ev[0]["actor"] == "ops-carl", f"canceled event: {short(ev)}")
    wait_for(lambda: any(c.headers.get("x-task-id") == rid for c in rx.received("/cancel")),
             15, "the on_cancel call of the running task")
    check_error(api("DELETE", gpath(new_group("t-groups-none"))), 404, "DELETE unknown group")
    check_error(api("POST", "/groups/" + "x" * 300 + "/pause"), 400, "a name of 300 characters")


def step_batch_hold(rx):
    step("pause a batch: its tasks stay Pending (blockers batch_paused); resume starts them")
    t, headers = create_map([task("a"), task("b"), task("c")])
    bid = t["a"]["batch_id"]
    body = expect(api("POST", f"/batches/{bid}/pause", headers={"X-Requester": "ops-dora"}),
                  200, "pause batch")
    check(body["paused"] is True, f"pause batch answer: {short(body)}")
    started = {x for x in "abc" if get_task(t[x]["id"])["status"] != "Pending"}
    free, _ = create_map([task("free")])
    wait_status(free["free"]["id"], "Running")
    for x in "abc":
        if x in started:
            continue
        check(get_task(t[x]["id"])["status"] == "Pending", f"held task {x} must stay Pending")
        b = expect(api("GET", f"/tasks/{t[x]['id']}/blockers"), 200, "blockers")
        check({"type": "batch_paused", "batch_id": bid} in b["blockers"], f"blockers: {short(b)}")
    check(expect(api("GET", f"/batches/{bid}"), 200, "GET batch")["paused"] is True,
          "GET /batches/{id}: paused")
    listed = expect(api("GET", "/batches?paused=true&page_size=1000"), 200, "list paused")
    check(bid in [x["batch_id"] for x in listed], "GET /batches?paused=true misses the batch")
    check_error(api("GET", "/batches?paused=maybe"), 400, "paused=maybe")
    check_error(api("POST", f"/batches/{uuid.uuid4()}/pause"), 404, "pause unknown batch")
    body = expect(api("POST", f"/batches/{bid}/resume"), 200, "resume batch")
    check(body["paused"] is False, f"resume batch answer: {short(body)}")
    for x in "abc":
        wait_status(t[x]["id"], "Running")
    ev = [e for e in history_events(t["c"]["id"]) if e["event"] in ("batch_paused",
                                                                  "batch_resumed")]
    if "c" not in started:
        check([e["event"] for e in ev] == ["batch_paused", "batch_resumed"]
              and ev[0]["actor"] == "ops-dora", f"batch hold events: {short(ev)}")

    step("GET /batches filters by group")
    g = new_group("t-groups-list")
    t2, _ = create_map([task("a", group=g)])
    listed = expect(api("GET", "/batches?group=" + urllib.parse.quote(g)), 200, "list by group")
    check([x["batch_id"] for x in listed] == [t2["a"]["batch_id"]],
          f"GET /batches?group=: {short(listed)}")
    check_error(api("GET", "/batches?schedule_id=nope"), 400, "schedule_id not a UUID")
    check(expect(api("GET", f"/batches?schedule_id={uuid.uuid4()}"), 200, "by schedule") == [],
          "GET /batches?schedule_id= of no schedule: expected []")


def started_ids(group):
    """The tasks of group that a worker has taken (not Pending any more), as
    committed now: a creation still answering counts too."""
    rows = sql_value(
        "SELECT coalesce(string_agg(id::text, ','), '') FROM tasks WHERE status <> 'Pending' "
        "AND grp = " + q(group))
    return set(filter(None, rows.split(",")))


def step_hold_race(rx):
    """Two workers claim while creations into the group race its pause: once the
    pause has answered, no task of the group starts, however it was made."""
    g = new_group("t-groups-race")
    ids, lock = [], threading.Lock()
    stop = threading.Event()
    errors = []

    def creator(n):
        k = 0
        while not stop.is_set() and k < 200:
            k += 1
            try:
                body = expect(api("POST", "/tasks", [task(f"c{n}-{k}-{j}", group=g, timeout=86400)
                                                   for j in range(5)]), 201, "create")
                with lock:
                    ids.extend(x["id"] for x in body)
            except Exception as e:  # reported below
                errors.append(repr(e))
                return

    with workerlib.ExtraWorker("t-groups-w2"):
        step("two workers; four threads create into the group while it is paused")
        threads = [threading.Thread(target=creator, args=(n,)) for n in range(4)]
        for th in threads:
            th.start()
        wait_for(lambda: len(ids) >= 40, 30, "some tasks of the group created")
        expect(api("POST", gpath(g, "/pause")), 200, "pause group")
        with lock:
            before = list(ids)
        at_pause = started_ids(g)
        wait_for(lambda: len(ids) >= len(before) + 40, 30, "more tasks created after the pause")
        stop.set()
        for th in threads:
            th.join(60)
        check(not errors, f"creations failed: {errors[:3]}")
        # Both workers go through claims: free tasks start after the burst.
        for i in range(4):
            free, _ = create_map([task(f"free{i}")])
            wait_status(free[f"free{i}"]["id"], "Running")
        after = started_ids(g)
        check(after == at_pause,
              f"{len(after - at_pause)} tasks of the paused group started after the pause "
              f"answered ({len(at_pause)} before it, {len(ids)} created)")
        check(len(ids) - len(at_pause) > 40, "the test held too few tasks to mean anything")
        step(f"{len(at_pause)} tasks had started before the pause, {len(ids) - len(at_pause)} "
             "held; resume: every one starts")
        expect(api("POST", gpath(g, "/resume")), 200, "resume group")
        wait_for(lambda: len(started_ids(g)) == len(ids), 60, "every task of the group started")
        expect(api("DELETE", gpath(g)), 200, "cancel the group")


COUNTS_DIFF = """
WITH kept AS (
    SELECT scope, key, status, sum(n) AS n, sum(success) AS s, sum(failures) AS f
    FROM (SELECT scope, key, status, n, success, failures FROM task_counts
          UNION ALL
          SELECT scope, key, status, n, success, failures FROM task_count_deltas) u
    GROUP BY 1, 2, 3 HAVING sum(n) <> 0 OR sum(success) <> 0 OR sum(failures) <> 0
), real AS (
    SELECT 'b'::"char" AS scope, batch_id::text AS key, status::text AS status,
           count(*) AS n, sum(success) AS s, sum(failures) AS f
    FROM tasks GROUP BY 1, 2, 3
    UNION ALL
    SELECT 'g'::"char", grp, status::text, count(*), sum(success), sum(failures)
    FROM tasks WHERE grp IS NOT NULL GROUP BY 1, 2, 3
)
SELECT count(*) || ' ' || coalesce(min(x::text), '')
FROM ((SELECT * FROM kept EXCEPT SELECT * FROM real)
      UNION ALL (SELECT * FROM real EXCEPT SELECT * FROM kept)) x
"""


def step_counts_consistent(rx):
    """The counts per batch and group (task_counts and its deltas) are those of
    the tasks themselves, after everything the test (and the others) did."""
    step("the kept counts per batch and group equal the tasks' own, in one snapshot")
    diff = sql_value(COUNTS_DIFF)
    check(diff.startswith("0 "), f"kept counts differ from the tasks: {diff}")
    g = new_group("t-groups-counts")
    t, _ = create_map([task("a", group=g, timeout=86400), task("b", group=g, timeout=86400)])
    for x in "ab":
        wait_status(t[x]["id"], "Running")
    expect(api("PUT", f"/tasks/{t['a']['id']}", {"new_success": 5, "new_failures": 2}), 202, "PUT")
    expect(api("PATCH", f"/tasks/{t['b']['id']}", {"status": "Success", "new_success": 1}), 200,
           "PATCH")
    body = expect(api("GET", gpath(g)), 200, "GET group")
    check(body["total"] == 2 and body["by_status"] == {"Running": 1, "Success": 1}
          and body["success"] == 6 and body["failures"] == 2, f"group counts: {short(body)}")
    bid = t["a"]["batch_id"]
    body = expect(api("GET", f"/batches/{bid}"), 200, "GET batch")
    check(body["total"] == 2 and body["by_status"] == {"Running": 1, "Success": 1}
          and body["success"] == 6 and body["failures"] == 2, f"batch counts: {short(body)}")
    listed = expect(api("GET", "/batches?group=" + urllib.parse.quote(g)), 200, "list")
    check(len(listed) == 1 and listed[0]["total_tasks"] == 2
          and listed[0]["status_counts"]["running"] == 1
          and listed[0]["status_counts"]["success"] == 1 and listed[0]["kinds"] == ["t-default"],
          f"batch list entry: {short(listed)}")
    diff = sql_value(COUNTS_DIFF)
    check(diff.startswith("0 "), f"kept counts differ from the tasks: {diff}")


if __name__ == "__main__":
    workerlib.run(step_field_and_filter, step_group_hold, step_group_cancel, step_batch_hold,
                  step_hold_race, step_counts_consistent)

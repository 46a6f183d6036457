"""t-control: pause/resume, cancel, PATCH, PUT counters and batches (API.md).

Tasks that must stay Pending are held by a Running holder of their kind and a
Concurrency rule of 1 (trlib.held); tasks that must run are started by the
worker through the test's receiver.
"""

import time
import uuid

from trlib import (api, check, check_error, create_map, dep, detail_fields, expect, finish,
                   get_task, held, is_ts, new_kind, patch_task, q, run, short, sql_count,
                   start_holder, step, task, wait_for, wait_status, webhook)

# Kinds of this run: HELD has a Running holder (its tasks stay Pending), RUN
# tasks are started by the worker. Set by step_setup.
KINDS = {}


def kinds():
    check(KINDS, "no holder: the set-up part failed")
    return KINDS["held"], KINDS["run"]


def step_setup(rx):
    KINDS["held"] = new_kind("t-control")
    step(f"set-up: a Running holder of {KINDS['held']}")
    start_holder(KINDS["held"])
    KINDS["run"] = new_kind("t-control-run")


def expect_status_answer(resp, code, status, what):
    body = expect(resp, code, what)
    check(isinstance(body, dict) and body.get("status") == status,
          f"{what}: expected the task with status {status}, got {short(body)}")
    return body


def step_pause_resume(rx):
    kind, other = kinds()
    step("pause a Pending task -> Paused; pause again -> 409; resume -> Pending; again -> 409")
    t, _ = create_map([held("p", kind)])
    pid = t["p"]["id"]
    check(t["p"]["status"] == "Pending", f"held task: expected Pending, got {t['p']['status']}")
    expect_status_answer(api("POST", f"/tasks/{pid}/pause"), 200, "Paused", "pause Pending")
    check(get_task(pid)["status"] == "Paused", "GET after pause: expected Paused")
    check_error(api("POST", f"/tasks/{pid}/pause"), 409, "pause a Paused task")
    expect_status_answer(api("POST", f"/tasks/{pid}/resume"), 200, "Pending", "resume to Pending")
    check_error(api("POST", f"/tasks/{pid}/resume"), 409, "resume a Pending task")

    step("PATCH /task/pause/{id} (alias) pauses")
    expect_status_answer(api("PATCH", f"/task/pause/{pid}"), 200, "Paused", "PATCH /task/pause/{id}")
    expect_status_answer(api("POST", f"/tasks/{pid}/resume"), 200, "Pending", "resume after alias")

    step("pause a Waiting task -> Paused; resume -> Waiting")
    t, _ = create_map([held("a", kind), held("b", kind, dependencies=[dep("a")])])
    bid = t["b"]["id"]
    check(t["b"]["status"] == "Waiting", f"b: expected Waiting, got {t['b']['status']}")
    expect_status_answer(api("POST", f"/tasks/{bid}/pause"), 200, "Paused", "pause Waiting")
    expect_status_answer(api("POST", f"/tasks/{bid}/resume"), 200, "Waiting", "resume to Waiting")

    step("dependencies are counted while paused: resume after the parent ended -> Pending")
    t, _ = create_map([task("r", kind=other), held("c", kind, dependencies=[dep("r")])])
    cid = t["c"]["id"]
    expect_status_answer(api("POST", f"/tasks/{cid}/pause"), 200, "Paused", "pause Waiting child")
    finish(t["r"]["id"])
    check(get_task(cid)["status"] == "Paused", "a paused child must stay Paused when its parent ends")
    expect_status_answer(api("POST", f"/tasks/{cid}/resume"), 200, "Pending",
                         "resume a child whose parent succeeded while paused")

    step("a paused child that requires a parent fails when that parent fails")
    t3, _ = create_map([task("r", kind=other), held("c", kind, dependencies=[dep("r")])])
    cid = t3["c"]["id"]
    expect_status_answer(api("POST", f"/tasks/{cid}/pause"), 200, "Paused", "pause Waiting child")
    finish(t3["r"]["id"], "Failure", "broken")
    c = get_task(cid)
    want = f"Required parent task {t3['r']['id']} failed"
    check(c["status"] == "Failure" and c["failure_reason"] == want,
          f"paused child of a failed parent: expected Failure {want!r}, got {c['status']} "
          f"{c['failure_reason']!r}")
    check_error(api("POST", f"/tasks/{cid}/resume"), 409, "resume a task that failed while paused")

    step("pause is 409 for Running and terminal tasks, 404 for an unknown id")
    r = t["r"]["id"]
    check_error(api("POST", f"/tasks/{r}/pause"), 409, "pause a Success task")
    check_error(api("POST", f"/tasks/{r}/resume"), 409, "resume a Success task")
    t2, _ = create_map([task("run", kind=other)])
    run_id = t2["run"]["id"]
    wait_status(run_id, "Running")
    check_error(api("POST", f"/tasks/{run_id}/pause"), 409, "pause a Running task")
    check_error(api("PATCH", f"/task/pause/{run_id}"), 409, "PATCH /task/pause/{id} of a Running task")
    check_error(api("POST", f"/tasks/{uuid.uuid4()}/pause"), 404, "pause an unknown task")
    check_error(api("POST", f"/tasks/{uuid.uuid4()}/resume"), 404, "resume an unknown task")


def step_cancel(rx):
    kind, other = kinds()
    step("cancel a Pending task -> 200 Canceled; a second DELETE -> 409")
    t, _ = create_map([held("x", kind), held("y", kind), held("w", kind, dependencies=[dep("y")])])
    xid = t["x"]["id"]
    c = expect_status_answer(api("DELETE", f"/tasks/{xid}"), 200, "Canceled", "DELETE Pending")
    check(is_ts(c["ended_at"]), f"a canceled task needs ended_at, got {c['ended_at']!r}")
    check(get_task(xid)["status"] == "Canceled", "GET after cancel: expected Canceled")
    check_error(api("DELETE", f"/tasks/{xid}"), 409, "DELETE a Canceled task")
    check_error(api("DELETE", f"/task/{xid}"), 409, "DELETE /task/{id} of a Canceled task")

    step("cancel a Paused task and a Waiting one; 404 for an unknown id")
    yid = t["y"]["id"]
    expect_status_answer(api("POST", f"/tasks/{yid}/pause"), 200, "Paused", "pause y")
    expect_status_answer(api("DELETE", f"/tasks/{yid}"), 200, "Canceled", "DELETE Paused")
    w = get_task(t["w"]["id"])
    check(w["status"] == "Failure", f"w required the canceled y: expected Failure, got {w['status']}")
    t, _ = create_map([held("p", kind), held("q", kind, dependencies=[dep("p")])])
    expect_status_answer(api("DELETE", f"/tasks/{t['q']['id']}"), 200, "Canceled", "DELETE Waiting")
    check_error(api("DELETE", f"/tasks/{uuid.uuid4()}"), 404, "DELETE an unknown task")

    step("cancel a Running task -> Canceled")
    t, _ = create_map([task("r", kind=other)])
    wait_status(t["r"]["id"], "Running")
    expect_status_answer(api("DELETE", f"/tasks/{t['r']['id']}"), 200, "Canceled", "DELETE Running")

    step("cancel with waiting children: requiring ones fail (cascading), others go on")
    t, _ = create_map([held("p", kind),
                       held("need", kind, dependencies=[dep("p")]),
                       held("free", kind, dependencies=[dep("p", False)]),
                       held("grand", kind, dependencies=[dep("need")])])
    pid = t["p"]["id"]
    expect_status_answer(api("DELETE", f"/tasks/{pid}"), 200, "Canceled", "DELETE parent")
    need = get_task(t["need"]["id"])
    want = f"Required parent task {pid} was canceled"
    check(need["status"] == "Failure" and need["failure_reason"] == want,
          f"need: expected Failure {want!r}, got {need['status']} {need['failure_reason']!r}")
    grand = get_task(t["grand"]["id"])
    want = f"Required parent task {t['need']['id']} failed"
    check(grand["status"] == "Failure" and grand["failure_reason"] == want,
          f"grand: expected Failure {want!r}, got {grand['status']} {grand['failure_reason']!r}")
    free = get_task(t["free"]["id"])
    check(free["status"] == "Pending", f"free (does not require p): expected Pending, got {free['status']}")


def step_patch(rx):
    kind, other = kinds()
    step("PATCH: counters add up, metadata is replaced, the task stays Running")
    t, _ = create_map([task("r", kind=other, metadata={"old": 1, "keep": 2}),
                       task("f", kind=other), held("h", kind),
                       held("wt", kind, dependencies=[dep("h")])])
    rid = t["r"]["id"]
    wait_status(rid, "Running")
    r = patch_task(rid, {"new_success": 3, "new_failures": 1})
    check((r["status"], r["success"], r["failures"]) == ("Running", 3, 1),
          f"after +3/+1: expected Running 3 1, got {r['status']} {r['success']} {r['failures']}")
    check(is_ts(r["started_at"]) and r["ended_at"] is None,
          f"a Running task has started_at and no ended_at: {r['started_at']!r} {r['ended_at']!r}")
    started_at = r["started_at"]
    r = patch_task(rid, {"new_success": 2})
    check((r["success"], r["failures"]) == (5, 1), f"after +2: expected 5 1, got {r['success']} {r['failures']}")
    r = expect(api("PATCH", f"/task/{rid}", {"metadata": {"new": True}}), 200, "PATCH /task/{id}")
    check(r["metadata"] == {"new": True}, f"metadata should be replaced whole, got {r['metadata']}")
    check(get_task(rid)["metadata"] == {"new": True}, "GET does not show the replaced metadata")

    step("PATCH: bad input is 400 naming the field, and changes nothing")
    bad = [({"status": "Failure"}, "failure_reason"),
           ({"status": "Failure", "failure_reason": ""}, "failure_reason"),
           ({"status": "Running"}, "status"),
           ({"status": "Pending"}, "status"),
           ({"status": "Nope"}, "status"),
           ({"new_success": -1}, "new_success"),
           ({"new_failures": -5}, "new_failures"),
           ({"new_success": "3"}, "new_success"),
           ({"new_success": 1.5}, "new_success"),
           ({"metadata": [1]}, "metadata"),
           ({"metadata": {"blob": "x" * 70000}}, "metadata")]
    for body, field in bad:
        err = check_error(api("PATCH", f"/tasks/{rid}", body), 400, f"PATCH {body}")
        check(field in detail_fields(err), f"PATCH {body}: details should name {field!r}: {short(err)}")
    check_error(api("PATCH", f"/tasks/{rid}", [1]), 400, "PATCH with an array body")
    r = get_task(rid)
    check((r["status"], r["success"], r["failures"], r["metadata"]) == ("Running", 5, 1, {"new": True}),
          f"refused PATCHes changed the task: {short(r)}")

    step("PATCH status Success (any letter case) ends the task; then 409")
    r = patch_task(rid, {"status": "success", "new_success": 1})
    check((r["status"], r["success"]) == ("Success", 6), f"expected Success with 6, got {r['status']} {r['success']}")
    check(is_ts(r["ended_at"]) and r["failure_reason"] is None, f"ended task: {short(r)}")
    check(r["started_at"] == started_at and r["ended_at"] >= started_at and
          r["last_updated"] >= r["created_at"],
          f"timestamps of the ended task out of order: created {r['created_at']}, started "
          f"{r['started_at']} (was {started_at}), ended {r['ended_at']}, last_updated "
          f"{r['last_updated']}")
    check_error(api("PATCH", f"/tasks/{rid}", {"new_success": 1}), 409, "PATCH a Success task")

    step("PATCH status Failure with failure_reason")
    fid = t["f"]["id"]
    wait_status(fid, "Running")
    r = patch_task(fid, {"status": "Failure", "failure_reason": "disk full", "new_failures": 4})
    check((r["status"], r["failure_reason"], r["failures"]) == ("Failure", "disk full", 4),
          f"expected Failure 'disk full' 4, got {r['status']} {r['failure_reason']!r} {r['failures']}")
    check_error(api("PATCH", f"/tasks/{fid}", {"status": "Success"}), 409, "PATCH a Failure task")

    step("PATCH is 409 on Pending and Waiting tasks, 404 on an unknown one")
    check_error(api("PATCH", f"/tasks/{t['h']['id']}", {"new_success": 1}), 409, "PATCH Pending")
    check_error(api("PATCH", f"/tasks/{t['wt']['id']}", {"status": "Success"}), 409, "PATCH Waiting")
    check_error(api("PATCH", f"/tasks/{uuid.uuid4()}", {"new_success": 1}), 404, "PATCH unknown")


def step_patch_metadata_as_sent(rx):
    _, other = kinds()
    step("PATCH metadata is stored as sent (big integers, unicode keys) or refused, not altered")
    t, _ = create_map([task("m", kind=other)])
    tid = t["m"]["id"]
    wait_status(tid, "Running")
    meta = {"big": 2 ** 64, "neg": -(2 ** 63) - 1, "ключ 🔑": [1, {"x": None}]}
    resp = api("PATCH", f"/tasks/{tid}", {"metadata": meta})
    if resp[0] == 400:
        err = check_error(resp, 400, "PATCH with big integers in metadata")
        check(any(f == "metadata" or f.startswith("metadata.") for f in detail_fields(err)),
              f"the refusal should name metadata: {short(err)}")
        return
    expect(resp, 200, "PATCH with big integers in metadata")
    got = get_task(tid)["metadata"]
    check(got == meta, f"PATCH metadata stored other values than sent (200): sent {meta}, "
          f"read back {got}")


def step_put_counters(rx):
    kind, other = kinds()
    step("PUT counters: 202, added (seen by GET within a second or so)")
    t, _ = create_map([task("c", kind=other), task("done", kind=other), held("p", kind)])
    done_id = finish(t["done"]["id"])["id"]
    cid = t["c"]["id"]
    wait_status(cid, "Running")
    expect(api("PUT", f"/tasks/{cid}", {"new_success": 5, "new_failures": 2}), 202, "PUT +5/+2")
    expect(api("PUT", f"/tasks/{cid}", {"new_success": 1}), 202, "PUT +1")
    expect(api("PUT", f"/task/{cid}", {"new_failures": 1}), 202, "PUT /task/{id} +0/+1")

    def counted():
        g = get_task(cid)
        return (g["success"], g["failures"]) == (6, 3) and g
    wait_for(counted, 5, f"task {cid} to count success 6, failures 3")
    check(get_task(cid)["status"] == "Running", "PUT must not change the status")

    step("PUT: 404 unknown task, 409 terminal task, 400 negative count")
    check_error(api("PUT", f"/tasks/{uuid.uuid4()}", {"new_success": 1}), 404, "PUT unknown task")
    check_error(api("PUT", f"/tasks/{done_id}", {"new_success": 1}), 409, "PUT a Success task")
    err = check_error(api("PUT", f"/tasks/{cid}", {"new_success": -1}), 400, "PUT -1")
    check("new_success" in detail_fields(err), f"PUT -1: details should name new_success: {short(err)}")

    step("PUT on a task not yet started (Pending) is accepted and counted")
    pid = t["p"]["id"]
    expect(api("PUT", f"/tasks/{pid}", {"new_success": 4}), 202, "PUT on a Pending task")
    wait_for(lambda: get_task(pid)["success"] == 4, 5, f"Pending task {pid} to count success 4")


def step_batches(rx):
    kind, other = kinds()
    step("GET /batches/{id}: total and counts by status")
    t, bid = create_map([held("a", kind), held("b", kind), held("c", kind),
                         held("w", kind, dependencies=[dep("a")]), task("r", kind=other)],
                        headers={"X-Requester": "ops-team"})
    wait_status(t["r"]["id"], "Running")
    stats = expect(api("GET", f"/batches/{bid}"), 200, "GET /batches/{id}")
    check(stats.get("batch_id") == bid and stats.get("requester") == "ops-team"
          and is_ts(stats.get("created_at")),
          f"batch stats: expected batch_id {bid}, requester ops-team, created_at: {short(stats)}")
    check(stats.get("total") == 5, f"total: expected 5, got {stats.get('total')}")
    want = {"Pending": 3, "Waiting": 1, "Running": 1}
    got = {k: v for k, v in (stats.get("by_status") or {}).items() if v}
    check(got == want, f"by_status: expected {want}, got {stats.get('by_status')}")

    step("DELETE /batches/{id} cancels every unfinished task and answers the stats")
    stats = expect(api("DELETE", f"/batches/{bid}"), 200, "DELETE /batches/{id}")
    check(stats.get("batch_id") == bid and stats.get("total") == 5, f"stats: {short(stats)}")
    got = {k: v for k, v in (stats.get("by_status") or {}).items() if v}
    check(got == {"Canceled": 5}, f"by_status after DELETE: expected all 5 Canceled, got {got}")
    for lid, x in t.items():
        s = get_task(x["id"])["status"]
        check(s == "Canceled", f"{lid} after DELETE /batches: expected Canceled, got {s}")

    step("a finished task stays as it was when its batch is deleted")
    t, bid = create_map([task("done", kind=other), held("left", kind)])
    finish(t["done"]["id"])
    stats = expect(api("DELETE", f"/batches/{bid}"), 200, "DELETE /batches/{id}")
    got = {k: v for k, v in (stats.get("by_status") or {}).items() if v}
    check(got == {"Success": 1, "Canceled": 1}, f"by_status: expected Success 1, Canceled 1, got {got}")

    step("unknown batch: 404; malformed batch id: 400")
    for method in ("GET", "DELETE"):
        check_error(api(method, f"/batches/{uuid.uuid4()}"), 404, f"{method} unknown batch")
        check_error(api(method, "/batches/xyz"), 400, f"{method} /batches/xyz")


def start_settled(task_id):
    """Whether the worker is done with every start call of the task."""
    return sql_count(f"SELECT count(*) FROM deliveries WHERE task_id = {q(task_id)} "
                     "AND trigger = 'Start' AND state IN ('queued', 'inflight')") == 0


def step_claimed(rx):
    _, other = kinds()
    step("a Claimed task (on_start still in flight) accepts PATCH progress")
    for path in ("/slow-a", "/slow-b", "/slow-c"):
        rx.behave(path, code=200, delay=3)
    t, _ = create_map([task("a", kind=other, on_start=rx.url("/slow-a")),
                       task("b", kind=other, on_start=rx.url("/slow-b")),
                       task("c", kind=other, on_start=rx.url("/slow-c"),
                            on_cancel=[webhook(rx.url("/cancel-c"))])])
    a, b, c = t["a"]["id"], t["b"]["id"], t["c"]["id"]
    for tid in (a, b, c):
        wait_status(tid, "Claimed", 10)
    r = patch_task(a, {"new_success": 2})
    check((r["status"], r["success"]) == ("Claimed", 2),
          f"PATCH +2 on a Claimed task: expected Claimed 2, got {r['status']} {r['success']}")

    step("a task ended while Claimed stays ended when its on_start answers 2xx")
    r = patch_task(b, {"status": "Success"})
    check(r["status"] == "Success", f"PATCH Success on a Claimed task: got {r['status']}")

    step("a task canceled while Claimed stays Canceled, and its on_cancel fires")
    expect_status_answer(api("DELETE", f"/tasks/{c}"), 200, "Canceled", "DELETE a Claimed task")
    rx.wait_for(lambda calls: any(x.path == "/cancel-c" for x in calls), 15,
                "the on_cancel call of the task canceled while Claimed")

    wait_status(a, "Running", 15, "a to be Running once its on_start answered")
    check(get_task(a)["success"] == 2, "the count PATCHed while Claimed was lost")
    for tid, want in ((b, "Success"), (c, "Canceled")):
        wait_for(lambda: start_settled(tid), 15, f"the on_start call of {tid} to settle")
        s = get_task(tid)["status"]
        check(s == want, f"task ended ({want}) while Claimed: after its on_start answered 2xx "
              f"it is {s}")


def step_heartbeat(rx):
    _, other = kinds()
    step("PUT and PATCH refresh the heartbeat: a task with timeout 2 s kept alive for 5 s")
    t, _ = create_map([task("hb", kind=other, timeout=2)])
    tid = t["hb"]["id"]
    wait_status(tid, "Running")
    started = time.monotonic()
    for i in range(10):  # one sign of life every 0.5 s: pacing, not waiting for a state
        if i % 2:
            expect(api("PUT", f"/tasks/{tid}", {"new_success": 1}), 202, "PUT heartbeat")
        else:
            patch_task(tid, {"new_success": 1})
        time.sleep(0.5)
        s = get_task(tid)["status"]
        check(s == "Running", f"a task kept alive by PUT/PATCH failed after "
              f"{time.monotonic() - started:.1f} s: status {s}")

    step("without signs of life it fails with failure_reason Timeout")
    r = wait_status(tid, ("Failure", "Success", "Canceled"), 15, f"{tid} to time out")
    check((r["status"], r["failure_reason"]) == ("Failure", "Timeout"),
          f"heartbeat timeout: expected Failure 'Timeout', got {r['status']} {r['failure_reason']!r}")


if __name__ == "__main__":
    run(step_setup, step_pause_resume, step_cancel, step_patch, step_patch_metadata_as_sent,
        step_put_counters, step_batches, step_claimed, step_heartbeat)

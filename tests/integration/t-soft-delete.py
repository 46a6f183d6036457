"""t-soft-delete: soft delete and restore of tasks and batches (API.md Part 2,
"Soft delete and retention (#20)").

Only ended tasks can be deleted (409 otherwise, for a batch as soon as one of
its tasks has not ended); a deleted task leaves GET /tasks and its batch's
counts unless include_deleted=true, still answers GET /tasks/{id} with
deleted_at, cannot be re-run until restored; a deleted batch leaves
GET /batches; restore undoes both; every change is in the history with its
actor.
"""

import uuid

from trlib import (api, check, check_error, create_map, expect, finish, get_task, new_kind,
                   step, task)
from workerlib import run

ACTOR = {"X-Requester": "t-soft-delete"}


def post(path):
    return api("POST", path, headers=ACTOR)


def listed(query):
    return {t["id"] for t in expect(api("GET", f"/tasks?{query}&page_size=100"), 200, query)}


def events(tid):
    hist = expect(api("GET", f"/tasks/{tid}/history?page_size=100"), 200, "history")
    entries = hist if isinstance(hist, list) else hist.get("events", hist.get("items", []))
    return [(e["event"], e["actor"]) for e in entries]


def part_tasks(rx):
    step("a task that has not ended cannot be deleted; an ended one can")
    kind = new_kind("t-softdel")
    t, bid = create_map([task("a", kind=kind, timeout=86400), task("b", kind=kind, timeout=86400)])
    a, b = t["a"]["id"], t["b"]["id"]
    finish(a)
    check(get_task(b)["deleted_at"] is None, "deleted_at is null before")
    body = check_error(post(f"/tasks/{b}/delete"), 409, "delete a Running task")
    check("only" in body["error"], f"409 says why: {body}")
    check_error(post(f"/batches/{bid}/delete"), 409, "delete a batch with a Running task")
    got = expect(post(f"/tasks/{a}/delete"), 200, "delete an ended task")
    check(got["deleted_at"] is not None and got["status"] == "Success", f"deleted: {got}")
    again = expect(post(f"/tasks/{a}/delete"), 200, "delete again")
    check(again["deleted_at"] == got["deleted_at"], "deleting again changes nothing")
    check(get_task(a)["deleted_at"] == got["deleted_at"], "GET /tasks/{id} still answers")

    step("a deleted task leaves the list and the batch's counts unless include_deleted=true")
    check(listed(f"batch_id={bid}") == {b}, f"list without it: {listed(f'batch_id={bid}')}")
    check(listed(f"batch_id={bid}&include_deleted=true") == {a, b}, "include_deleted lists it")
    check(listed(f"kind={kind}&status=Success") == set(), "filters leave it out too")
    stats = expect(api("GET", f"/batches/{bid}"), 200, "batch stats")
    check(stats["total"] == 1 and stats["by_status"] == {"Running": 1}, f"counts: {stats}")
    stats = expect(api("GET", f"/batches/{bid}?include_deleted=true"), 200, "batch stats all")
    check(stats["total"] == 2, f"counts with deleted: {stats}")
    check_error(api("GET", f"/tasks?include_deleted=maybe"), 400, "include_deleted=maybe")
    check_error(post(f"/tasks/{a}/retry"), 409, "re-run a deleted task")

    step("restore undoes it; both are in the history with their actor")
    got = expect(post(f"/tasks/{a}/restore"), 200, "restore")
    check(got["deleted_at"] is None, f"restored: {got}")
    check(listed(f"batch_id={bid}") == {a, b}, "listed again")
    ev = events(a)
    check(("deleted", "t-soft-delete") in ev and ("restored", "t-soft-delete") in ev
          and ev.count(("deleted", "t-soft-delete")) == 1, f"history: {ev}")
    check_error(post(f"/tasks/{uuid.uuid4()}/delete"), 404, "unknown task")

    step("a batch whose tasks all ended: deleted and restored as a whole")
    finish(b)
    expect(post(f"/tasks/{a}/delete"), 200, "delete a again (already in the batch delete)")
    s = expect(post(f"/batches/{bid}/delete"), 200, "delete the batch")
    check(s["deleted_at"] is not None and s["total"] == 2, f"answer: {s}")
    check(listed(f"batch_id={bid}") == set(), "no task of it listed")
    batches = expect(api("GET", "/batches?page_size=100"), 200, "GET /batches")
    check(bid not in {x["batch_id"] for x in batches}, "the batch left GET /batches")
    batches = expect(api("GET", "/batches?page_size=100&include_deleted=true"), 200, "with")
    check(bid in {x["batch_id"] for x in batches}, "include_deleted lists it")
    check(all(get_task(x)["deleted_at"] for x in (a, b)), "both tasks deleted")
    check(events(b).count(("deleted", "t-soft-delete")) == 1, f"b's history: {events(b)}")
    s = expect(post(f"/batches/{bid}/restore"), 200, "restore the batch")
    check(s["deleted_at"] is None, f"restored batch: {s}")
    check(listed(f"batch_id={bid}") == {a, b}, "both listed again")
    check_error(post(f"/batches/{uuid.uuid4()}/restore"), 404, "unknown batch")


if __name__ == "__main__":
    run(part_tasks)

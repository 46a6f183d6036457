"""t-history: the audit trail of a task, GET /tasks/{id}/history (API.md, "History").

- a full lifecycle, in order: created (by the requester), Pending -> Claimed
  (worker), the on_start webhook attempt, Claimed -> Running (worker), the
  executor's updates (PATCH, PUT), Running -> Success (the executor), the end
  webhook attempt (worker); timestamps in order, details as documented;
- pause, resume and cancel each recorded with their actor;
- a webhook attempt that fails and is retried: "retry" then "success";
- 404 for an unknown task, 400 for a malformed id.
"""

import uuid

from trlib import (api, check, check_error, create_map, expect, held, is_ts, new_kind, run,
                   short, start_holder, step, task, wait_for, wait_status, webhook)

REQUESTER = f"t-history-{uuid.uuid4().hex[:8]}"
EXECUTOR = f"t-history-exec-{uuid.uuid4().hex[:8]}"


def history(tid, what="GET history"):
    body = expect(api("GET", f"/tasks/{tid}/history"), 200, what)
    check(isinstance(body, list), f"{what}: expected a JSON array, got {short(body)}")
    for e in body:
        check(isinstance(e, dict) and set(e) == {"at", "event", "actor", "from_status",
                                                 "to_status", "detail"},
              f"{what}: each entry has exactly at, event, actor, from_status, to_status, "
              f"detail: {short(e)}")
        check(is_ts(e["at"]), f"{what}: at is not an RFC 3339 timestamp: {e['at']!r}")
        check(isinstance(e["detail"], dict), f"{what}: detail is not an object: {short(e)}")
    ats = [e["at"] for e in body]
    check(ats == sorted(ats), f"{what}: entries are not oldest first: {ats}")
    return body


def summary(events):
    """(event, actor, from, to) of each entry, for messages and comparisons."""
    return [(e["event"], e["actor"], e["from_status"], e["to_status"]) for e in events]


def step_lifecycle(rx):
    step("a task runs: created, claimed, started (webhook), updated, succeeded, end webhook")
    t, bid = create_map([task("a", kind=new_kind("t-history"),
                              on_success=[webhook(rx.url("/end"))])],
                        headers={"X-Requester": REQUESTER})
    tid = t["a"]["id"]
    wait_status(tid, "Running")
    expect(api("PATCH", f"/tasks/{tid}", {"new_success": 3, "new_failures": 1},
               headers={"X-Requester": EXECUTOR}), 200, "PATCH progress")
    expect(api("PUT", f"/tasks/{tid}", {"new_success": 2}, headers={"X-Requester": EXECUTOR}),
           202, "PUT progress")
    expect(api("PATCH", f"/tasks/{tid}", {"status": "Success"},
               headers={"X-Requester": EXECUTOR}), 200, "PATCH Success")

    def ended():
        h = history(tid)
        return h if any(e["event"] == "webhook" and e["detail"].get("trigger") == "End"
                        for e in h) else None

    h = wait_for(ended, 15, "the end webhook attempt in the history")
    got = summary(h)
    want = [
        ("created", REQUESTER, None, "Pending"),
        ("status", "worker", "Pending", "Claimed"),
        ("webhook", "worker", "Claimed", "Claimed"),
        ("status", "worker", "Claimed", "Running"),
        ("updated", EXECUTOR, "Running", "Running"),
        ("progress", EXECUTOR, "Running", "Running"),
        ("updated", EXECUTOR, "Running", "Running"),
        ("status", EXECUTOR, "Running", "Success"),
        ("webhook", "worker", "Success", "Success"),
    ]
    check(got == want, f"history of a lifecycle:\n   got  {got}\n   want {want}")

    created, claimed, start, _, upd, prog, upd2, _, end = h
    check(created["detail"] == {"batch_id": bid, "local_id": "a"},
          f"created detail: {created['detail']}")
    check(claimed["detail"].get("attempt") == 1, f"claimed detail: {claimed['detail']}")
    check(start["detail"].get("trigger") == "Start" and start["detail"].get("outcome") == "success"
          and start["detail"].get("attempt") == 1 and start["detail"].get("http_status") == 200
          and start["detail"].get("url") == rx.url("/start")
          and isinstance(start["detail"].get("duration_ms"), int)
          and isinstance(start["detail"].get("delivery_id"), int),
          f"start webhook detail: {start['detail']}")
    check(upd["detail"].get("new_success") == 3 and upd["detail"].get("new_failures") == 1
          and upd["detail"].get("success") == 3 and upd["detail"].get("failures") == 1,
          f"PATCH progress detail: {upd['detail']}")
    check(prog["detail"] == {"new_success": 2, "new_failures": 0, "success": 5, "failures": 1},
          f"PUT progress detail: {prog['detail']}")
    check(upd2["detail"].get("status") == "Success", f"PATCH Success detail: {upd2['detail']}")
    check(end["detail"].get("trigger") == "End" and end["detail"].get("outcome") == "success"
          and end["detail"].get("url") == rx.url("/end"),
          f"end webhook detail: {end['detail']}")


def step_pause_resume_cancel(rx):
    kind = new_kind("t-history-held")
    step(f"pause, resume and cancel a held task of {kind}: each recorded with its actor")
    start_holder(kind)
    t, _ = create_map([held("p", kind)], headers={"X-Requester": REQUESTER})
    tid = t["p"]["id"]
    hdr = {"X-Requester": "operator-1"}
    expect(api("POST", f"/tasks/{tid}/pause", headers=hdr), 200, "pause")
    expect(api("POST", f"/tasks/{tid}/resume", headers={"X-Requester": "operator-2"}), 200,
           "resume")
    check_error(api("POST", f"/tasks/{tid}/resume", headers=hdr), 409, "resume a Pending task")
    expect(api("DELETE", f"/tasks/{tid}"), 200, "cancel")
    got = summary(history(tid))
    want = [
        ("created", REQUESTER, None, "Pending"),
        ("paused", "operator-1", "Pending", "Paused"),
        ("resumed", "operator-2", "Paused", "Pending"),
        ("canceled", "anonymous", "Pending", "Canceled"),
    ]
    check(got == want, f"history of pause/resume/cancel:\n   got  {got}\n   want {want}")


def step_retry(rx):
    step("an on_start target failing once: the attempts are 'retry' (HTTP 503), then 'success'")
    rx.behave("/flaky-once", 503)
    t, _ = create_map([task("f", kind=new_kind("t-history-retry"),
                            on_start=webhook(rx.url("/flaky-once")))])
    tid = t["f"]["id"]
    rx.wait_for(lambda calls: [c for c in calls if c.path == "/flaky-once"], 10,
                "the first on_start attempt")
    rx.behave("/flaky-once", 200)
    wait_status(tid, "Running", 30)
    hooks = [e for e in history(tid) if e["event"] == "webhook"]
    outcomes = [(e["detail"].get("attempt"), e["detail"].get("outcome")) for e in hooks]
    check(len(hooks) >= 2 and hooks[0]["detail"].get("outcome") == "retry"
          and hooks[0]["detail"].get("http_status") == 503
          and hooks[0]["detail"].get("error") == "HTTP 503"
          and hooks[-1]["detail"].get("outcome") == "success",
          f"attempts of a flaky on_start: {outcomes} ({short(hooks)})")
    check([a for a, _ in outcomes] == list(range(1, len(outcomes) + 1)),
          f"attempt numbers should count up from 1: {outcomes}")
    expect(api("DELETE", f"/tasks/{tid}"), 200, "cancel the started task")


def step_errors(rx):
    step("unknown task: 404; malformed id: 400")
    check_error(api("GET", f"/tasks/{uuid.uuid4()}/history"), 404, "history of an unknown task")
    check_error(api("GET", "/tasks/not-a-uuid/history"), 400, "history with a malformed id")
    check_error(api("POST", f"/tasks/{uuid.uuid4()}/history"), 405, "POST history")


def step_paging(rx):
    step("history is paged like the lists: page, page_size, oldest first")
    kind = new_kind("t-history-pages")
    t = create_map([task("p", kind=kind, metadata={"k": 1})])[0]["p"]
    tid = t["id"]
    wait_status(tid, "Running")
    for i in range(120):  # each PUT is one "progress" event
        expect(api("PUT", f"/tasks/{tid}", {"new_success": 1}), 202, f"PUT {i}")
    everything = []
    for page in range(10):
        got = history(tid) if page == 0 else None
        body = expect(api("GET", f"/tasks/{tid}/history?page={page}&page_size=40"), 200,
                      f"history page {page}")
        if page == 0:
            check(len(got) == 50, f"the default page holds 50 events, got {len(got)}")
            check(got[:40] == body, "the default page starts with the first page")
        if not body:
            break
        check(len(body) <= 40, f"page {page} holds {len(body)} events, more than asked")
        everything += body
    progress = [e for e in everything if e["event"] == "progress"]
    check([e["detail"]["success"] for e in progress] == list(range(1, 121)),
          f"the pages together hold every progress event once, oldest first: "
          f"{[e['detail']['success'] for e in progress][:10]}...")
    check(everything[0]["event"] == "created", f"the first event is the creation: {everything[0]}")
    check([e["at"] for e in everything] == sorted(e["at"] for e in everything),
          "pages are oldest first")
    body = expect(api("GET", f"/tasks/{tid}/history?per_page=5&page=1"), 200, "per_page alias")
    check(body == everything[5:10], "per_page=5&page=1 is events 5..9")
    check_error(api("GET", f"/tasks/{tid}/history?page_size=0"), 400, "page_size 0")
    check_error(api("GET", f"/tasks/{tid}/history?page_size=x"), 400, "page_size not a number")
    expect(api("DELETE", f"/tasks/{tid}"), 200, "cancel it")


if __name__ == "__main__":
    run(step_lifecycle, step_pause_resume_cancel, step_retry, step_errors, step_paging)

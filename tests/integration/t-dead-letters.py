"""t-dead-letters: end and cancel calls that failed every attempt, GET /dead-letters
and POST /dead-letters/{id}/replay (API.md, "Dead letters").

Two tasks whose on_success targets answer 500, ended at once so their retries
run side by side (TASKRUNNER_RETRY_ATTEMPTS attempts each, as the stack's
worker is configured):
- each becomes a dead letter: listed newest first with its task, trigger, URL,
  attempts, last error and time; counted in taskrunner_dead_letters_total; its
  history shows every attempt, the last one "dead";
- one target is repaired and its dead letter replayed: 202 with the entry, it
  leaves the list, the call is made again (same Idempotency-Key) and succeeds;
- the other is replayed while its target still fails: after every attempt
  it is a dead letter again;
- paging (page, page_size, per_page); replay of an unknown id 404, of a
  delivery that is not dead 409, malformed ids 400.
"""

import re

from trlib import (api, check, check_error, create_map, expect, is_ts, is_uuid, new_kind, q,
                   short, sql, sql_value, step, task, wait_for, wait_status, webhook)
from workerlib import run, worker_settings

_made = {}


def dead_letters(query=""):
    body = expect(api("GET", f"/dead-letters{query}"), 200, f"GET /dead-letters{query}")
    check(isinstance(body, list), f"GET /dead-letters: expected an array, got {short(body)}")
    for d in body:
        check(isinstance(d, dict) and set(d) == {"id", "task_id", "trigger", "url", "attempts",
                                                 "last_error", "failed_at"},
              f"a dead letter has exactly id, task_id, trigger, url, attempts, last_error, "
              f"failed_at: {short(d)}")
    return body


def listed(tid):
    """The dead letters of task tid (at most 100 newest: the test's are recent)."""
    return [d for d in dead_letters("?page_size=100") if d["task_id"] == tid]


def dead_total():
    code, headers, _, raw = api("GET", "/metrics")
    check(code == 200, f"GET /metrics: {code}")
    m = re.search(rb"^taskrunner_dead_letters_total (\d+)$", raw, re.M)
    check(m, "taskrunner_dead_letters_total is missing from /metrics")
    return int(m.group(1))


def setup(rx):
    """Two tasks whose end calls fail for good; returns what the parts share."""
    if _made:
        return _made
    settings = worker_settings()
    print(f"worker settings: {settings}")
    budget = settings.all_retries_s() + settings.retry_attempts * 1.0 + 15
    before = dead_total()
    kind = new_kind("t-dead")
    rx.behave("/end-fixed-later", 500, body=b'{"error": "down"}')
    rx.behave("/end-broken", 502)
    t, _ = create_map([task("a", kind=kind, on_success=[webhook(rx.url("/end-fixed-later"))]),
                       task("b", kind=kind, on_success=[webhook(rx.url("/end-broken"))])])
    ids = {k: v["id"] for k, v in t.items()}
    for tid in ids.values():
        wait_status(tid, "Running")
    for tid in ids.values():
        expect(api("PATCH", f"/tasks/{tid}", {"status": "Success"}), 200, "PATCH Success")
    step(f"waiting up to {budget:.0f}s for both end calls to fail "
         f"{settings.retry_attempts} times")
    for tid in ids.values():
        wait_for(lambda: listed(tid), budget, f"the dead letter of task {tid}", interval=0.2)
    _made.update(settings=settings, ids=ids, before=before, budget=budget)
    return _made


def step_dead(rx):
    m = setup(rx)
    settings, ids = m["settings"], m["ids"]
    step("each end call is a dead letter with its task, trigger, URL, attempts and error")
    for name, path, err in (("a", "/end-fixed-later", "HTTP 500"), ("b", "/end-broken",
                                                                     "HTTP 502")):
        d = listed(ids[name])
        check(len(d) == 1, f"task {name}: expected one dead letter, got {short(d)}")
        d = d[0]
        check(isinstance(d["id"], int) and d["id"] > 0, f"id: {d['id']!r}")
        check(d["trigger"] == "End" and d["url"] == rx.url(path)
              and d["attempts"] == settings.retry_attempts and d["last_error"] == err
              and is_ts(d["failed_at"]) and is_uuid(d["task_id"]),
              f"dead letter of {name}: {short(d)}")
        calls = rx.received(path)
        check(len(calls) == settings.retry_attempts,
              f"{path}: expected {settings.retry_attempts} attempts, got {len(calls)}")
        keys = {c.headers.get("idempotency-key") for c in calls}
        check(len(keys) == 1, f"{path}: every attempt with the same Idempotency-Key: {keys}")

    step("newest first; counted in taskrunner_dead_letters_total")
    all_dl = dead_letters("?page_size=100")
    stamps = [(d["failed_at"], d["id"]) for d in all_dl]
    check(stamps == sorted(stamps, reverse=True), f"not newest first: {stamps}")
    total = dead_total()
    check(total >= m["before"] + 2,
          f"taskrunner_dead_letters_total: {m['before']} before, {total} after two dead letters")
    check(total == int(sql_value("SELECT count(*) FROM task_events WHERE event = 'webhook' "
                                 "AND detail ->> 'outcome' = 'dead'")),
          "taskrunner_dead_letters_total should equal the dead attempts in the audit trail")

    step("the history shows every attempt, the last one dead")
    h = expect(api("GET", f"/tasks/{ids['a']}/history"), 200, "history")
    outs = [e["detail"].get("outcome") for e in h
            if e["event"] == "webhook" and e["detail"].get("trigger") == "End"]
    want = ["retry"] * (settings.retry_attempts - 1) + ["dead"]
    check(outs == want, f"end call attempts in the history: {outs}, expected {want}")


def step_paging(rx):
    setup(rx)
    step("page_size=1 gives one entry; per_page is its alias; pages do not overlap")
    p0 = dead_letters("?page_size=1")
    p1 = dead_letters("?per_page=1&page=1")
    check(len(p0) == 1 and len(p1) == 1 and p0[0]["id"] != p1[0]["id"],
          f"pages of one: {short(p0)} and {short(p1)}")
    check(dead_letters("?page=-3&page_size=1") == p0, "a negative page counts as 0")
    check(dead_letters("?page=100000&page_size=100") == [], "a page past the end is empty")
    check_error(api("GET", "/dead-letters?page=x"), 400, "a non-integer page")
    check_error(api("GET", "/dead-letters?page_size=0"), 400, "page_size 0")


def step_replay_errors(rx):
    m = setup(rx)
    step("replay: unknown id 404, a delivery that is not dead 409, malformed ids 400")
    check_error(api("POST", "/dead-letters/999999999999/replay"), 404, "replay an unknown id")
    start_id = sql_value(f"SELECT id FROM deliveries WHERE task_id = {q(m['ids']['a'])} "
                         "AND trigger = 'Start'")
    check_error(api("POST", f"/dead-letters/{start_id}/replay"), 409,
                "replay a delivery that succeeded")
    for bad in ("abc", "0", "-1", "01", "99999999999999999999"):
        check_error(api("POST", f"/dead-letters/{bad}/replay"), 400, f"replay id {bad!r}")
    check_error(api("GET", f"/dead-letters/{start_id}/replay"), 405, "GET replay")


def step_replay(rx):
    m = setup(rx)
    settings, ids = m["settings"], m["ids"]
    step("the target of a is repaired; replaying its dead letter: 202 with the entry")
    rx.behave("/end-fixed-later", 200)
    d = listed(ids["a"])[0]
    resp = api("POST", f"/dead-letters/{d['id']}/replay", headers={"X-Requester": "ops"})
    body = expect(resp, 202, "replay")
    check(body == d, f"replay answers the dead letter: {short(body)}, listed {short(d)}")
    check(listed(ids["a"]) == [], "a replayed dead letter leaves the list")
    check_error(api("POST", f"/dead-letters/{d['id']}/replay"), 409, "replay it twice")

    step("the call is made again, with the same Idempotency-Key, and succeeds")
    key = rx.received("/end-fixed-later")[0].headers.get("idempotency-key")
    rx.wait_for(lambda calls: len([c for c in calls if c.path == "/end-fixed-later"])
                > settings.retry_attempts, 15, "the replayed call")
    last = rx.received("/end-fixed-later")[-1]
    check(last.headers.get("idempotency-key") == key,
          f"replay Idempotency-Key {last.headers.get('idempotency-key')!r}, first {key!r}")
    wait_for(lambda: sql_value(f"SELECT state FROM deliveries WHERE id = {d['id']}") == "done",
             10, "the replayed delivery to be done")
    check(listed(ids["a"]) == [], "a replayed call that succeeded is no dead letter")
    h = expect(api("GET", f"/tasks/{ids['a']}/history"), 200, "history")
    tail = [(e["event"], e["actor"], e["detail"].get("outcome")) for e in h][-2:]
    check(tail == [("replay", "ops", None), ("webhook", "worker", "success")],
          f"history after the replay ends with {tail}")

    step("b is replayed while its target still fails: after every attempt, dead again")
    d = listed(ids["b"])[0]
    expect(api("POST", f"/dead-letters/{d['id']}/replay"), 202, "replay b")
    check(listed(ids["b"]) == [], "replayed: off the list while it is tried")
    again = wait_for(lambda: listed(ids["b"]), m["budget"], "b to be a dead letter again",
                     interval=0.2)
    check(again[0]["id"] == d["id"] and again[0]["attempts"] == settings.retry_attempts
          and again[0]["failed_at"] > d["failed_at"],
          f"dead again: {short(again[0])} (was {short(d)})")
    check(len(rx.received("/end-broken")) == 2 * settings.retry_attempts,
          "the replay made every attempt again")


if __name__ == "__main__":
    run(step_dead, step_paging, step_replay_errors, step_replay)

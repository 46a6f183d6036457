"""t-auth: API authentication and callback tokens (API.md "Conventions" and
"Webhooks sent by the worker"; docs/security.md).

The test stack runs with the API open, so this test starts a side stack: a
second nginx rendered from the same template, in front of a responder of its
own started with TASKRUNNER_API_TOKENS (a read and a write token). Through it:

- /health and /ready need no token; every other route answers 401 JSON with
  WWW-Authenticate: Bearer without a token, with an unknown one, or with a
  malformed Authorization header;
- a read token may GET, and gets 403 JSON for anything else (nothing written);
- a write token may do everything; X-Requester is still stored with the
  batch; the actor of the audit trail is the token's name (when the history
  route exists);
- callback tokens: with the stack's worker paused, an extra worker with
  authentication on and the side stack as its public URL starts a task; its
  handle carries ?token=<hex HMAC-SHA256(callback secret, "<id>:<attempt>")>,
  which allows PATCH and PUT on that task and nothing else (403), not on
  another task (403), and no longer once the task's attempt has moved on (a
  requeue, simulated in the database): then the new attempt's token works.
"""

import secrets
import urllib.parse
import uuid

from seclib import (SideStack, callback_token, check_json_error, paused_stack_worker,
                    stack_responder_environ)
from trlib import check, new_kind, q, sql, sql_count, step, task, wait_for, webhook
from workerlib import ExtraWorker, Hooks, run

READ_TOKEN = "r-" + secrets.token_hex(20)
WRITE_TOKEN = "w-" + secrets.token_hex(20)
TOKENS = f"reader:{READ_TOKEN}:read, writer:{WRITE_TOKEN}:write"
AUTH_ENV = {"TASKRUNNER_API_TOKENS": TOKENS}

_side = {}


def side():
    """The side stack with authentication on (started once, stopped at exit)."""
    if "s" not in _side:
        s = SideStack("auth", fcgi_env=AUTH_ENV)
        s.__enter__()
        _side["s"] = s
    return _side["s"]


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def check_401(resp, what):
    check_json_error(resp, 401, what)
    challenge = resp[1].get("www-authenticate", "")
    check(challenge.lower().startswith("bearer"),
          f"{what}: 401 needs WWW-Authenticate: Bearer, got {challenge!r}")


def tasks_of(kind):
    return sql_count(f"SELECT count(*) FROM tasks WHERE kind = {q(kind)}")


def part_open_routes(rx):
    s = side()
    step("/health and /ready answer without a token")
    for path in ("/health", "/ready"):
        code = s.api("GET", path)[0]
        check(code == 200, f"GET {path} without a token: expected 200, got {code}")


def part_no_token(rx):
    s = side()
    kind = new_kind("t-auth-none")
    tid = str(uuid.uuid4())
    step("without a token, with an unknown token, with a malformed header: 401 JSON")
    calls = [("GET", "/tasks", None), ("GET", f"/tasks/{tid}", None),
             ("POST", "/tasks", [task("a", kind=kind, on_start=rx.url())]),
             ("PATCH", f"/tasks/{tid}", {"status": "Success"}),
             ("PUT", f"/tasks/{tid}", {"new_success": 1}), ("DELETE", f"/tasks/{tid}", None),
             ("POST", f"/tasks/{tid}/pause", None), ("GET", f"/batches/{tid}", None),
             ("GET", "/task", None), ("PATCH", f"/task/pause/{tid}", None)]
    for method, path, body in calls:
        check_401(s.api(method, path, body), f"{method} {path} without a token")
    for header in (f"Bearer {WRITE_TOKEN}x", f"Bearer {READ_TOKEN[:-1]}", "Bearer ",
                   f"Basic {WRITE_TOKEN}", WRITE_TOKEN, "Bearer  \t", f"Token {WRITE_TOKEN}"):
        check_401(s.api("GET", "/tasks", headers={"Authorization": header}),
                  f"GET /tasks with Authorization: {header[:20]}...")
        check_401(s.api("POST", "/tasks", [task("a", kind=kind, on_start=rx.url())],
                        headers={"Authorization": header}),
                  f"POST /tasks with Authorization: {header[:20]}...")
    # A callback token is no bearer token, and a bearer token is not a callback token.
    check_401(s.api("GET", "/tasks", headers=bearer(callback_token("x" * 32, tid, 1))),
              "a callback-token-shaped bearer token")
    check(tasks_of(kind) == 0, "a refused request wrote tasks")


def part_read_token(rx):
    s = side()
    kind = new_kind("t-auth-read")
    step("a read token may GET (the scheme in any case), nothing else (403 JSON, nothing written)")
    for scheme in ("Bearer", "bearer", "BEARER"):
        code = s.api("GET", f"/tasks?kind={kind}",
                     headers={"Authorization": f"{scheme} {READ_TOKEN}"})[0]
        check(code == 200, f"GET /tasks with '{scheme} <read token>': expected 200, got {code}")
    check(s.api("GET", f"/tasks/{uuid.uuid4()}", headers=bearer(READ_TOKEN))[0] == 404,
          "GET of an unknown task with a read token should be 404")
    tid = str(uuid.uuid4())
    for method, path, body in [("POST", "/tasks", [task("a", kind=kind, on_start=rx.url())]),
                               ("PATCH", f"/tasks/{tid}", {"status": "Success"}),
                               ("PUT", f"/tasks/{tid}", {"new_success": 1}),
                               ("DELETE", f"/tasks/{tid}", None),
                               ("POST", f"/tasks/{tid}/pause", None),
                               ("POST", f"/tasks/{tid}/resume", None),
                               ("DELETE", f"/batches/{tid}", None),
                               ("POST", "/task", [task("a", kind=kind, on_start=rx.url())])]:
        resp = s.api(method, path, body, headers=bearer(READ_TOKEN))
        check_json_error(resp, 403, f"{method} {path} with a read token")
        check("read" in resp[2]["error"], f"403 should say the token may only read: {resp[2]}")
    check(tasks_of(kind) == 0, "a read token wrote tasks")


def part_write_token(rx):
    s = side()
    kind = new_kind("t-auth-write")
    step("a write token may create, read, pause and cancel; X-Requester is stored; the actor "
         "is the token's name")
    resp = s.api("POST", "/tasks", [task("a", kind=kind, on_start=rx.url(),
                                         rules=[{"type": "Concurrency", "max_concurrency": 1,
                                                 "matcher": {"kind": kind, "status": "Running",
                                                             "fields": []}}]),
                                    task("b", kind=kind, on_start=rx.url(),
                                         dependencies=[{"id": "a"}])],
                 headers={**bearer(WRITE_TOKEN), "X-Requester": "billing"})
    check(resp[0] == 201, f"POST /tasks with a write token: expected 201, got {resp[0]}: "
          f"{resp[3][:300]!r}")
    bid = resp[1]["x-batch-id"]
    t = {x["local_id"]: x for x in resp[2]}
    check(resp[2][0]["requester"] == "billing",
          f"requester should stay X-Requester 'billing', got {resp[2][0]['requester']!r}")
    got = s.api("GET", f"/tasks/{t['b']['id']}", headers=bearer(WRITE_TOKEN))
    check(got[0] == 200, f"GET with a write token: {got[0]}")
    code = s.api("POST", f"/tasks/{t['b']['id']}/pause", headers=bearer(WRITE_TOKEN))[0]
    check(code == 200, f"pause with a write token: expected 200, got {code}")
    hist = s.api("GET", f"/tasks/{t['b']['id']}/history", headers=bearer(WRITE_TOKEN))
    if hist[0] == 200 and isinstance(hist[2], list):
        actors = {e.get("actor") for e in hist[2] if e.get("event") in ("created", "create",
                                                                        "pause", "paused")}
        print(f"   history actors: {sorted(a for a in actors if a)}")
        check("writer" in actors and "billing" not in actors,
              f"the actor of API calls should be the token's name 'writer': {hist[2]}")
    else:
        print(f"   (no history route yet: GET /tasks/{{id}}/history answered {hist[0]}; "
              "actor not checked)")
    code = s.api("DELETE", f"/batches/{bid}", headers=bearer(WRITE_TOKEN))[0]
    check(code == 200, f"DELETE /batches with a write token: expected 200, got {code}")
    # /metrics: behind a token too (any scope) when the route exists.
    m = s.api("GET", "/metrics")
    if m[0] != 404:
        check_401(m, "GET /metrics without a token")
        m = s.api("GET", "/metrics", headers=bearer(READ_TOKEN))
        check(m[0] == 200, f"GET /metrics with a read token: expected 200, got {m[0]}")


def handle_of(call):
    h = urllib.parse.urlsplit(call.query["handle"][0])
    return h, urllib.parse.parse_qs(h.query)


def part_callback_tokens(rx):
    s = side()
    kind = new_kind("t-auth-callback")
    secret = stack_responder_environ().get("TASKRUNNER_CALLBACK_SECRET", "")
    check(len(secret) >= 16, "the stack's responders should have a TASKRUNNER_CALLBACK_SECRET "
          "(scripts/stack generates one)")
    step("callback tokens: an extra worker with authentication on starts the tasks (the stack's "
         "worker paused); the handle carries the token of the start attempt")
    with Hooks() as hooks, paused_stack_worker(), \
            ExtraWorker("worker-auth", {**AUTH_ENV, "TASKRUNNER_PUBLIC_URL": s.url}):
        resp = s.api("POST", "/tasks",
                     [task(f"t{i}", kind=kind, timeout=600,
                           on_start=webhook(hooks.url("/start"))) for i in range(2)],
                     headers=bearer(WRITE_TOKEN))
        check(resp[0] == 201, f"POST /tasks: {resp[0]} {resp[3][:300]!r}")
        ids = [x["id"] for x in resp[2]]
        calls = {tid: hooks.wait_calls("/start", 1, tid, timeout=15)[0] for tid in ids}
        a, b = ids
        h, hq = handle_of(calls[a])
        check(h.path == f"/tasks/{a}" and f"{h.scheme}://{h.netloc}" == s.url
              and hq.get("attempt") == ["1"],
              f"handle {calls[a].query['handle'][0]} should be {s.url}/tasks/{a}?attempt=1&token=...")
        token = hq.get("token", [""])[0]
        attempt = int(sql(f"SELECT attempt FROM tasks WHERE id = {q(a)}")[0][0])
        check(token == callback_token(secret, a, attempt),
              f"the handle's token should be hex HMAC-SHA256(secret, '{a}:{attempt}'), "
              f"got {token!r}")
        wait_for(lambda: sql(f"SELECT status FROM tasks WHERE id = {q(a)}")[0][0] == "Running",
                 10, f"task {a} to be Running")
        tb = handle_of(calls[b])[1]["token"][0]

        step("the token allows PATCH and PUT on its task, with no other credential")
        r = s.api("PATCH", f"/tasks/{a}?token={token}", {"new_success": 2})
        check(r[0] == 200, f"PATCH with the callback token: expected 200, got {r[0]} {r[3]!r}")
        r = s.api("PUT", f"/task/{a}?token={token}", {"new_success": 1})
        check(r[0] == 202, f"PUT /task/{{id}} with the callback token: expected 202, got {r[0]}")

        step("nothing else: other methods, routes, tasks, a changed token: 403 JSON")
        for method, path, body in [("GET", f"/tasks/{a}?token={token}", None),
                                   ("DELETE", f"/tasks/{a}?token={token}", None),
                                   ("POST", f"/tasks/{a}/pause?token={token}", None),
                                   ("GET", f"/tasks?token={token}", None),
                                   ("POST", f"/tasks?token={token}",
                                    [task("x", kind=kind, on_start=rx.url())]),
                                   ("PATCH", f"/tasks/{b}?token={token}", {"new_success": 1}),
                                   ("PUT", f"/tasks/{b}?token={token}", {"new_success": 1}),
                                   ("PATCH", f"/tasks/{a}?token={tb}", {"new_success": 1}),
                                   ("PATCH", f"/tasks/{uuid.uuid4()}?token={token}",
                                    {"new_success": 1}),
                                   ("PATCH", f"/tasks/{a}?token={token[:-1]}{'1' if token[-1] == '0' else '0'}",
                                    {"status": "Success"}),
                                   ("PATCH", f"/tasks/{a}?token={token}00", {"status": "Success"}),
                                   ("PATCH", f"/tasks/{a}?token=", {"status": "Success"}),
                                   ("PATCH", f"/tasks/{a}?token=%00", {"status": "Success"}),
                                   ("PATCH", f"/tasks/not-a-uuid?token={token}",
                                    {"status": "Success"})]:
            check_json_error(s.api(method, path, body), 403, f"{method} {path[:60]}")
        check_401(s.api("PATCH", f"/tasks/{a}", {"status": "Success"}),
                  "PATCH the task without its token")

        step("a token of an earlier attempt is refused once the attempt moved on (a retry, "
             "simulated in the database): 409 attempt superseded; the new attempt's token works")
        sql(f"UPDATE tasks SET attempt = attempt + 1 WHERE id = {q(a)}")
        for method in ("PATCH", "PUT"):
            r = s.api(method, f"/tasks/{a}?token={token}", {"new_success": 1})
            check_json_error(r, 409, f"{method} with the token of the earlier attempt")
            check(r[2]["error"] == "attempt superseded", f"{method}: {r[2]}")
        newer = callback_token(secret, a, attempt + 1)
        r = s.api("PATCH", f"/tasks/{a}?token={newer}", {"status": "Success"})
        check(r[0] == 200 and r[2]["status"] == "Success",
              f"PATCH Success with the new attempt's token: {r[0]} {r[3][:200]!r}")
        r = s.api("PATCH", f"/tasks/{b}?token={tb}", {"status": "Success"})
        check(r[0] == 200, f"task {b} ends through its own handle: {r[0]}")
        wait_for(lambda: s.api("GET", f"/tasks/{a}", headers=bearer(READ_TOKEN))[2]["success"]
                 == 3, 5, "the 3 successes reported through the handle to be counted")


def part_stop_side(rx):
    step("the side stack stops")
    s = _side.pop("s", None)
    if s:
        s.stop()


if __name__ == "__main__":
    try:
        run(part_open_routes, part_no_token, part_read_token, part_write_token,
            part_callback_tokens, part_stop_side)
    finally:
        s = _side.pop("s", None)
        if s:
            s.stop()

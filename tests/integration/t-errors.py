"""t-errors: the error contract and the health endpoints (API.md, "Conventions",
"Health and metrics").

Every error answer is JSON {"error": "...", "details": [...]}; 404 for an
unknown route, 405 with Allow for a wrong method, 415, 400, 409, 413; every
answer (errors included) carries X-Request-Id.
"""

import uuid

from trlib import (api, check, check_error, create, expect, new_kind, run, short, step, task)

SEEN_REQUEST_IDS = []


def request_id(resp, what):
    rid = resp[1].get("x-request-id")
    check(rid, f"{what}: the answer has no X-Request-Id header (headers: {sorted(resp[1])})")
    SEEN_REQUEST_IDS.append(rid)
    return resp


def call(method, path, what=None, **kw):
    what = what or f"{method} {path}"
    return request_id(api(method, path, **kw), what), what


def step_unknown_routes(rx):
    step("unknown routes: 404 JSON")
    for method, path in (("GET", "/nope"), ("GET", "/"), ("POST", "/nope"),
                         ("GET", f"/tasks/{uuid.uuid4()}/nope"), ("GET", "/tasksx"),
                         ("DELETE", "/batchesx")):
        resp, what = call(method, path)
        check_error(resp, 404, what)


def step_wrong_methods(rx):
    step("wrong methods: 405 JSON with an Allow header listing the right ones")
    tid = uuid.uuid4()
    cases = [("PUT", "/tasks", {"GET", "POST"}),
             ("DELETE", "/tasks", {"GET", "POST"}),
             ("POST", f"/tasks/{tid}", {"GET", "PATCH", "PUT", "DELETE"}),
             ("GET", f"/tasks/{tid}/pause", {"POST"}),
             ("POST", "/health", {"GET"}),
             ("DELETE", "/batches", {"GET"})]
    for method, path, allowed in cases:
        resp, what = call(method, path)
        check_error(resp, 405, what)
        allow = resp[1].get("allow")
        check(allow, f"{what}: a 405 needs an Allow header")
        got = {m.strip() for m in allow.split(",")}
        check(allowed <= got and method not in got,
              f"{what}: Allow should list {sorted(allowed)} (and not {method}), got {allow!r}")


def step_bad_bodies(rx):
    step("415 for a non-JSON Content-Type, 400 for malformed JSON, 413 for a huge body")
    kind = new_kind("t-errors")
    good = [task("a", kind=kind)]
    resp, what = call("POST", "/tasks", "POST /tasks as text/plain", body=good,
                      content_type="text/plain")
    check_error(resp, 415, what)
    resp, what = call("PATCH", f"/tasks/{uuid.uuid4()}", "PATCH as text/plain",
                      raw='{"new_success": 1}', content_type="text/plain")
    check_error(resp, 415, what)
    resp, what = call("POST", "/tasks", "POST /tasks with malformed JSON", raw='[{"id": ')
    check_error(resp, 400, what)
    resp, what = call("POST", "/tasks", "POST /tasks with an empty body", raw=b"")
    check_error(resp, 400, what)
    resp, what = call("PATCH", f"/tasks/{uuid.uuid4()}", "PATCH with malformed JSON", raw="{,}")
    check_error(resp, 400, what)
    resp, what = call("POST", "/tasks", "POST /tasks of 9 MiB", raw=b"[" + b" " * (9 << 20) + b"]")
    check_error(resp, 413, what)

    step("400 for a malformed id in the path and in the query")
    resp, what = call("GET", "/tasks/not-a-uuid")
    check_error(resp, 400, what)
    resp, what = call("GET", "/tasks?batch_id=xyz")
    check_error(resp, 400, what)


def step_not_found_and_conflict(rx):
    step("404 for an unknown task; 409 for a state that does not allow the call")
    resp, what = call("GET", f"/tasks/{uuid.uuid4()}")
    check_error(resp, 404, what)
    kind = new_kind("t-errors")
    body, _ = create([task("a", kind=kind)])
    tid = body[0]["id"]
    resp, what = call("DELETE", f"/tasks/{tid}")
    expect(resp, 200, what)
    resp, what = call("DELETE", f"/tasks/{tid}", "DELETE a canceled task")
    check_error(resp, 409, what)
    resp, what = call("PATCH", f"/tasks/{tid}", "PATCH a canceled task", body={"new_success": 1})
    check_error(resp, 409, what)
    resp, what = call("POST", f"/tasks/{tid}/pause", "pause a canceled task")
    check_error(resp, 409, what)


def step_health(rx):
    step("GET /health: 200 {status: ok, database: ok}; GET /ready: 200 {status: ready}")
    resp, what = call("GET", "/health")
    body = expect(resp, 200, what)
    check(isinstance(body, dict) and body.get("status") == "ok" and body.get("database") == "ok",
          f"{what}: expected status ok, database ok, got {short(resp[3])}")
    check(resp[1].get("content-type", "").startswith("application/json"),
          f"{what}: Content-Type should be application/json, got {resp[1].get('content-type')!r}")
    resp, what = call("GET", "/ready")
    body = expect(resp, 200, what)
    check(isinstance(body, dict) and body.get("status") == "ready",
          f"{what}: expected status ready, got {short(resp[3])}")
    resp, what = call("GET", "/tasks?page_size=1")
    expect(resp, 200, what)


def step_request_ids(rx):
    step("every answer carried an X-Request-Id, each one different")
    check(len(set(SEEN_REQUEST_IDS)) == len(SEEN_REQUEST_IDS),
          f"X-Request-Id values repeat: {len(SEEN_REQUEST_IDS)} answers, "
          f"{len(set(SEEN_REQUEST_IDS))} distinct")
    print(f"   ok: {len(SEEN_REQUEST_IDS)} answers")


if __name__ == "__main__":
    run(step_unknown_routes, step_wrong_methods, step_bad_bodies, step_not_found_and_conflict,
        step_health, step_request_ids)

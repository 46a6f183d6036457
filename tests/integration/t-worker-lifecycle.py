"""t-worker-lifecycle: a task's whole life through the worker (API.md,
"Task statuses", "Report progress and outcome", "Webhooks sent by the worker").

The worker claims a Pending task and calls its on_start webhook with the
declared verb, body and headers plus handle, X-Task-Id, X-Batch-Id,
X-Task-Trigger and Idempotency-Key; a 2xx answer makes the task Running. The
executor reports progress and the outcome through the handle URL; the worker
then calls the matching end webhook (on_success or on_failure) and only it.
Every call has its own Idempotency-Key; a worker with a webhook secret signs
its calls; a large 2xx answer is still a 2xx. Every verb reaches the target
with its method.
"""

import hashlib
import hmac
import json

from trlib import (api, check, create_map, env, expect, get_task, is_ts, new_kind, patch_task,
                   step, task, wait_for, wait_status, webhook)
from workerlib import (ExtraWorker, Hooks, action_ids, deliveries, idem_key, other_public_url,
                       parse_ts, run, wait_outbox_settled, worker_settings)



def public():
    """TASKRUNNER_PUBLIC_URL, the base of every handle."""
    return env("TASKRUNNER_PUBLIC_URL").rstrip("/")


def lifecycle_task(hooks, lid, kind):
    """A task with every kind of action, each at its own path of hooks."""
    return task(lid, kind=kind, name=f"lifecycle {lid}", timeout=300,
                on_start={"kind": "Webhook", "params": {
                    "url": hooks.url(f"/{lid}/start", "run=7&mode=full"), "verb": "Post",
                    "body": {"job": lid, "n": [1, 2, 3]},
                    "headers": {"X-Custom": f"custom-{lid}"}}},
                on_success=[{"kind": "Webhook", "params": {
                    "url": hooks.url(f"/{lid}/success"), "verb": "Put",
                    "body": {"ok": True}, "headers": {"X-Outcome-Hook": "success"}}}],
                on_failure=[{"kind": "Webhook", "params": {
                    "url": hooks.url(f"/{lid}/failure"), "verb": "Post",
                    "body": {"ok": False}}}],
                on_cancel=[{"kind": "Webhook", "params": {"url": hooks.url(f"/{lid}/cancel")}}])


def check_common(call, t, trigger, what):
    """The headers every worker call carries."""
    h = call.headers
    check(h.get("x-task-id") == t["id"], f"{what}: X-Task-Id {h.get('x-task-id')!r}, "
          f"expected {t['id']}")
    check(h.get("x-batch-id") == t["batch_id"], f"{what}: X-Batch-Id {h.get('x-batch-id')!r}, "
          f"expected {t['batch_id']}")
    check(h.get("x-task-trigger") == trigger,
          f"{what}: X-Task-Trigger {h.get('x-task-trigger')!r}, expected {trigger!r}")
    handles = call.query.get("handle")
    # A start call's handle names its attempt (API.md, "Retries"); others do not.
    want = f"{public()}/tasks/{t['id']}" + ("?attempt=1" if trigger == "start" else "")
    check(handles == [want], f"{what}: handle query parameter {handles}, expected {want}")
    if trigger == "start":
        check(h.get("x-task-attempt") == "1", f"{what}: X-Task-Attempt {h.get('x-task-attempt')!r}")


def check_signature(call, secret, what):
    """X-Taskrunner-Signature when the worker has a webhook secret:
    t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">."""
    if not secret:
        return
    sig = call.headers.get("x-taskrunner-signature", "")
    parts = dict(p.split("=", 1) for p in sig.split(",") if "=" in p)
    check(set(parts) == {"t", "v1"} and parts["t"].isdigit(),
          f"{what}: bad X-Taskrunner-Signature {sig!r}")
    check(abs(int(parts["t"]) - call.wall) < 60,
          f"{what}: signature time {parts['t']} is not now ({call.wall:.0f})")
    mac = hmac.new(secret.encode(), parts["t"].encode() + b"." + call.body,
                   hashlib.sha256).hexdigest()
    check(hmac.compare_digest(mac, parts["v1"]),
          f"{what}: signature {sig!r} does not match the body {call.body!r} (expected v1={mac})")


def run_to_end(hooks, t, outcome, settings):
    """Drives one task from its on_start call to its end; returns the end call."""
    lid, tid = t["local_id"], t["id"]

    step(f"{lid}: on_start arrives with the declared verb, body, headers and the handle")
    start = hooks.wait_calls(f"/{lid}/start", 1, timeout=10)[0]
    check(start.method == "POST", f"on_start method {start.method}, expected POST")
    check_common(start, t, "start", "on_start")
    check(start.query.get("run") == ["7"] and start.query.get("mode") == ["full"],
          f"on_start: the URL's own query should be kept, got {start.query}")
    check(start.headers.get("x-custom") == f"custom-{lid}",
          f"on_start: X-Custom {start.headers.get('x-custom')!r}")
    check(start.json() == {"job": lid, "n": [1, 2, 3]}, f"on_start body {start.body!r}")
    check(start.headers.get("content-type", "").startswith("application/json"),
          f"on_start Content-Type {start.headers.get('content-type')!r}")
    check("x-task-status" not in start.headers,
          f"on_start should carry no X-Task-Status, got {start.headers.get('x-task-status')!r}")
    full = get_task(tid)
    start_ids = action_ids(full, "Start")
    check(len(start_ids) == 1, f"GET: expected one Start action, got {full['actions']}")
    want = idem_key(tid, "start", start_ids[0])
    check(start.headers.get("idempotency-key") == want,
          f"on_start Idempotency-Key {start.headers.get('idempotency-key')!r}, expected {want}")
    check_signature(start, settings.webhook_secret, "on_start")

    step(f"{lid}: the 2xx answer makes the task Running, started_at set")
    run_t = wait_status(tid, "Running", 10)
    check(is_ts(run_t["started_at"]), f"started_at {run_t['started_at']!r} after start")
    check(run_t["ended_at"] is None, f"ended_at {run_t['ended_at']!r} while Running")

    step(f"{lid}: progress through the handle URL")
    handle = start.query["handle"][0][len(public()):]  # checked above: <public>/tasks/<id>?attempt=1
    p = expect(api("PATCH", handle, {"new_success": 3, "new_failures": 1}), 200,
               f"PATCH {handle} (progress)")
    check(p["status"] == "Running" and p["success"] == 3 and p["failures"] == 1,
          f"after progress: status {p['status']}, success {p['success']}, "
          f"failures {p['failures']}")

    step(f"{lid}: PATCH {outcome} through the handle")
    body = {"status": outcome, "new_success": 2}
    if outcome == "Failure":
        body["failure_reason"] = "disk full"
    end_t = expect(api("PATCH", handle, body), 200, f"PATCH {handle} {json.dumps(body)}")
    check(end_t["status"] == outcome, f"PATCH {outcome}: status {end_t['status']}")
    check(end_t["success"] == 5, f"success should be 3 + 2, got {end_t['success']}")
    check(is_ts(end_t["ended_at"]), f"ended_at {end_t['ended_at']!r} after the end")
    check(parse_ts(end_t["ended_at"]) >= parse_ts(end_t["started_at"]),
          f"ended_at {end_t['ended_at']} before started_at {end_t['started_at']}")
    if outcome == "Failure":
        check(end_t["failure_reason"] == "disk full",
              f"failure_reason {end_t['failure_reason']!r}, expected 'disk full'")

    hook = "success" if outcome == "Success" else "failure"
    step(f"{lid}: on_{hook} arrives with the end headers")
    end = hooks.wait_calls(f"/{lid}/{hook}", 1, timeout=10)[0]
    check_common(end, t, "end", f"on_{hook}")
    check(end.headers.get("x-task-status") == outcome,
          f"on_{hook}: X-Task-Status {end.headers.get('x-task-status')!r}, expected {outcome}")
    end_ids = action_ids(full, "End", outcome)
    check(len(end_ids) == 1, f"GET: expected one End/{outcome} action, got {full['actions']}")
    want = idem_key(tid, "end", end_ids[0], outcome)
    check(end.headers.get("idempotency-key") == want,
          f"on_{hook} Idempotency-Key {end.headers.get('idempotency-key')!r}, expected {want}")
    check_signature(end, settings.webhook_secret, f"on_{hook}")
    if outcome == "Success":
        check(end.method == "PUT", f"on_success method {end.method}, expected PUT")
        check(end.json() == {"ok": True}, f"on_success body {end.body!r}")
        check(end.headers.get("x-outcome-hook") == "success",
              f"on_success: X-Outcome-Hook {end.headers.get('x-outcome-hook')!r}")
    else:
        check(end.method == "POST", f"on_failure method {end.method}, expected POST")
        check(end.json() == {"ok": False}, f"on_failure body {end.body!r}")

    step(f"{lid}: no other end or cancel webhook, and each call made once")
    rows = wait_outbox_settled(tid)
    made = sorted((r["trigger"], r["outcome"]) for r in rows)
    check(made == sorted([("Start", ""), ("End", outcome)]),
          f"deliveries of {lid}: expected one Start and one End/{outcome}, got {rows}")
    check(all(r["state"] == "done" and r["attempts"] == "1" for r in rows),
          f"deliveries of {lid} should all be done in one attempt: {rows}")
    other = "failure" if outcome == "Success" else "success"
    for path in (f"/{lid}/{other}", f"/{lid}/cancel"):
        check(not hooks.received(path), f"{path} should not be called, got {hooks.received(path)}")
    check(len(hooks.received(f"/{lid}/start")) == 1, "on_start should be called once")
    check(len(hooks.received(f"/{lid}/{hook}")) == 1, f"on_{hook} should be called once")


def part_success_path(rx):
    settings = worker_settings()
    print(f"worker settings: {settings}")
    kind = new_kind("t-worker-life")
    with Hooks() as hooks:
        step("create a task with every action, to succeed")
        t, bid = create_map([lifecycle_task(hooks, "ok", kind)],
                            headers={"X-Requester": "t-worker-lifecycle"})
        check(t["ok"]["batch_id"] == bid, f"batch_id {t['ok']['batch_id']} != {bid}")
        run_to_end(hooks, t["ok"], "Success", settings)


def part_failure_path(rx):
    settings = worker_settings()
    kind = new_kind("t-worker-life")
    with Hooks() as hooks:
        step("create a task with every action, to fail")
        t, _ = create_map([lifecycle_task(hooks, "bad", kind)])
        run_to_end(hooks, t["bad"], "Failure", settings)


def part_keys_unique(rx):
    step("several end actions: each called once, each with its own Idempotency-Key")
    kind = new_kind("t-worker-keys")
    with Hooks() as hooks:
        t, _ = create_map([task("multi", kind=kind, on_start=webhook(hooks.url("/start")),
                                on_success=[webhook(hooks.url("/s1")), webhook(hooks.url("/s2")),
                                            webhook(hooks.url("/s1"))])])
        tid = t["multi"]["id"]
        wait_status(tid, "Running", 10)
        patch_task(tid, {"status": "Success"})
        wait_outbox_settled(tid)
        end_ids = action_ids(get_task(tid), "End", "Success")
        calls = hooks.received("/s1", tid) + hooks.received("/s2", tid)
        keys = sorted(c.headers.get("idempotency-key") for c in calls)
        want = sorted(idem_key(tid, "end", a, "Success") for a in end_ids)
        check(len(end_ids) == 3 and keys == want,
              f"three on_success calls with the keys of their actions expected: got {keys}, "
              f"expected {want}")
        start_key = hooks.received("/start", tid)[0].headers.get("idempotency-key")
        check(start_key not in keys and len(set(keys)) == 3,
              f"every call needs its own key: start {start_key}, ends {keys}")


def part_signature(rx):
    step("signatures: a second worker with a webhook secret signs its calls (the stack's "
         "worker signs only if it has one)")
    secret = "t-worker-secret-" + new_kind("s")
    kind = new_kind("t-worker-sign")
    stack_secret = worker_settings().webhook_secret
    mine = other_public_url()
    with Hooks() as hooks, ExtraWorker("worker-sign", {"TASKRUNNER_WEBHOOK_SECRET": secret,
                                                       "TASKRUNNER_PUBLIC_URL": mine}):
        seen = {"body": 0, "empty": 0}
        # Both workers race for each batch; the one that wins takes it whole.
        # Bodies and empty bodies alternate, so a batch won gives both sorts.
        for round_ in range(12):
            t, _ = create_map([
                task(f"r{round_}-{i}", kind=kind, on_start=webhook(
                    hooks.url("/signed"), body={"round": round_, "i": i, "s": "é"})
                    if i % 2 == 0 else webhook(hooks.url("/signed"), verb="Get"))
                for i in range(4)])
            calls = []
            for x in t.values():
                calls += hooks.wait_calls("/signed", 1, x["id"], timeout=10)
                patch_task(x["id"], {"status": "Success"})
            for call in calls:
                if call.query.get("handle", [""])[0].startswith(mine + "/"):
                    check_signature(call, secret, f"on_start by the second worker "
                                    f"({call.method} {call.body[:40]!r})")
                    seen["body" if call.body else "empty"] += 1
                else:
                    check_signature(call, stack_secret, "on_start by the stack's worker")
            if seen["body"] and seen["empty"]:
                break
        print(f"   signed calls checked: {seen}")
        check(seen["body"] and seen["empty"],
              f"the second worker should have made calls with and without a body: {seen}")


def part_big_answer(rx):
    step("a 2xx on_start answer with a large body (256 KiB) still starts the task")
    kind = new_kind("t-worker-big")
    big = json.dumps({"log": "x" * (256 * 1024)})
    with Hooks() as hooks:
        hooks.fixed("/big", 200, big)
        t, _ = create_map([task("big", kind=kind, on_start=webhook(hooks.url("/big")))])
        tid = t["big"]["id"]
        hooks.wait_calls("/big", 1, tid, timeout=10)

        def first_attempt_over():
            rows = [r for r in deliveries(tid) if r["trigger"] == "Start"]
            return rows if rows and rows[0]["state"] != "inflight" else None
        rows = wait_for(first_attempt_over, 10, "the first on_start attempt to end")
        got = get_task(tid)
        check(got["status"] == "Running" and rows[0]["state"] == "done",
              f"on_start answered 200 (with a {len(big)} byte body): expected Running, got "
              f"{got['status']}; the start call: {rows}")


def part_verbs(rx):
    step("verbs: Get, Put, Patch, Delete (and Post, any case) webhooks arrive with that method")
    kind = new_kind("t-worker-verbs")
    verbs = {"get": ("Get", None), "put": ("Put", {"v": "put"}),
             "patch": ("Patch", {"v": "patch"}), "delete": ("Delete", {"v": "delete"}),
             "post": ("Post", None), "lower": ("pAtCh", {"v": "any case"})}
    with Hooks() as hooks:
        tasks = []
        for lid, (verb, body) in verbs.items():
            params = {"url": hooks.url(f"/verb/{lid}"), "verb": verb}
            if body is not None:
                params["body"] = body
            tasks.append(task(lid, kind=kind, on_start={"kind": "Webhook", "params": params},
                              on_success=[{"kind": "Webhook",
                                           "params": {"url": hooks.url(f"/verb-end/{lid}"),
                                                      "verb": verb}}]))
        t, _ = create_map(tasks)
        for lid, (verb, body) in verbs.items():
            call = hooks.wait_calls(f"/verb/{lid}", 1, timeout=10)[0]
            check(call.method == verb.upper(),
                  f"on_start with verb {verb}: method {call.method}, expected {verb.upper()}")
            check(call.json() == body, f"on_start with verb {verb}: body {call.body!r}, "
                  f"expected {json.dumps(body) if body is not None else 'none'}")
            wait_status(t[lid]["id"], "Running", 10)
            patch_task(t[lid]["id"], {"status": "Success"})
        for lid, (verb, _) in verbs.items():
            call = hooks.wait_calls(f"/verb-end/{lid}", 1, timeout=10)[0]
            check(call.method == verb.upper(),
                  f"on_success with verb {verb}: method {call.method}, expected {verb.upper()}")


def part_get_with_body(rx):
    step("verbs: a Get webhook with a body is still a GET, carrying the body")
    kind = new_kind("t-worker-verbs")
    with Hooks() as hooks:
        create_map([task("get-body", kind=kind, on_start={"kind": "Webhook", "params": {
            "url": hooks.url("/verb/get-body"), "verb": "Get", "body": {"q": 1}}})])
        call = hooks.wait_calls("/verb/get-body", 1, timeout=10)[0]
        check(call.method == "GET" and call.json() == {"q": 1},
              f"on_start with verb Get and a body: got {call.method} with body {call.body!r}, "
              f"expected GET with {{\"q\": 1}}")


if __name__ == "__main__":
    run(part_success_path, part_failure_path, part_keys_unique, part_signature, part_big_answer,
        part_verbs, part_get_with_body)

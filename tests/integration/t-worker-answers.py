"""t-worker-answers: what an executor's on_start answer can register, and who
chose a call (issue 24; API.md "Webhooks sent by the worker"; docs/security.md).

(a) Answers are read under the strict JSON rules of requests: single quotes,
    a comment, trailing bytes, a lone surrogate, a key with \\u0000 and an
    invalid action register nothing; each refusal is an "action_refused"
    event of the task's history with its reason, and a worker log line. A
    valid action is registered: an "action_registered" event names it, and a
    log line too.
(b) A 2xx answer over TASKRUNNER_MAX_RESPONSE_BYTES: the call succeeded in
    the history and in the metrics alike, and the unread answer is refused.
(c) The call of an executor-registered action says so
    (X-Task-Action-Source: executor), even if the action's headers say
    otherwise; the task author's own actions do not.
(d) Credentials in stored URLs (http://user:pw@host/) are used by the worker
    (Basic auth) and masked ("***") in the POST /tasks answer (and its
    Idempotency-Key replay), GET /tasks/{id}, the history, dead letters and
    the logs.
"""

import base64
import json
import os
import re

from trlib import (api, check, create, env, expect, get_task, new_kind, short, step, task,
                   wait_for, wait_status, webhook)
from workerlib import Hooks, run, wait_outbox_settled, worker_settings
from workerlib import _worker_environ as worker_environ


def log_size(name):
    try:
        return os.path.getsize(os.path.join(env("TR_VAR"), "log", name))
    except OSError:
        return 0


def log_lines(name, offset):
    try:
        with open(os.path.join(env("TR_VAR"), "log", name), "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace").splitlines()
    except OSError:
        return []


def history(tid):
    return expect(api("GET", f"/tasks/{tid}/history"), 200, f"GET /tasks/{tid}/history")


def events(tid, name):
    return [e for e in history(tid) if e["event"] == name]


def wait_event(tid, name, timeout=10):
    return wait_for(lambda: events(tid, name), timeout, f"a {name} event of task {tid}")


def cancel_actions(tid):
    return [a for a in get_task(tid)["actions"] if a["trigger"] == "Cancel"]


def part_strict_answers(rx):
    kind = new_kind("t-worker-answers")
    with Hooks() as hooks:
        url = hooks.url("/registered")
        refused = {
            "single-quotes": (f"{{'kind': 'Webhook', 'params': {{'url': '{url}'}}}}",
                              "not valid JSON"),
            "comment": (f'/* note */ {{"params": {{"url": "{url}"}}}}', "not valid JSON"),
            "trailing": (f'{{"params": {{"url": "{url}"}}}} and more', "not valid JSON"),
            "surrogate": (f'{{"params": {{"url": "{url}", "body": {{"x": "\\ud800"}}}}}}',
                          "surrogate"),
            "nul-key": (f'{{"params\\u0000x": {{"url": "{url}"}}}}', "NUL"),
            "bad-url": ('{"params": {"url": "ftp://127.0.0.1/x"}}', "params.url"),
        }
        step(f"(a) {len(refused)} malformed or invalid action answers and one valid one")
        for lid, (body, _) in refused.items():
            hooks.fixed(f"/start-{lid}", 200, body.encode())
        hooks.fixed("/start-valid", 200, {"kind": "Webhook", "params": {"url": url}})
        offset = log_size("worker.log")
        lids = list(refused) + ["valid"]
        body, _ = create([task(lid, kind=kind, on_start=webhook(hooks.url(f"/start-{lid}")))
                          for lid in lids])
        ids = {t["local_id"]: t["id"] for t in body}
        for lid in refused:
            tid = ids[lid]
            wait_status(tid, "Running", 10, f"{lid}: Running (the call itself succeeded)")
            ev = wait_event(tid, "action_refused")
            want = refused[lid][1]
            print(f"   {lid}: {ev[0]['detail'].get('reason')}")
            check(len(ev) == 1 and want in ev[0]["detail"].get("reason", ""),
                  f"{lid}: one action_refused event whose reason says {want!r}, got {ev}")
            check(ev[0]["actor"] == "worker", f"{lid}: the refusal's actor should be worker")
            check(not cancel_actions(tid), f"{lid}: nothing may be registered, got "
                  f"{cancel_actions(tid)}")
            check(not events(tid, "action_registered"), f"{lid}: no action_registered event")
            wait_for(lambda: [ln for ln in log_lines("worker.log", offset)
                              if tid in ln and "refused as a cancel action" in ln], 10,
                     f"{lid}: the worker's log line of the refusal")

        step("(a) the valid answer is registered, in the history and the log")
        tid = ids["valid"]
        ev = wait_event(tid, "action_registered")
        cancels = cancel_actions(tid)
        check(len(cancels) == 1 and cancels[0]["params"]["url"] == url,
              f"one registered cancel action to {url}, got {cancels}")
        check(len(ev) == 1 and ev[0]["detail"].get("action_id") == cancels[0]["id"]
              and ev[0]["detail"].get("url") == url,
              f"the action_registered event should name the action and its URL: {ev}")
        check(not events(tid, "action_refused"), "the valid answer was also refused")
        lines = wait_for(lambda: [ln for ln in log_lines("worker.log", offset)
                                  if tid in ln and "registers cancel action" in ln], 10,
                         "the worker's log line of the registration")
        check(cancels[0]["id"] in lines[0], f"the log line names the action: {lines[0]}")


def webhook_calls(outcome):
    """taskrunner_webhook_calls_total{trigger="Start",outcome=...} now."""
    code, _, _, raw = api("GET", "/metrics")
    check(code == 200, f"GET /metrics: {code}")
    total = 0.0
    for line in raw.decode().splitlines():
        if line.startswith("taskrunner_webhook_calls_total{"):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
            if labels.get("trigger") == "Start" and labels.get("outcome") == outcome:
                total += float(line.rsplit(" ", 1)[1])
    return total


def part_oversize_answer(rx):
    step("(b) a 2xx on_start answer over TASKRUNNER_MAX_RESPONSE_BYTES: success in the history "
         "and the metrics, the unread answer refused")
    limit = int(worker_environ().get("TASKRUNNER_MAX_RESPONSE_BYTES") or 65536)
    kind = new_kind("t-worker-answers-big")
    with Hooks() as hooks:
        pad = "x" * (limit + 1000)
        hooks.fixed("/start-big", 200, {"params": {"url": hooks.url("/c")}, "pad": pad})
        ok_before, err_before = webhook_calls("success"), webhook_calls("http_error")
        body, _ = create([task("big", kind=kind, on_start=webhook(hooks.url("/start-big")))])
        tid = body[0]["id"]
        wait_status(tid, "Running", 10)
        ev = wait_event(tid, "action_refused")
        print(f"   refused: {ev[0]['detail'].get('reason')}")
        check("longer than" in ev[0]["detail"].get("reason", ""),
              f"the refusal should say the answer was too long: {ev}")
        starts = [e for e in events(tid, "webhook") if e["detail"].get("trigger") == "Start"]
        check(len(starts) == 1 and starts[0]["detail"].get("outcome") == "success",
              f"the history should record the start call as a success: {starts}")
        # Worker metrics reach the totals within TASKRUNNER_METRICS_FLUSH_MS.
        wait_for(lambda: webhook_calls("success") >= ok_before + 1, 10,
                 "the start call counted as a success in the metrics")
        check(webhook_calls("http_error") == err_before,
              f"the over-size answer was also counted as http_error: {err_before} -> "
              f"{webhook_calls('http_error')}")
        check(not cancel_actions(tid), "nothing may be registered from an unread answer")


def part_action_source(rx):
    step("(c) the call of an executor-registered action carries X-Task-Action-Source: "
         "executor; the author's own actions do not")
    kind = new_kind("t-worker-answers-source")
    with Hooks() as hooks:
        hooks.fixed("/start-reg", 200, {"params": {
            "url": hooks.url("/executor-cancel"), "headers": {"X-Other": "kept"}}})
        body, _ = create([task("src", kind=kind, on_start=webhook(hooks.url("/start-reg")),
                               on_cancel=[webhook(hooks.url("/author-cancel"))])])
        tid = body[0]["id"]
        wait_event(tid, "action_registered")
        expect(api("DELETE", f"/tasks/{tid}"), 200, "DELETE the task")
        ex = hooks.wait_calls("/executor-cancel", 1, tid)[0]
        au = hooks.wait_calls("/author-cancel", 1, tid)[0]
        start = hooks.received("/start-reg", tid)[0]
        print(f"   executor's: {ex.headers.get('x-task-action-source')!r}; author's: "
              f"{au.headers.get('x-task-action-source')!r}")
        check(ex.headers.get("x-task-action-source") == "executor",
              f"the registered action's call: X-Task-Action-Source "
              f"{ex.headers.get('x-task-action-source')!r}, expected 'executor'")
        check(ex.headers.get("x-other") == "kept", "the registered action lost its own header")
        for c, what in ((au, "the author's on_cancel"), (start, "the author's on_start")):
            check("x-task-action-source" not in c.headers,
                  f"{what} should not carry X-Task-Action-Source: {c.headers}")
        wait_outbox_settled(tid)

    step("(c) an executor's action that names X-Task-Action-Source itself is refused")
    kind = new_kind("t-worker-answers-forged")
    with Hooks() as hooks:
        hooks.fixed("/start-forged", 200, {"params": {
            "url": hooks.url("/forged-cancel"),
            "headers": {"X-Task-Action-Source": "author"}}})
        body, _ = create([task("forged", kind=kind, on_start=webhook(hooks.url("/start-forged")))])
        tid = body[0]["id"]
        ev = wait_event(tid, "action_refused")
        check("X-Task-Action-Source" in json.dumps(ev), f"the refusal names the header: {ev}")
        expect(api("DELETE", f"/tasks/{tid}"), 200, "DELETE the task")
        wait_outbox_settled(tid)
        check(not hooks.received("/forged-cancel", tid), "the refused action was called")


def part_credentials(rx):
    step("(d) credentials in stored URLs: used by the worker, masked everywhere else")
    kind = new_kind("t-worker-answers-cred")
    secret = "s3cr3t-" + kind[-8:]
    offsets = {name: log_size(name) for name in ("worker.log", "fcgi.log")}
    with Hooks() as hooks:
        def cred(path):
            return hooks.url(path).replace("http://", f"http://bob:{secret}@")

        def masked(path):
            return hooks.url(path).replace("http://", "http://***@")
        hooks.fixed("/cred-start", 200, {"params": {"url": cred("/cred-cancel")}})
        hooks.fixed("/cred-end", 500, b"")
        tasks = [task("cred", kind=kind, on_start=webhook(cred("/cred-start")),
                      on_success=[webhook(cred("/cred-end"))])]
        key = f"cred-{kind}"
        resp = api("POST", "/tasks", tasks, headers={"Idempotency-Key": key})
        check(resp[0] == 201, f"POST /tasks: {resp[0]} {short(resp[3])}")
        check(secret.encode() not in resp[3], f"the POST answer shows the password: "
              f"{short(resp[3])}")
        tid = resp[2][0]["id"]
        start_url = [a for a in resp[2][0]["actions"] if a["trigger"] == "Start"][0]
        check(start_url["params"]["url"] == masked("/cred-start"),
              f"POST answer: on_start URL {start_url['params']['url']!r}, expected "
              f"{masked('/cred-start')!r}")
        again = api("POST", "/tasks", tasks, headers={"Idempotency-Key": key})
        check(again[0] == 201 and secret.encode() not in again[3],
              f"the Idempotency-Key replay shows the password: {short(again[3])}")

        call = hooks.wait_calls("/cred-start", 1, tid)[0]
        want = "Basic " + base64.b64encode(f"bob:{secret}".encode()).decode()
        check(call.headers.get("authorization") == want,
              f"the worker should call with the URL's credentials as Basic auth, got "
              f"{call.headers.get('authorization')!r}")
        wait_event(tid, "action_registered")
        raw = api("GET", f"/tasks/{tid}")[3]
        check(secret.encode() not in raw, f"GET /tasks/{{id}} shows the password: {short(raw)}")
        urls = sorted(a["params"]["url"] for a in get_task(tid)["actions"])
        check(urls == sorted([masked("/cred-start"), masked("/cred-end"),
                              masked("/cred-cancel")]),
              f"GET /tasks/{{id}}: every URL masked, got {urls}")

        step("(d) the end call fails every attempt: a dead letter, masked too")
        expect(api("PATCH", f"/tasks/{tid}", {"status": "Success"}), 200, "PATCH Success")
        s = worker_settings()
        deadline = s.all_retries_s() + s.retry_attempts * 2 + 10

        def dead():
            body = expect(api("GET", "/dead-letters?page_size=100"), 200, "GET /dead-letters")
            return [d for d in body if d["task_id"] == tid]
        letters = wait_for(dead, deadline, "the end call's dead letter")
        check(letters[0]["url"] == masked("/cred-end"),
              f"dead letter URL {letters[0]['url']!r}, expected {masked('/cred-end')!r}")
        raw = api("GET", "/dead-letters?page_size=100")[3]
        check(secret.encode() not in raw, "GET /dead-letters shows the password")
        hist = api("GET", f"/tasks/{tid}/history")[3]
        check(secret.encode() not in hist, f"the history shows the password: {short(hist)}")
        check(b"***@" in hist, "the history should show the masked URLs")
        for name, off in offsets.items():
            leaked = [ln for ln in log_lines(name, off) if secret in ln]
            check(not leaked, f"{name} shows the password: {leaked[:2]}")


if __name__ == "__main__":
    run(part_strict_answers, part_oversize_answer, part_action_source, part_credentials)

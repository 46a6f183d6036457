#!/usr/bin/env python3
"""examples/branching-pipeline.py: a branching pipeline on Task Runner
(README, "Example: a branching pipeline"), with its own small receiver
playing the executors. Python 3 standard library only.

    export  ──►  upload  (all_success: uses {{parents.export.output.file}})
       │           │
       └──► cleanup ◄──┘  (one_failed: only if something failed)
       └──► report  ◄──┘  (all_done: always, after the others)

export is a synchronous task: its on_start answer is its output
(store_output) and ends it Success at once (a response rule "succeed"), or,
with --fail-export, a 500 that a rule fails for good. upload's executor
answers 202 and reports Success later with PATCH on its handle. cleanup and
report answer their on_start with {"state": "done"}, which a rule turns
into Success. At the end it prints each task's status and history.

    python3 examples/branching-pipeline.py [--fail-export] [--url http://127.0.0.1:8080]

The stack must let webhooks reach 127.0.0.1 (the `make run` stack does:
TASKRUNNER_WEBHOOK_ALLOW_CIDRS). With API tokens, set TR_TOKEN.
"""

import argparse
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TERMINAL = {"Success", "Failure", "Canceled", "Skipped"}


def api(base, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if os.environ.get("TR_TOKEN"):
        req.add_header("Authorization", "Bearer " + os.environ["TR_TOKEN"])
    req.add_header("X-Requester", "branching-pipeline")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


class Receiver:
    """The executors: answers each on_start call, and PATCHes upload's end."""

    def __init__(self, base, fail_export):
        self.base, self.fail_export = base, fail_export
        self.log = []
        me = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                url = urllib.parse.urlsplit(self.path)
                handle = urllib.parse.parse_qs(url.query).get("handle", [""])[0]
                code, answer = me.answer(url.path, body, handle)
                payload = json.dumps(answer).encode() if answer is not None else b""
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, path, body, handle):
        self.log.append(f"receiver: {path} got {body.decode() or '(no body)'}")
        if path == "/export":
            if self.fail_export:
                return 500, {"error": "export failed"}
            return 200, {"file": "s3://bucket/exports/2026-12-02.csv", "rows": 1234}
        if path == "/upload":
            # The executor works, then reports Success with an output.
            h = urllib.parse.urlsplit(handle)
            threading.Timer(0.2, api, (self.base, "PATCH", h.path + "?" + h.query,
                                       {"status": "Success",
                                        "output": {"url": "https://cdn.example/2026-12-02.csv"}})).start()
            return 202, None
        return 200, {"state": "done"}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", default=os.environ.get("TR_URL", "http://127.0.0.1:8080"))
    ap.add_argument("--fail-export", action="store_true")
    ap.add_argument("--timeout", type=float, default=60.0)
    a = ap.parse_args()
    rx = Receiver(a.url, a.fail_export)
    done = {"when": {"status": ["2xx"], "json": {"path": "state", "equals": "done"}},
            "then": "succeed"}

    def hook(path, **params):
        return {"kind": "Webhook", "params": {"url": rx.url + path, **params}}

    batch = [
        {"id": "export", "name": "export orders", "kind": "example-export",
         "metadata": {"env": "prod"},
         "on_start": hook("/export", response={"store_output": True, "rules": [
             {"when": {"status": ["2xx"]}, "then": "succeed"},
             {"when": {"status": ["5xx"]}, "then": "fail"}]}),
         "on_failure": [{**hook("/alert", body={"task": "{{task.name}}"}),
                         "when": {"metadata": {"path": "env", "equals": "prod"}}}]},
        {"id": "upload", "name": "upload export", "kind": "example-upload",
         "trigger_rule": "all_success", "dependencies": [{"id": "export"}],
         "on_start": hook("/upload", body={"source": "{{parents.export.output.file}}",
                                           "rows": "{{parents.export.output.rows}}"},
                          headers={"X-Export-File": "{{parents.export.output.file}}"})},
        {"id": "cleanup", "name": "clean up", "kind": "example-cleanup",
         "trigger_rule": "one_failed",
         "dependencies": [{"id": "export"}, {"id": "upload"}],
         "on_start": hook("/cleanup", body={"batch": "{{task.batch_id}}"},
                          response={"rules": [done]})},
        {"id": "report", "name": "report", "kind": "example-report",
         "trigger_rule": "all_done",
         "dependencies": [{"id": "export"}, {"id": "upload"}, {"id": "cleanup"}],
         "on_start": hook("/report", body={"batch": "{{task.batch_id}}"},
                          response={"rules": [done]})},
    ]
    code, created = api(a.url, "POST", "/tasks", batch)
    if code != 201:
        print(f"POST /tasks: HTTP {code}: {created}", file=sys.stderr)
        return 1
    ids = {t["local_id"]: t["id"] for t in created}
    deadline = time.monotonic() + a.timeout
    tasks = {}
    while time.monotonic() < deadline:
        tasks = {lid: api(a.url, "GET", f"/tasks/{tid}")[1] for lid, tid in ids.items()}
        if all(t["status"] in TERMINAL for t in tasks.values()):
            break
        time.sleep(0.2)
    for line in rx.log:
        print(line)
    for lid, t in tasks.items():
        print(f"\n{lid}: {t['status']}"
              + (f" ({t['failure_reason']})" if t.get("failure_reason") else "")
              + (f" output={json.dumps(t['output'])}" if t.get("output") is not None else ""))
        _, hist = api(a.url, "GET", f"/tasks/{ids[lid]}/history")
        for e in hist:
            d = e["detail"]
            what = {k: d[k] for k in ("trigger", "outcome", "http_status", "error", "reason",
                                      "status", "output_set", "failure_reason", "when")
                    if k in d}
            move = f"{e['from_status']} -> {e['to_status']}" if e["from_status"] != e["to_status"] \
                else (e["to_status"] or "")
            print(f"  {e['event']:<18} {e['actor']:<18} {move:<22} {json.dumps(what) if what else ''}")
    ok = all(t["status"] in TERMINAL for t in tasks.values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

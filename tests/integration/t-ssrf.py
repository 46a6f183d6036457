"""t-ssrf: webhooks cannot be turned against the network the worker runs in
(docs/security.md, "SSRF protection").

The stack's worker allows loopback (TASKRUNNER_WEBHOOK_ALLOW_CIDRS of the
test stack), so this test pauses it and runs an extra worker without
loopback in its allow-list. All traffic stays on loopback: the addresses
blocked here are loopback ones; every other range is covered by the unit
tests of the classifier (tests/unit/test_ssrf.c), which connect nowhere.

- on_start to http://127.0.0.1:<port>: refused before connecting; the task
  fails at once, after one attempt (not retried), its failure_reason saying
  "blocked: 127.0.0.1 is a loopback address"; the receiver saw nothing;
- the same for a name (localhost: checked on the address it resolves to) and
  for the IPv6 literal [::1] (when the host has IPv6 loopback);
- an allow-list of one address (127.0.0.2/32) opens just that address: an
  on_start there works, while the task's on_success to 127.0.0.1 is refused
  and kept as a dead letter after one attempt;
- a redirect from an allowed address to a blocked one is not followed.
"""

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from seclib import paused_stack_worker
from trlib import check, create_map, new_kind, patch_task, step, task, wait_status, webhook
from workerlib import ExtraWorker, Hooks, run, wait_outbox_settled


class Target:
    """A receiver on 127.0.0.2 (any port) answering 200, or a redirect."""

    def __init__(self, redirect_to=None):
        self.calls = []
        target = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def handle_any(self):
                n = int(self.headers.get("Content-Length") or 0)
                if n:
                    self.rfile.read(n)
                target.calls.append((self.command, self.path))
                if redirect_to:
                    self.send_response(302)
                    self.send_header("Location", redirect_to)
                else:
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any

        self.server = ThreadingHTTPServer(("127.0.0.2", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.2:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def has_ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def check_blocked_start(tid, hooks, path, addr_text):
    t = wait_status(tid, "Failure", 20, f"task {tid} with on_start {path} to fail")
    reason = t.get("failure_reason") or ""
    check(f"blocked: {addr_text} is a loopback address" in reason,
          f"failure_reason should say the call was blocked: {reason!r}")
    rows = [d for d in wait_outbox_settled(tid) if d["trigger"] == "Start"]
    check(len(rows) == 1 and rows[0]["attempts"] == "1" and rows[0]["state"] == "failed",
          f"the blocked on_start should fail after one attempt, not be retried: {rows}")
    check(not hooks.received(path), f"the receiver got calls although blocked: "
          f"{hooks.received(path)}")
    print(f"   {tid}: {reason}")


def part_loopback_blocked(rx):
    step("loopback not allowed: on_start to 127.0.0.1, localhost and [::1] fail at once with "
         "the reason, not retried, nothing received")
    kind = new_kind("t-ssrf-block")
    with Hooks() as hooks, paused_stack_worker(), \
            ExtraWorker("worker-ssrf", {"TASKRUNNER_WEBHOOK_ALLOW_CIDRS": "",
                                        "TASKRUNNER_RETRY_ATTEMPTS": "5"}):
        tasks = [task("ip", kind=kind, on_start=webhook(hooks.url("/ip"))),
                 task("name", kind=kind,
                      on_start=webhook(f"http://localhost:{hooks.port}/name"))]
        v6 = has_ipv6_loopback()
        if v6:
            tasks.append(task("v6", kind=kind, on_start=webhook(f"http://[::1]:{hooks.port}/v6")))
        t, _ = create_map(tasks)
        check_blocked_start(t["ip"]["id"], hooks, "/ip", "127.0.0.1")
        # localhost resolves to 127.0.0.1 and/or ::1: every address is refused.
        tn = wait_status(t["name"]["id"], "Failure", 20)
        check("blocked:" in (tn["failure_reason"] or "") and "loopback" in tn["failure_reason"],
              f"localhost should be blocked: {tn['failure_reason']!r}")
        rows = [d for d in wait_outbox_settled(t["name"]["id"]) if d["trigger"] == "Start"]
        check(rows[0]["attempts"] == "1", f"localhost: one attempt expected: {rows}")
        if v6:
            check_blocked_start(t["v6"]["id"], hooks, "/v6", "::1")
        else:
            print("   (no IPv6 loopback on this host: [::1] not tried)")


def part_allow_list(rx):
    step("allow-list 127.0.0.2/32: on_start there works; on_success to 127.0.0.1 is refused "
         "and kept as a dead letter after one attempt; a redirect to 127.0.0.1 is not followed")
    kind = new_kind("t-ssrf-allow")
    with Hooks() as hooks:
        target = Target()
        redirector = Target(redirect_to=hooks.url("/after-redirect"))
        try:
            with paused_stack_worker(), \
                    ExtraWorker("worker-ssrf-allow",
                                {"TASKRUNNER_WEBHOOK_ALLOW_CIDRS": "127.0.0.2/32",
                                 "TASKRUNNER_RETRY_ATTEMPTS": "5",
                                 "TASKRUNNER_RETRY_BASE_MS": "100"}):
                t, _ = create_map([
                    task("ok", kind=kind, on_start=webhook(target.url + "/start"),
                         on_success=[webhook(hooks.url("/end"))]),
                    task("redirect", kind=kind, on_start=webhook(redirector.url + "/start"))])
                tid = t["ok"]["id"]
                wait_status(tid, "Running", 15)
                check(("POST", "/start") in [(m, p.split("?")[0]) for m, p in target.calls],
                      f"the allowed target should have got the on_start: {target.calls}")
                patch_task(tid, {"status": "Success"})
                rows = wait_outbox_settled(tid)
                end = [d for d in rows if d["trigger"] == "End"]
                check(len(end) == 1 and end[0]["state"] == "dead" and end[0]["attempts"] == "1"
                      and "blocked: 127.0.0.1 is a loopback address" in end[0]["last_error"],
                      f"the on_success to 127.0.0.1 should be a dead letter after one attempt, "
                      f"blocked: {end}")
                check(not hooks.received("/end"), "the blocked on_success arrived")
                print(f"   on_success: {end[0]['last_error']}")

                rid = t["redirect"]["id"]
                tr = wait_status(rid, "Failure", 30, "the redirected on_start to fail")
                check(redirector.calls, "the redirector should have been called")
                check(not hooks.received("/after-redirect"),
                      "the redirect to 127.0.0.1 was followed")
                check("302" in (tr["failure_reason"] or ""),
                      f"a redirect is a failed call (HTTP 302): {tr['failure_reason']!r}")
                print(f"   redirect: {tr['failure_reason']}")
        finally:
            target.close()
            redirector.close()


if __name__ == "__main__":
    run(part_loopback_blocked, part_allow_list)

"""t-webhook-headers: no task can change the bytes of another task's webhook
call, or claim to be another call (API.md, "Webhook header safety").

- At creation, params.headers naming a framing, hop-by-hop or service header
  (Host, Content-Length, ..., X-Task-*, Idempotency-Key, webhook-*), in any
  letter case, is 400 with the field path.
- In the worker, on every call: a row written by hand (psql, as a row stored
  before the rule would be) with such headers is called without them, the
  worker logs it once, and the connection of that call is not kept for
  another one. A raw-socket receiver on 127.0.0.1 records the exact bytes
  of every connection and splits them into requests by their own framing,
  as a server does: the attacker's call (which would have said
  Content-Length: 0 over an 11-byte body) and the victims' calls after it
  are each one well-formed request, with one Host, one Content-Length, the
  right X-Task-Id, Idempotency-Key and webhook-id, and no forged value; the
  victims succeed at their first attempt; normal calls still share a
  kept-alive connection (so the attack would have had its chance).
"""

import json
import re
import socket
import threading
import time

from trlib import (Failed, api, check, create, finish, held, new_kind, q, sql, start_holder,
                   step, task, wait_for, webhook)
from workerlib import run, wait_outbox_settled

REFUSED = ["Host", "content-length", "Transfer-Encoding", "CONNECTION", "Keep-Alive", "te",
           "Trailer", "Upgrade", "Expect", "Proxy-Authorization", "X-Task-Id", "x-task-trigger",
           "X-Task-Status", "X-Batch-Id", "Idempotency-Key", "X-Taskrunner-Signature",
           "webhook-id", "Webhook-Signature", "WEBHOOK-TIMESTAMP"]

REQUEST_LINE = re.compile(rb"^(GET|POST|PUT|PATCH|DELETE) (/\S*) HTTP/1\.1$")


class RawReceiver:
    """An HTTP/1.1 receiver on 127.0.0.1 (a free port) working on raw bytes.

    Every connection's bytes are kept as received (conns[i]["raw"]) and split
    into requests by their own Content-Length, as a server would; each is
    answered 200 with keep-alive. Anything that is not a well-formed request
    (a bad request line, a second Content-Length, Transfer-Encoding) is
    recorded in errors and the connection is closed."""

    def __init__(self):
        self.lock = threading.Lock()
        self.conns = []     # {"raw": bytearray, "requests": [dict], "closed": bool}
        self.errors = []
        self.stopping = threading.Event()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.threads = [threading.Thread(target=self._accept, daemon=True)]

    def __enter__(self):
        self.threads[0].start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        for t in list(self.threads):
            t.join(timeout=5)
        self.sock.close()
        return False

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def _accept(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            rec = {"raw": bytearray(), "requests": [], "closed": False}
            with self.lock:
                self.conns.append(rec)
            t = threading.Thread(target=self._serve, args=(conn, rec), daemon=True)
            self.threads.append(t)
            t.start()

    def _error(self, rec, why):
        with self.lock:
            self.errors.append(f"connection {self.conns.index(rec)}: {why}")

    def _serve(self, conn, rec):
        conn.settimeout(0.2)
        buf = b""
        deadline = time.monotonic() + 120
        try:
            while not self.stopping.is_set() and time.monotonic() < deadline:
                try:
                    data = conn.recv(65536)
                except socket.timeout:
                    continue
                if not data:
                    with self.lock:
                        rec["closed"] = True
                    if buf:
                        self._error(rec, f"{len(buf)} bytes left over at close: {buf[:80]!r}")
                    return
                with self.lock:
                    rec["raw"] += data
                buf += data
                while b"\r\n\r\n" in buf:
                    head, rest = buf.split(b"\r\n\r\n", 1)
                    lines = head.split(b"\r\n")
                    m = REQUEST_LINE.match(lines[0])
                    headers = [tuple(x.strip() for x in line.split(b":", 1)) for line in lines[1:]]
                    names = [h[0].lower() for h in headers]
                    if not m or any(len(h) != 2 for h in headers):
                        self._error(rec, f"not a request: {head[:120]!r}")
                        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                                     b"Connection: close\r\n\r\n")
                        return
                    if names.count(b"content-length") > 1 or b"transfer-encoding" in names:
                        self._error(rec, f"ambiguous framing: {head[:200]!r}")
                        return
                    length = 0
                    for name, value in headers:
                        if name.lower() == b"content-length":
                            length = int(value)
                    if len(rest) < length:
                        break  # the rest of the body is still coming
                    body, buf = rest[:length], rest[length:]
                    with self.lock:
                        rec["requests"].append({"line": lines[0], "headers": headers,
                                                "body": body, "raw": head + b"\r\n\r\n" + body})
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        finally:
            conn.close()

    def requests(self, path):
        """[(connection index, request)] of requests to path, in order."""
        with self.lock:
            return [(i, r) for i, c in enumerate(self.conns) for r in c["requests"]
                    if r["line"].split(b" ")[1].split(b"?")[0] == path.encode()]

    def wait_requests(self, path, n, timeout=20.0):
        return wait_for(lambda: (lambda got: got if len(got) >= n else None)(self.requests(path)),
                        timeout, f"{n} request(s) to {path} at the raw receiver")


def values(req, name):
    return [v.decode() for k, v in req["headers"] if k.lower() == name.lower().encode()]


def check_one_of_each(req, task_id, what):
    """The framing and identity headers of req: once each, the service's values."""
    for name in ("Host", "X-Task-Id", "X-Batch-Id", "X-Task-Trigger", "Idempotency-Key",
                 "webhook-id", "webhook-timestamp"):
        check(len(values(req, name)) == 1, f"{what}: {name} should come once, got "
                                           f"{values(req, name)}")
    check(values(req, "X-Task-Id") == [task_id], f"{what}: X-Task-Id {values(req, 'X-Task-Id')}")
    key = values(req, "Idempotency-Key")[0]
    check(key.startswith(f"{task_id}:start:"), f"{what}: Idempotency-Key {key}")
    check(values(req, "webhook-id") == [key], f"{what}: webhook-id should be the Idempotency-Key")
    check(len(values(req, "Content-Length")) <= 1, f"{what}: more than one Content-Length")
    cl = values(req, "Content-Length")
    check(int(cl[0]) == len(req["body"]) if cl else not req["body"],
          f"{what}: Content-Length {cl} for a body of {len(req['body'])} bytes")
    for name in ("Transfer-Encoding", "Connection", "Keep-Alive", "Upgrade", "TE", "Trailer"):
        check(not values(req, name), f"{what}: {name} should not be sent")


def part_refused_at_creation(rx):
    step("each refused header name, in any letter case: 400 with the field path")
    kind = new_kind("t-hdr-create")
    for name in REFUSED:
        for where, t in [("on_start", task("a", kind=kind, on_start=webhook(
                             rx.url("/x"), headers={name: "1", "X-Fine": "ok"}))),
                         ("on_success[0]", task("a", kind=kind, on_success=[webhook(
                             rx.url("/x"), headers={"X-Fine": "ok", name: "1"})]))]:
            code, _, body, raw = api("POST", "/tasks", [t])
            check(code == 400, f"{name} in {where}: expected 400, got {code}: {raw[:300]!r}")
            field = f"[0].{where}.params.headers.{name}"
            check(any(d.get("field") == field and "may not set" in d.get("message", "")
                      for d in body.get("fields", [])),
                  f"{name}: no error at {field}: {body}")
    step("other headers are accepted (Authorization, Content-Type, X-Tasks, X-Batch-Idx)")
    code, _, _, raw = api("POST", "/tasks", [task("a", kind=kind, on_start=webhook(
        rx.url("/x"), headers={"Authorization": "Bearer t", "Content-Type": "application/json",
                               "X-Tasks": "1", "X-Batch-Idx": "2"}))])
    check(code == 201, f"expected 201, got {code}: {raw[:300]!r}")


def part_stored_hostile_row(rx):
    step("a hand-written row with refused headers: the worker drops them, the receiver's "
         "bytes stay whole for every task")
    kind = new_kind("t-hdr-attacker")
    hostile = {"Content-Length": "0", "Host": "evil.example", "Connection": "keep-alive",
               "Transfer-Encoding": "chunked", "X-Task-Id": "forged-task",
               "X-Task-Trigger": "end", "X-Task-Status": "Success",
               "Idempotency-Key": "forged-key", "X-Taskrunner-Signature": "t=1,v1=forged",
               "webhook-id": "forged-id", "webhook-signature": "v1,forged",
               "X-Batch-Id": "forged-batch", "Expect": "100-continue",
               "Bad Name": "x", "X-Split": "a\r\nContent-Length: 0", "X-Ok": "kept"}
    holder = start_holder(kind)
    with RawReceiver() as raw:
        body, _ = create([held("attacker", kind, on_start=webhook(
            raw.url("/attacker"), body={"pad": "x"}, headers={"X-Ok": "kept"}))])
        aid = body[0]["id"]
        # Written into the row itself, as a row written by hand (its shared
        # params, action_params, are another task's too).
        rows = sql(f"UPDATE actions a SET params = jsonb_set(tr_action_own_params(a), "
                   f"'{{headers}}', {q(json.dumps(hostile))}::jsonb), params_id = NULL "
                   f"WHERE task_id = {q(aid)} "
                   f"AND trigger = 'Start' RETURNING id")
        check(len(rows) == 1, f"the attacker's on_start row should be updated once: {rows}")
        finish(holder)
        [(a_conn, a_req)] = raw.wait_requests("/attacker", 1)
        step("victims, one after the other, to the same receiver")
        vkind = new_kind("t-hdr-victim")
        victims = []
        for i in range(4):
            b, _ = create([task("v", kind=vkind, on_start=webhook(raw.url("/victim"),
                                                                 body={"v": i}))])
            victims.append(b[0]["id"])
            raw.wait_requests("/victim", i + 1)
        for vid in victims:
            rows = wait_outbox_settled(vid)
            check([(r["state"], r["attempts"]) for r in rows if r["trigger"] == "Start"] ==
                  [("done", "1")], f"victim {vid}'s start call should succeed at once: {rows}")
        wait_for(lambda: raw.conns[a_conn]["closed"], 10.0,
                 "the worker to close the attacker's connection")
        with raw.lock:
            errors = list(raw.errors)
            conns = [(len(c["requests"]), bytes(c["raw"])) for c in raw.conns]
        check(not errors, f"the receiver saw bytes that are not whole requests: {errors}")

        check(a_req["body"] == b'{"pad":"x"}', f"attacker body {a_req['body']!r}")
        check_one_of_each(a_req, aid, "attacker's call")
        check(values(a_req, "X-Ok") == ["kept"], f"X-Ok {values(a_req, 'X-Ok')}")
        check(not any(b"forged" in c[1] or b"evil.example" in c[1] or b"chunked" in c[1]
                      for c in conns), "a forged value reached the receiver")
        check(conns[a_conn][0] == 1, "the attacker's connection should carry its call only, "
                                     f"it carried {conns[a_conn][0]}")
        vreqs = raw.requests("/victim")
        check(len(vreqs) == 4, f"4 victim calls expected, got {len(vreqs)}")
        for (ci, req), vid, i in zip(vreqs, victims, range(4)):
            check(ci != a_conn, "a victim's call went over the attacker's connection")
            check_one_of_each(req, vid, f"victim {i}")
            check(req["body"] == json.dumps({"v": i}, separators=(",", ":")).encode(),
                  f"victim {i} body {req['body']!r}")
            check(f"tasks%2f{vid}".encode() in req["line"], f"victim {i} line {req['line']!r}")
        shared = max(sum(1 for ci, _ in vreqs if ci == c) for c, _ in vreqs)
        check(shared >= 2, "the victims' calls should share a kept-alive connection (normal "
                           "calls keep theirs), none did")
        print("   attacker's call as received:")
        print("     " + repr(a_req["raw"][:700]))
        print(f"   victim's call as received (connection {vreqs[0][0]}, "
              f"{shared} calls on one connection):")
        print("     " + repr(vreqs[0][1]["raw"][:500]))
    step("the worker said so, once for the call")
    with open(f"{__import__('os').environ['TR_VAR']}/log/worker.log", errors="replace") as f:
        lines = [line for line in f if "header(s) of params.headers not sent" in line
                 and aid in line]
    check(len(lines) == 1, f"the worker should log the dropped headers once: {lines}")


def part_task_headers_replace_the_workers(rx):
    step("a header of params.headers replaces the worker's own of that name (any letter "
         "case): one line of each on the wire")
    kind = new_kind("t-hdr-override")
    with RawReceiver() as raw:
        body, _ = create([task("o", kind=kind, on_start=webhook(
            raw.url("/override"), body={"k": "v"},
            headers={"content-type": "application/vnd.example+json", "USER-AGENT": "my-agent/2",
                     "accept": "application/x-custom"}))])
        tid = body[0]["id"]
        [(_, req)] = raw.wait_requests("/override", 1)
        check_one_of_each(req, tid, "the overriding task's call")
        for name, want in (("Content-Type", "application/vnd.example+json"),
                           ("User-Agent", "my-agent/2"), ("Accept", "application/x-custom")):
            check(values(req, name) == [want], f"{name}: expected the task's value once, got "
                                               f"{values(req, name)}")
        check(req["body"] == b'{"k":"v"}', f"body {req['body']!r}")
    print("   Content-Type, User-Agent, Accept: the task's value, once each")


if __name__ == "__main__":
    run(part_refused_at_creation, part_stored_hostile_row, part_task_headers_replace_the_workers)

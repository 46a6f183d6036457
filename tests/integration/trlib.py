"""trlib: the small library of the integration tests (stdlib only).

The tests run against one shared stack (see scripts/test-stack), described by
environment variables: TR_URL (the HTTP base URL), TR_PSQL (a psql command
prefix for the service database) and a few more. Every test filters by its own
unique kinds, names or batch ids: the database is never assumed empty.

    api(method, path, body=None, headers=None, raw=None, content_type=...)
        -> (status, headers, json, raw)    one HTTP call (keep-alive, per thread)
    check(cond, msg)                       raises Failed(msg) when cond is false
    sql(query) -> rows                     psql -At, for assertions on what is stored
    Receiver                               a webhook receiver recording each call
    task(local_id, **fields)               a new task with sensible defaults
    run(part, ...)                         runs a test's parts, each part(rx) with a
                                           Receiver rx; prints steps; exits 0 or 1

A task created Pending is started at once by the worker (its on_start webhook
is called). To keep tasks Pending, hold them: start_holder(kind) starts a
Running task of that kind, and tasks carrying held_rule(kind) then cannot
start while it runs (a Concurrency rule of 1 on that kind).
"""

import http.client
import json
import os
import re
import shlex
import subprocess
import sys
import threading
import time
import traceback
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")

STATUSES = ("Waiting", "Pending", "Claimed", "Running", "Success", "Failure", "Canceled",
            "Paused")
TERMINAL = ("Success", "Failure", "Canceled")
# A fresh task without dependencies: the worker may already have taken it.
STARTABLE = ("Pending", "Claimed", "Running")

# Fields of the full task object (API.md, "Read").
TASK_FIELDS = {"id", "local_id", "name", "kind", "status", "priority", "timeout", "metadata",
               "rules", "actions", "dependencies", "created_at", "started_at", "ended_at",
               "last_updated", "success", "failures", "expected_count", "failure_reason",
               "batch_id", "requester", "max_retries", "retry_count", "retry_backoff",
               "next_retry_at", "fair_by", "scheduled_at", "trigger_rule", "output", "group",
               "preemptible", "deleted_at"}
# Fields of a list summary (API.md, "List").
SUMMARY_FIELDS = {"id", "name", "kind", "status", "priority", "created_at", "started_at",
                  "ended_at", "success", "failures", "expected_count", "batch_id", "group"}

HTTP_TIMEOUT = 60  # seconds for one API call (a 10,000-task batch takes a while)


class Failed(Exception):
    """A failed check: the message names what was expected and what came."""


def check(cond, msg):
    """Raises Failed(msg) unless cond is true; returns cond otherwise."""
    if not cond:
        raise Failed(msg)
    return cond


def env(name):
    value = os.environ.get(name)
    if not value:
        raise Failed(f"environment variable {name} is not set (run under scripts/test-stack)")
    return value


def step(text):
    """Prints the name of the step about to run."""
    print(f"-- {text}", flush=True)


def new_kind(prefix):
    """A kind no other test (or run) uses: prefix + 32 hex digits (<= 100 chars)."""
    return f"{prefix}-{uuid.uuid4().hex}"


def is_uuid(s):
    return isinstance(s, str) and bool(UUID_RE.match(s))


def is_ts(s):
    return isinstance(s, str) and bool(TS_RE.match(s))


def short(data, limit=600):
    """A printable excerpt of a response body for failure messages."""
    if isinstance(data, (bytes, bytearray)):
        data = data.decode("utf-8", "replace")
    elif not isinstance(data, str):
        data = json.dumps(data)
    return data if len(data) <= limit else data[:limit] + f"... ({len(data)} chars)"


# ---------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------

_local = threading.local()
_batches = []  # batch ids created by this test run, canceled by cleanup()
_batches_lock = threading.Lock()


def _connection():
    conn = getattr(_local, "conn", None)
    if conn is None:
        url = urllib.parse.urlsplit(env("TR_URL"))
        check(url.hostname == "127.0.0.1", f"TR_URL must point at 127.0.0.1, not {url.hostname}")
        conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=HTTP_TIMEOUT)
        _local.conn = conn
    return conn


def _drop_connection():
    conn = getattr(_local, "conn", None)
    if conn is not None:
        conn.close()
    _local.conn = None


def request_parts(method, body=None, headers=None, raw=None, content_type="application/json"):
    """The bytes to send and the headers of a request: body as JSON, or raw
    (bytes or str) as it is; content_type=None sends no Content-Type; a POST,
    PUT or PATCH without a body says Content-Length: 0."""
    hdrs = dict(headers or {})
    data = None
    if raw is not None:
        data = raw.encode() if isinstance(raw, str) else raw
    elif body is not None:
        data = json.dumps(body).encode()
    if data is not None and content_type is not None:
        hdrs.setdefault("Content-Type", content_type)
    if data is None and method in ("POST", "PUT", "PATCH"):
        hdrs.setdefault("Content-Length", "0")
    return data, hdrs


def api(method, path, body=None, headers=None, raw=None, content_type="application/json"):
    """One API call: method and path (with its query) against TR_URL.

    body is sent as JSON; raw (bytes or str) is sent as it is instead.
    content_type=None sends no Content-Type. Returns (status, headers with
    lower-case names, the parsed JSON body or None, the raw body bytes).
    """
    data, hdrs = request_parts(method, body, headers, raw, content_type)

    # A kept connection that nginx closed in the meantime fails before any
    # answer: that one call is retried on a new connection.
    for attempt in (1, 2):
        conn = _connection()
        fresh = conn.sock is None
        try:
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            payload = resp.read()
            break
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            _drop_connection()
            if fresh or attempt == 2:
                raise
        except Exception:
            _drop_connection()
            raise
    if resp.will_close:
        _drop_connection()

    rheaders = {}
    for name, value in resp.getheaders():
        name = name.lower()
        rheaders[name] = f"{rheaders[name]}, {value}" if name in rheaders else value
    parsed = None
    if payload:
        try:
            parsed = json.loads(payload)
        except ValueError:
            parsed = None
    _record(method, path, data if raw is None else None, resp.status,
            rheaders.get("content-type", ""), payload)
    if method == "POST" and path.split("?")[0] in ("/tasks", "/task"):
        bid = rheaders.get("x-batch-id")
        if bid and is_uuid(bid):
            with _batches_lock:
                _batches.append(bid)
    return resp.status, rheaders, parsed, payload


RECORD_MAX = 256 * 1024  # bytes: larger bodies are not recorded


def _record(method, path, sent, status, content_type, payload):
    """With TR_API_RECORD_DIR set (scripts/test-stack exec sets it), appends
    the call to <dir>/<pid>.jsonl: method, path, the JSON sent (when this
    library serialized it), status, and the answer's JSON. t-openapi checks
    every recorded call against docs/openapi.json."""
    where = os.environ.get("TR_API_RECORD_DIR")
    if not where or len(payload) > RECORD_MAX or (sent and len(sent) > RECORD_MAX):
        return
    answer = None
    if payload and content_type.startswith("application/json"):
        try:
            answer = json.loads(payload)
        except ValueError:
            answer = "<not JSON>"
    line = json.dumps({"method": method, "path": path, "status": status,
                       "request": json.loads(sent) if sent else None,
                       "content_type": content_type.split(";")[0].strip(),
                       "response": answer})
    with _batches_lock, open(os.path.join(where, f"{os.getpid()}.jsonl"), "a") as f:
        f.write(line + "\n")


def expect(resp, status, what):
    """Checks the status of an api() answer; returns its JSON body."""
    code, _, body, payload = resp
    check(code == status, f"{what}: expected HTTP {status}, got {code}: {short(payload)}")
    return body


def check_error(resp, status, what):
    """Checks an error answer: the status, and the JSON error shape of API.md."""
    code, headers, body, payload = resp
    check(code == status, f"{what}: expected HTTP {status}, got {code}: {short(payload)}")
    check(headers.get("content-type", "").startswith("application/json"),
          f"{what}: error Content-Type should be application/json, got "
          f"{headers.get('content-type')!r}")
    check(isinstance(body, dict), f"{what}: error body is not a JSON object: {short(payload)}")
    check(isinstance(body.get("error"), str) and body["error"],
          f"{what}: error body lacks a non-empty \"error\" string: {short(payload)}")
    check(isinstance(body.get("details"), list),
          f"{what}: error body lacks a \"details\" array: {short(payload)}")
    check(isinstance(body.get("fields"), list),
          f"{what}: error body lacks a \"fields\" array: {short(payload)}")
    for f in body["fields"]:
        check(isinstance(f, dict) and isinstance(f.get("field"), str)
              and isinstance(f.get("message"), str),
              f"{what}: each entry of fields must be {{field, message}} strings: {short(payload)}")
    # details: the same problems as "<path>: <why>" strings (the original's
    # shape, which its client reads).
    want = [f"{f['field']}: {f['message']}" for f in body["fields"]]
    check(body["details"] == want,
          f"{what}: details should be the strings of fields {want}: {short(payload)}")
    return body


def detail_fields(body):
    """The field paths named in an error body (its "fields" objects)."""
    return [d.get("field") for d in body.get("fields", [])]


def create(tasks, headers=None, what="POST /tasks"):
    """POSTs a batch that must be created (201); returns (tasks, batch_id)."""
    resp = api("POST", "/tasks", tasks, headers=headers)
    body = expect(resp, 201, what)
    bid = resp[1].get("x-batch-id")
    check(is_uuid(bid), f"{what}: X-Batch-ID should be a UUID, got {bid!r}")
    check(isinstance(body, list) and len(body) == len(tasks),
          f"{what}: expected {len(tasks)} tasks in the answer, got {short(resp[3])}")
    return body, bid


def create_map(tasks, headers=None, what="POST /tasks"):
    """Like create(), but returns ({local_id: task}, batch_id)."""
    body, bid = create(tasks, headers=headers, what=what)
    return {t["local_id"]: t for t in body}, bid


def get_task(task_id):
    return expect(api("GET", f"/tasks/{task_id}"), 200, f"GET /tasks/{task_id}")


def wait_for(pred, timeout=10.0, what="condition", interval=0.05):
    """Polls pred() until it returns a true value (returned) or timeout seconds pass."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = pred()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise Failed(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def wait_status(task_id, statuses, timeout=15.0, what=None):
    """Waits until the task's status is one of statuses; returns the task."""
    if isinstance(statuses, str):
        statuses = (statuses,)
    seen = {}

    def poll():
        t = get_task(task_id)
        seen["status"] = t["status"]
        return t if t["status"] in statuses else None

    try:
        return wait_for(poll, timeout, what or f"task {task_id} to be {'/'.join(statuses)}")
    except Failed as e:
        raise Failed(f"{e} (last status {seen.get('status')})") from None


def patch_task(task_id, body, what=None):
    """PATCH /tasks/{id} that must succeed; returns the task."""
    return expect(api("PATCH", f"/tasks/{task_id}", body), 200,
                  what or f"PATCH /tasks/{task_id} {json.dumps(body)}")


def finish(task_id, status="Success", reason=None, timeout=15.0):
    """Waits until the worker has started the task, then ends it with status."""
    wait_status(task_id, "Running", timeout)
    body = {"status": status}
    if reason is not None:
        body["failure_reason"] = reason
    t = patch_task(task_id, body)
    check(t["status"] == status, f"PATCH {task_id} to {status}: task is {t['status']}")
    return t


def cleanup():
    """Cancels what is left of every batch this run created (best effort)."""
    with _batches_lock:  # newest first: held tasks go before their holders
        ids = list(dict.fromkeys(reversed(_batches)))
        _batches.clear()
    for bid in ids:
        try:
            api("DELETE", f"/batches/{bid}")
        except Exception as e:  # the stack may be down; the test result stands
            print(f"cleanup: DELETE /batches/{bid}: {e}", file=sys.stderr)


# ---------------------------------------------------------------------------
# SQL
# ---------------------------------------------------------------------------

def sql(query):
    """Runs query with TR_PSQL (-At, fields split on '|'); returns a list of rows."""
    cmd = shlex.split(env("TR_PSQL")) + ["-At", "-F", "|", "-c", query]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    check(proc.returncode == 0,
          f"psql failed ({proc.returncode}) for {query!r}: {proc.stderr.strip()}")
    return [line.split("|") for line in proc.stdout.splitlines() if line != ""]


def sql_value(query):
    rows = sql(query)
    check(len(rows) == 1 and len(rows[0]) == 1, f"expected one value from {query!r}, got {rows}")
    return rows[0][0]


def sql_count(query):
    return int(sql_value(query))


def q(text):
    """A SQL string literal."""
    return "'" + str(text).replace("'", "''") + "'"


# ---------------------------------------------------------------------------
# Webhook receiver
# ---------------------------------------------------------------------------

class Call:
    """One request the receiver got."""

    def __init__(self, at, method, path, query, headers, body):
        self.at = at              # time.monotonic()
        self.method = method
        self.path = path
        self.query = query        # {name: [values]}
        self.headers = headers    # {lower-case name: value}
        self.body = body          # bytes

    def json(self):
        return json.loads(self.body) if self.body else None

    def __repr__(self):
        return f"<{self.method} {self.path} {self.query}>"


class _QuietServer(ThreadingHTTPServer):
    """A server that does not print a traceback when the caller drops a
    connection (the worker may: a cut-off answer, a killed worker)."""

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class RecordingServer:
    """An HTTP server on 127.0.0.1 (a free port) recording every request in
    .calls (Call, with .wall = time.time() too). Subclasses say how to answer:
    respond(call) returns (code, body, delay_seconds), body being bytes, str,
    a JSON value or None; after_answer(call) runs once the answer is sent.
    Use as a context manager."""

    def __init__(self):
        self.calls = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def handle_any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length > 0 else b""
                url = urllib.parse.urlsplit(self.path)
                call = Call(time.monotonic(), self.command, url.path,
                            urllib.parse.parse_qs(url.query),
                            {k.lower(): v for k, v in self.headers.items()}, body)
                call.wall = time.time()
                with server.lock:
                    server.calls.append(call)
                code, payload, delay = server.respond(call)
                if delay:
                    time.sleep(delay)
                if payload is None:
                    payload = b""
                elif isinstance(payload, str):
                    payload = payload.encode()
                elif not isinstance(payload, (bytes, bytearray)):
                    payload = json.dumps(payload).encode()
                try:
                    self.send_response(code)
                    if payload:
                        self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass
                server.after_answer(call)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def respond(self, call):
        return 200, b"", 0

    def after_answer(self, call):
        pass

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        return False


_default_receiver = None


class Receiver(RecordingServer):
    """A webhook receiver on 127.0.0.1 (a free port) recording every request.

    behave(path, code=200, delay=0, body=b"") sets the answer for a path;
    other paths get 200 with an empty body. Use as a context manager; the
    last one entered is the default on_start target of task().
    """

    def __init__(self):
        super().__init__()
        self.rules = {}

    def respond(self, call):
        with self.lock:
            code, delay, answer = self.rules.get(call.path, (200, 0, b""))
        return code, answer, delay

    def __enter__(self):
        global _default_receiver
        super().__enter__()
        _default_receiver = self
        return self

    def __exit__(self, *exc):
        global _default_receiver
        super().__exit__(*exc)
        if _default_receiver is self:
            _default_receiver = None
        return False

    def url(self, path="/start"):
        return f"http://127.0.0.1:{self.port}{path}"

    def behave(self, path, code=200, delay=0, body=b""):
        with self.lock:
            self.rules[path] = (code, delay, body)

    def received(self, path=None):
        with self.lock:
            return [c for c in self.calls if path is None or c.path == path]

    def wait_for(self, pred, timeout=10.0, what="a webhook call"):
        """Waits until pred(calls) is true; returns its value."""
        return wait_for(lambda: pred(self.received()), timeout, what)


# ---------------------------------------------------------------------------
# Tasks
# ---------------------------------------------------------------------------

def webhook(url, **params):
    """An action object calling url (params: verb, body, headers)."""
    return {"kind": "Webhook", "params": {"url": url, **params}}


def dep(local_id, requires_success=True):
    return {"id": local_id, "requires_success": requires_success}


def task(local_id, **fields):
    """A new task (the JSON of POST /tasks) with defaults for name, kind and
    on_start (the current Receiver's /start). on_start may be given as a URL."""
    t = {"id": local_id, "name": f"task {local_id}", "kind": "t-default"}
    t.update(fields)
    start = t.get("on_start")
    if start is None and "on_start" not in fields:
        check(_default_receiver is not None, "task(): no Receiver running for on_start")
        t["on_start"] = webhook(_default_receiver.url("/start"))
    elif isinstance(start, str):
        t["on_start"] = webhook(start)
    return t


def held_rule(kind):
    """A rule that keeps a task from starting while a task of kind is Running."""
    return {"type": "Concurrency", "max_concurrency": 1,
            "matcher": {"kind": kind, "status": "Running", "fields": []}}


def held(local_id, kind, **fields):
    """A task of kind that cannot start while the holder of kind runs."""
    return task(local_id, kind=kind, rules=[held_rule(kind)], **fields)


def start_holder(kind, timeout=30.0):
    """Creates a task of kind that the worker starts and that stays Running
    (nobody ends it; its heartbeat timeout is a day). Returns its id."""
    body, _ = create([held("holder", kind, name=f"holder {kind}", timeout=86400)],
                     what=f"POST /tasks (holder of {kind})")
    hid = body[0]["id"]
    wait_status(hid, "Running", timeout, f"holder {hid} of {kind} to be Running")
    return hid


# ---------------------------------------------------------------------------
# Running a test
# ---------------------------------------------------------------------------

def run(*parts):
    """Runs each part(rx) in turn with a running Receiver rx (the default
    on_start target). A part that fails is reported (FAIL: file: part: why)
    and the next one still runs: the parts are independent. Cancels what the
    test left unfinished (while rx still answers). Exits 0 when every part
    passed, 1 otherwise."""
    name = os.path.basename(sys.argv[0])
    failed = []
    try:
        with Receiver() as rx:
            try:
                for part in parts:
                    try:
                        part(rx)
                    except Failed as e:
                        failed.append(part.__name__)
                        print(f"FAIL: {name}: {part.__name__}: {e}", file=sys.stderr, flush=True)
                    except Exception:
                        failed.append(part.__name__)
                        traceback.print_exc()
                        print(f"FAIL: {name}: {part.__name__}: unexpected error (above)",
                              file=sys.stderr, flush=True)
            finally:
                cleanup()
    except Exception:
        failed.append("set-up")
        traceback.print_exc()
        print(f"FAIL: {name}: unexpected error (above)", file=sys.stderr, flush=True)
    finally:
        _drop_connection()
    if failed:
        print(f"FAILED: {name}: {len(failed)} of {len(parts)} parts: {', '.join(failed)}",
              file=sys.stderr, flush=True)
        sys.exit(1)
    print(f"PASS: {name} ({len(parts)} parts)", flush=True)
    sys.exit(0)

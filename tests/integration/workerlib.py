"""workerlib: what the worker's integration tests (t-worker-*.py) add to trlib.

trlib gives the API client, SQL, a receiver with fixed answers and the test
runner. The worker's tests also need to play the executor and to handle the
worker processes themselves:

    Hooks                  a webhook receiver whose answer is chosen per call
                           (a function, or a sequence such as 500, 500, 200)
    Executor(hooks, path)  plays the executor of the tasks whose on_start
                           calls `path`: ends each through its handle URL
                           (PATCH) from its own threads, after the answer,
                           and counts how many ran at once
    CountSampler(query)    samples counts in the database while a test runs
    worker_settings()      the retry/timeout settings of the stack's worker
    stack_worker_pid()     the running worker process (child of the supervisor)
    ExtraWorker(name)      one more worker process, stopped on exit
    other_public_url()     a public URL that tells that worker's calls apart
    free_port()            a loopback port where nothing listens
    run(*parts)            trlib.run, printing the new lines of the worker's
                           and the responders' logs when a part fails

Every wait is bounded by a deadline (trlib.wait_for).
"""

import functools
import os
import queue
import random
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from datetime import datetime, timezone

import trlib
from trlib import Call, Failed, api, check, env, wait_for

# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------


def parse_ts(text):
    """An API timestamp (RFC 3339, UTC, microseconds) as a POSIX time."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=timezone.utc).timestamp()


def free_port():
    """A loopback TCP port where nothing listens (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def action_ids(task, trigger, condition=None):
    """The ids of the task's actions (GET /tasks/{id}) with that trigger and
    condition, in their order."""
    return [a["id"] for a in task["actions"]
            if a["trigger"] == trigger and (condition is None or a["condition"] == condition)]


def idem_key(task_id, trigger, action_id, outcome=None):
    """The Idempotency-Key of API.md: <task>:<trigger>[:<success|failure>]:<action>."""
    mid = f":{outcome.lower()}" if outcome else ""
    return f"{task_id}:{trigger}{mid}:{action_id}"


def deliveries(task_id):
    """The outbox rows of a task: [{id, trigger, outcome, state, attempts, last_error}]."""
    rows = trlib.sql("SELECT id, trigger, coalesce(outcome::text, ''), state, attempts, "
                     "coalesce(last_error, '') FROM deliveries "
                     f"WHERE task_id = {trlib.q(task_id)} ORDER BY id")
    return [dict(zip(("id", "trigger", "outcome", "state", "attempts", "last_error"), r))
            for r in rows]


def wait_outbox_settled(task_id, timeout=15.0):
    """Waits until no delivery of the task is queued or in flight; returns them."""
    def settled():
        rows = deliveries(task_id)
        return (rows,) if all(r["state"] not in ("queued", "inflight") for r in rows) else None
    try:
        return wait_for(settled, timeout, f"the webhook calls of task {task_id} to settle")[0]
    except Failed as e:
        raise Failed(f"{e}: {deliveries(task_id)}") from None


class CountSampler:
    """Samples, as often as it can in one psql session, a query of rows
    (key, count) and keeps the highest count seen per key (max_by_key).
    Use as a context manager; `samples` says how many were taken."""

    END = "@@sample-end@@"

    def __init__(self, query):
        self.query = query.strip().rstrip(";")
        self.max_by_key = {}
        self.samples = 0
        self.error = None
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.proc = None

    def __enter__(self):
        cmd = shlex.split(env("TR_PSQL")) + ["-At", "-F", "|"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.thread.join(timeout=10)
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
        return False

    def _loop(self):
        try:
            while not self.stopping.is_set():
                self.proc.stdin.write(f"{self.query};\n\\echo {self.END}\n")
                self.proc.stdin.flush()
                while True:
                    line = self.proc.stdout.readline()
                    if not line:
                        raise RuntimeError("psql ended: " + self.proc.stderr.read()[-500:])
                    line = line.rstrip("\n")
                    if line == self.END:
                        break
                    key, _, n = line.rpartition("|")
                    self.max_by_key[key] = max(self.max_by_key.get(key, 0), int(n))
                self.samples += 1
                time.sleep(0.002)
        except Exception as e:  # reported by check_clean()
            self.error = repr(e)

    def check_clean(self):
        check(self.error is None, f"sampling the database failed: {self.error}")
        check(self.samples > 0, "no sample of the database was taken")


# ---------------------------------------------------------------------------
# Hooks: a scriptable webhook receiver
# ---------------------------------------------------------------------------

class Hooks(trlib.RecordingServer):
    """A webhook receiver on 127.0.0.1 (a free port) recording every request.

    answer(path, fn): fn(call) returns the answer (code, body) or
    (code, body, delay_seconds); body may be bytes, str or a JSON value.
    Paths without an answer get 200 and an empty body. after(path, fn) calls
    fn(call) once the answer has been sent. Use as a context manager.
    """

    def __init__(self):
        super().__init__()
        self.errors = []  # exceptions of answer functions (check_clean)
        self.answers = {}
        self.afters = {}

    def respond(self, call):
        with self.lock:
            fn = self.answers.get(call.path)
        try:
            answer = fn(call) if fn else (200, b"")
        except Exception as e:  # a broken script: answer, and say so
            with self.lock:
                self.errors.append(f"answering {call!r}: {e!r}")
            answer = (500, b"")
        return answer[0], answer[1], answer[2] if len(answer) > 2 else 0

    def after_answer(self, call):
        with self.lock:
            after = self.afters.get(call.path)
        if after:
            after(call)

    def check_clean(self):
        with self.lock:
            check(not self.errors, "receiver errors: " + "; ".join(self.errors[:5]))

    def url(self, path="/start", query=""):
        return f"http://127.0.0.1:{self.port}{path}" + (f"?{query}" if query else "")

    def answer(self, path, fn):
        with self.lock:
            self.answers[path] = fn

    def after(self, path, fn):
        with self.lock:
            self.afters[path] = fn

    def fixed(self, path, code=200, body=b"", delay=0):
        """Every call to path gets this answer."""
        self.answer(path, lambda call: (code, body, delay))

    def sequence(self, path, codes, then=200):
        """The n-th call to path gets codes[n] (an int or (code, body)), later
        calls get `then`."""
        lock = threading.Lock()
        left = list(codes)

        def fn(call):
            with lock:
                a = left.pop(0) if left else then
            return (a, b"") if isinstance(a, int) else a
        self.answer(path, fn)

    def received(self, path=None, task_id=None):
        """The calls so far, to path and for task_id when given, oldest first."""
        with self.lock:
            return [c for c in self.calls
                    if (path is None or c.path == path)
                    and (task_id is None or c.headers.get("x-task-id") == task_id)]

    def wait_calls(self, path, n=1, task_id=None, timeout=10.0, what=None):
        """Waits until path got at least n calls (for task_id); returns them."""
        def enough():
            got = self.received(path, task_id)
            return got if len(got) >= n else None
        return wait_for(enough, timeout,
                        what or f"{n} call(s) to {path}" + (f" for task {task_id}" if task_id
                                                            else ""))


# ---------------------------------------------------------------------------
# Executor: ends the tasks it is asked to start
# ---------------------------------------------------------------------------

class Executor:
    """Plays the executor of the tasks whose on_start webhook calls hooks at path.

    For each on_start call it records the task as running (at once, before
    answering), answers (200, or what answer(call) returns), then, from one
    of its own threads, waits `delay` seconds (a number or a (low, high)
    range, drawn at random) and PATCHes the call's handle URL with the
    status outcome(task_id) returns: "Success", "Failure" or None (leave the
    task running; end() it yourself). A task counts as running from its
    first on_start call until its PATCH is sent: never more than the
    database counts (Claimed or Running) at the same instant. A repeated
    on_start call of a task is answered too but ends nothing more, unless
    the first one was dropped (drop_unanswered).

    group(call) (optional) names the group a call counts in (such as a
    tenant): max_by_group holds the most running at once per group.
    """

    def __init__(self, hooks, path, outcome=None, delay=0.0, answer=None, group=None,
                 threads=8):
        self.hooks = hooks
        self.path = path
        self.outcome = outcome or (lambda tid: "Success")
        self.delay = delay
        self.answer_fn = answer
        self.group = group or (lambda call: None)
        self.public_urls = [env("TASKRUNNER_PUBLIC_URL")]
        self.lock = threading.Lock()
        self.running = {}        # task id -> group, from first on_start to its PATCH
        self.max_running = 0
        self.max_by_group = {}
        self.first_start = {}    # task id -> monotonic time of its first on_start
        self.start_order = []    # task ids in the order of their first on_start
        self.start_calls = {}    # task id -> [Call] (every on_start, duplicates too)
        self.ended = {}          # task id -> (status, monotonic times the PATCH was sent
                                 #             and answered)
        self.late_starts = []    # on_start calls of tasks this executor had already ended
        self.unanswered = set()  # on_start calls received and not answered yet
        self.dropped = set()     # calls whose answer counts as lost (see drop_unanswered)
        self.queued = set()      # task ids waiting for their PATCH
        self.errors = []         # what went wrong in the executor's threads
        self.work = queue.Queue()
        self.stopping = False
        self.threads = [threading.Thread(target=self._loop, daemon=True)
                        for _ in range(threads)]
        hooks.answer(path, self._on_start)
        hooks.after(path, self._after)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stopping = True
        for _ in self.threads:
            self.work.put(None)
        for t in self.threads:
            t.join(timeout=10)
        return False

    def _on_start(self, call):
        tid = call.headers.get("x-task-id", "")
        g = self.group(call)
        with self.lock:
            self.unanswered.add(call)
            self.start_calls.setdefault(tid, []).append(call)
            if tid in self.ended:
                self.late_starts.append(call)
            elif tid not in self.running:
                self.running[tid] = g
                self.first_start[tid] = call.at
                self.start_order.append(tid)
                self.max_running = max(self.max_running, len(self.running))
                n = sum(1 for v in self.running.values() if v == g)
                self.max_by_group[g] = max(self.max_by_group.get(g, 0), n)
        if self.answer_fn:
            return self.answer_fn(call)
        return (200, b"")

    def _after(self, call):
        tid = call.headers.get("x-task-id", "")
        with self.lock:
            self.unanswered.discard(call)
            if call in self.dropped or tid in self.ended or tid in self.queued:
                return  # lost, or a repeated call of a task being handled or ended
            self.queued.add(tid)
        d = self.delay
        if isinstance(d, (tuple, list)):
            d = random.uniform(d[0], d[1])
        self.work.put((time.monotonic() + d, tid, call))

    def _loop(self):
        while True:
            item = self.work.get()
            if item is None or self.stopping:
                return
            due, tid, call = item
            try:
                status = self.outcome(tid)
                if status is not None:
                    wait = due - time.monotonic()
                    if wait > 0:
                        time.sleep(wait)
                    self.end(tid, status, call)
            except Exception as e:  # reported by check_clean()
                with self.lock:
                    self.errors.append(f"task {tid}: {e!r}")
            finally:
                with self.lock:
                    self.queued.discard(tid)

    def handle_path(self, call):
        """The path (and query) of the call's handle URL, checked to be under
        TASKRUNNER_PUBLIC_URL (or one of self.public_urls)."""
        handles = call.query.get("handle", [])
        check(len(handles) == 1, f"on_start call {call!r} should carry one handle, got {handles}")
        h = urllib.parse.urlsplit(handles[0])
        bases = [urllib.parse.urlsplit(u) for u in self.public_urls]
        check(any((h.scheme, h.netloc) == (b.scheme, b.netloc) for b in bases),
              f"handle {handles[0]} is not under TASKRUNNER_PUBLIC_URL {self.public_urls}")
        return h.path + (f"?{h.query}" if h.query else "")

    def calls_by_public_url(self):
        """{scheme://host:port of the handle: number of on_start calls}: with
        workers given different TASKRUNNER_PUBLIC_URLs, who made the calls."""
        out = {}
        with self.lock:
            for calls in self.start_calls.values():
                for c in calls:
                    h = urllib.parse.urlsplit(c.query.get("handle", [""])[0])
                    key = f"{h.scheme}://{h.netloc}"
                    out[key] = out.get(key, 0) + 1
        return out

    def end(self, tid, status, call=None, reason="executor says it failed"):
        """Ends the task through its handle (PATCH) and records it as ended."""
        call = call or self.start_calls[tid][0]
        body = {"status": status}
        if status == "Failure":
            body["failure_reason"] = reason
        path = self.handle_path(call)
        with self.lock:
            # From now on the task may have ended in the database: counting it
            # as running until the answer comes would overstate the count.
            self.running.pop(tid, None)
            sent = time.monotonic()
        code, _, _, raw = api("PATCH", path, body)
        with self.lock:
            if code == 200:
                self.ended[tid] = (status, sent, time.monotonic())
            else:
                self.errors.append(f"PATCH {status} of task {tid}: HTTP {code}: "
                                   f"{trlib.short(raw)}")
        return code

    def answering(self):
        """How many on_start calls are being answered now."""
        with self.lock:
            return len(self.unanswered)

    def drop_unanswered(self):
        """Treats the on_start calls not answered yet as never made (their
        answer is lost: the worker is about to die): the executor ends those
        tasks only when their on_start comes again. Returns their task ids."""
        with self.lock:
            self.dropped |= self.unanswered
            return {c.headers.get("x-task-id", "") for c in self.unanswered}

    def started(self):
        with self.lock:
            return list(self.start_order)

    def wait_started(self, tid, timeout=10.0):
        return wait_for(lambda: tid in self.first_start, timeout,
                        f"the on_start call of task {tid}")

    def wait_ended(self, ids, timeout=20.0):
        ids = set(ids)

        def done():
            with self.lock:
                return ids <= set(self.ended)
        try:
            wait_for(done, timeout, f"the executor to end {len(ids)} tasks")
        except Failed:
            with self.lock:
                missing = sorted(ids - set(self.ended))
                started = [t for t in missing if t in self.first_start]
            raise Failed(f"timed out after {timeout:g}s: {len(missing)} of {len(ids)} tasks "
                         f"not ended by the executor ({len(started)} of them started); "
                         f"statuses: {statuses(missing[:10])}") from None

    def check_clean(self):
        self.hooks.check_clean()
        with self.lock:
            check(not self.errors, "executor errors: " + "; ".join(self.errors[:5]))


def statuses(ids):
    """{task id: status} from GET /tasks/{id}."""
    return {tid: trlib.get_task(tid)["status"] for tid in ids}


# ---------------------------------------------------------------------------
# The worker processes
# ---------------------------------------------------------------------------

def _children(pid):
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def supervisor_pids():
    """The pids of the worker supervisors (TR_WORKER_PIDFILE)."""
    with open(env("TR_WORKER_PIDFILE")) as f:
        return [int(line) for line in f.read().split() if line.strip().isdigit()]


def stack_worker_pid():
    """The pid of the worker the stack's supervisor runs now, or None."""
    for sup in supervisor_pids():
        for child in _children(sup):
            if "taskrunner-worker" in _cmdline(child).split(" ")[0]:
                return child
    return None


def wait_stack_worker(old_pid=None, timeout=15.0):
    """Waits for a running stack worker (one other than old_pid); returns its pid."""
    def found():
        pid = stack_worker_pid()
        return pid if pid and pid != old_pid else None
    return wait_for(found, timeout, "the supervisor to run a (new) worker process")


def _worker_environ():
    """The environment of the stack's worker (so that another worker, or the
    test's expectations, use its very settings); the test's own environment
    when it cannot be read."""
    pid = stack_worker_pid()
    if pid:
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                items = [kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv]
            return {k.decode(): v.decode(errors="replace") for k, v in items}
        except OSError:
            pass
    return dict(os.environ)


class Settings:
    """The worker settings that tests depend on (README, config table)."""

    def __init__(self, e):
        def num(name, default):
            return int(e.get(name) or default)
        self.retry_attempts = num("TASKRUNNER_RETRY_ATTEMPTS", 5)
        self.retry_base_ms = num("TASKRUNNER_RETRY_BASE_MS", 500)
        self.retry_factor = num("TASKRUNNER_RETRY_FACTOR", 2)
        self.retry_cap_ms = num("TASKRUNNER_RETRY_CAP_MS", 60000)
        self.webhook_timeout_ms = num("TASKRUNNER_WEBHOOK_TIMEOUT_MS", 10000)
        self.poll_interval_ms = num("TASKRUNNER_POLL_INTERVAL_MS", 1000)
        self.webhook_secret = e.get("TASKRUNNER_WEBHOOK_SECRET", "")

    def backoff_range_ms(self, attempts):
        """(lowest, highest) wait after the attempts-th failed attempt: exponential
        with a cap, and jitter of up to half the delay."""
        delay = min(self.retry_base_ms * self.retry_factor ** (attempts - 1), self.retry_cap_ms)
        return delay / 2, delay

    def all_retries_s(self):
        """The longest time all retries of one call wait in total, in seconds."""
        return sum(self.backoff_range_ms(k)[1] for k in range(1, self.retry_attempts)) / 1000

    def __repr__(self):
        return (f"attempts={self.retry_attempts} base={self.retry_base_ms}ms "
                f"factor={self.retry_factor} cap={self.retry_cap_ms}ms "
                f"webhook timeout={self.webhook_timeout_ms}ms poll={self.poll_interval_ms}ms")


def worker_settings():
    return Settings(_worker_environ())


def other_public_url():
    """TASKRUNNER_PUBLIC_URL spelt with `localhost`: the same API, but handles
    made by a worker given it can be told apart (nothing is sent to it)."""
    u = urllib.parse.urlsplit(env("TASKRUNNER_PUBLIC_URL"))
    return f"{u.scheme}://localhost:{u.port or 80}{u.path}".rstrip("/")


class ExtraWorker:
    """One more taskrunner-worker against the stack's database, with the stack
    worker's environment (plus extra_env), logging to $TR_VAR/log/<name>.log.
    As root it runs as the service user (TR_RUNAS), from the copy of the
    binary the stack made for that user (TR_SVC_BIN) when there is one.
    Stopped with SIGTERM (SIGKILL after `grace` s) on exit."""

    def __init__(self, name, extra_env=None, grace=20.0):
        self.name = name
        self.grace = grace
        self.env = _worker_environ()
        self.env.update({"TASKRUNNER_DATABASE_URL": env("TASKRUNNER_DATABASE_URL"),
                         "TASKRUNNER_PUBLIC_URL": env("TASKRUNNER_PUBLIC_URL")})
        self.env.update(extra_env or {})
        self.log_path = os.path.join(env("TR_VAR"), "log", f"{name}.log")
        self.proc = None

    def command(self):
        binary = os.path.join(env("TR_BIN"), "taskrunner-worker")
        prefix = []
        if os.geteuid() == 0:
            svc_bin = os.environ.get("TR_SVC_BIN")
            if svc_bin and os.access(os.path.join(svc_bin, "taskrunner-worker"), os.X_OK):
                binary = os.path.join(svc_bin, "taskrunner-worker")
            runas = os.environ.get("TR_RUNAS")
            if runas:
                prefix = shlex.split(runas)
            else:
                prefix = ["runuser", "-u", env("TR_SVC_USER"), "--preserve-environment", "--"]
        return prefix + [binary]

    def __enter__(self):
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(self.command(), env=self.env, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log, cwd="/")
        finally:
            log.close()
        try:
            wait_for(lambda: self.proc.poll() is not None or "listening for work" in self.log(),
                     15.0, f"worker {self.name} to listen for work")
            check(self.proc.poll() is None,
                  f"worker {self.name} exited with {self.proc.returncode}: "
                  f"{self.log()[-1500:]}")
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if not self.proc or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=self.grace)
        except subprocess.TimeoutExpired:
            print(f"worker {self.name} did not stop within {self.grace:g}s; killing it",
                  file=sys.stderr)
            self.proc.kill()
            self.proc.wait(timeout=10)


# ---------------------------------------------------------------------------
# Running a test
# ---------------------------------------------------------------------------

LOGS = ("worker.log", "fcgi.log")


def _log_sizes():
    sizes = {}
    for name in LOGS:
        try:
            sizes[name] = os.path.getsize(os.path.join(env("TR_VAR"), "log", name))
        except (OSError, Failed):
            sizes[name] = 0
    return sizes


def _print_new_log_lines(sizes, limit=60):
    for name, start in sizes.items():
        try:
            with open(os.path.join(env("TR_VAR"), "log", name), "rb") as f:
                f.seek(start)
                lines = f.read().decode(errors="replace").splitlines()
        except (OSError, Failed):
            continue
        if lines:
            print(f"--- {name}, last {min(limit, len(lines))} of {len(lines)} lines written "
                  f"during the test ---", file=sys.stderr)
            for line in lines[-limit:]:
                print(line, file=sys.stderr)
    sys.stderr.flush()


def run(*parts):
    """trlib.run(*parts): each part(rx) runs in turn, independent of the
    others; when one fails, what the worker and the responders logged while
    it ran is printed too."""
    def logged(part):
        @functools.wraps(part)
        def wrapped(rx):
            sizes = _log_sizes()
            try:
                part(rx)
            except BaseException:
                _print_new_log_lines(sizes)
                raise
        return wrapped
    trlib.run(*[logged(p) for p in parts])

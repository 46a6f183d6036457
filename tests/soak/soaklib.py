"""soaklib: what the soak, the failover drill and the several-hosts test share.

    Stack(var, ports, bin)   a stack of its own (scripts/stack with TR_VAR and
                             ports of the caller), its processes and psql
    Client                   an API client that retries what may be retried:
                             connection errors, 502/503/504 (Retry-After), and
                             POST /tasks with its Idempotency-Key (409 while in
                             progress); counts every answer by status
    ExecRx, EndRx            webhook receivers: the executor (answers start
                             calls, sometimes 500, late or slow, then reports
                             progress with PUT and the outcome with PATCH
                             through the handle) and the end/cancel target
                             (sometimes 500 or late; a backlog mode)
    Sampler                  samples, during the run, the tasks counted by
                             concurrency rules (fresh psql per sample, so a
                             database restart only costs samples)
    check_invariants(...)    the invariant checker (after the system settled)

Loopback only; every loop is bounded by a deadline.
"""

import http.client
import json
import os
import queue
import random
import re
import shlex
import subprocess
import sys
import threading
import time
import urllib.parse
from collections import Counter, defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

import trlib  # noqa: E402  (RecordingServer)

TERMINAL = ("Success", "Failure", "Canceled", "Skipped")
RETRYABLE = (502, 503, 504)


def log(msg):
    print(f"{time.strftime('%H:%M:%S')} {msg}", flush=True)


def children(pid):
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def read_pid(path):
    try:
        with open(path) as f:
            return [int(x) for x in f.read().split()]
    except (OSError, ValueError):
        return []


# ---------------------------------------------------------------------------
# The stack
# ---------------------------------------------------------------------------

class Stack:
    """A stack of its own: scripts/stack with TR_VAR=var and the given ports.
    extra: more environment (TASKRUNNER_* settings). db_url: use that
    database (TR_DATABASE_URL: no PostgreSQL of the stack's own)."""

    def __init__(self, var, http_port, https_port, pg_port, bin_dir, extra=None):
        self.var = var
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("TASKRUNNER_", "TR_"))}
        self.env.update({
            "TR_VAR": var, "TR_BIN": bin_dir,
            "TASKRUNNER_HTTP_PORT": str(http_port), "TASKRUNNER_HTTPS_PORT": str(https_port),
            "TASKRUNNER_PG_PORT": str(pg_port),
            "TASKRUNNER_RESPONDERS": "2", "TASKRUNNER_FCGI_THREADS": "4",
            "TASKRUNNER_WORKERS": "2",
            "TASKRUNNER_RATE_LIMIT": "100000", "TASKRUNNER_RATE_BURST": "100000",
            # Durable commits: an immediate shutdown must lose nothing acknowledged.
            "TR_PG_FAST": "0",
        })
        self.env.update(extra or {})
        self.url = f"http://127.0.0.1:{http_port}"
        self.info = {}

    def script(self, cmd, check=True):
        proc = subprocess.run([os.path.join(REPO, "scripts", "stack"), cmd], env=self.env,
                              capture_output=True, text=True, timeout=300)
        if check and proc.returncode != 0:
            raise RuntimeError(f"scripts/stack {cmd} failed: {proc.stdout}\n{proc.stderr}")
        return proc

    def wipe(self):
        """Empties the var dir if it is one of ours (or missing)."""
        real = os.path.realpath(self.var)
        if os.path.isdir(real) and os.listdir(real):
            if not os.path.exists(os.path.join(real, ".taskrunner-var")):
                raise RuntimeError(f"{real} is not a Task Runner var dir; not wiping it")
            subprocess.run(["rm", "-rf", "--one-file-system", "--", real], check=True)
        if os.path.islink(self.var):
            os.unlink(self.var)

    def start(self, wipe=True):
        self.script("stop", check=False)
        if wipe:
            self.wipe()
        os.makedirs(self.var, exist_ok=True)
        self.script("start")
        self.load_env()

    def load_env(self):
        real = os.path.realpath(self.var)
        with open(os.path.join(real, "stack.env")) as f:
            for line in f:
                m = re.match(r"export (\w+)=(.*)$", line.strip())
                if m:
                    self.info[m.group(1)] = shlex.split(m.group(2))[0] if m.group(2) else ""
        self.run_dir = self.info["TR_RUN"]
        self.log_dir = self.info["TR_LOG"]

    def stop(self):
        return self.script("stop", check=False)

    def psql_cmd(self):
        return shlex.split(self.info["TR_PSQL"])

    def sql(self, query, timeout=120):
        proc = subprocess.run(self.psql_cmd() + ["-At", "-F", "|", "-c", query],
                              capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"psql failed for {query[:200]!r}: {proc.stderr.strip()}")
        return [line.split("|") for line in proc.stdout.splitlines() if line != ""]

    def sql_json(self, query):
        """Rows of a query as one JSON array (json_agg), parsed."""
        proc = subprocess.run(self.psql_cmd() + ["-At", "-c",
                              f"SELECT coalesce(json_agg(q), '[]') FROM ({query}) q"],
                              capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            raise RuntimeError(f"psql failed for {query[:200]!r}: {proc.stderr.strip()}")
        return json.loads(proc.stdout)

    # Processes ------------------------------------------------------------

    def responders(self):
        mw = read_pid(os.path.join(self.run_dir, "fcgi.pid"))
        return [p for m in mw for p in children(m) if "taskrunner-fcgi" in cmdline(p)]

    def workers(self):
        sups = read_pid(os.path.join(self.run_dir, "worker.pid"))
        return [p for s in sups for p in children(s) if "taskrunner-worker" in cmdline(p)]

    def nginx_workers(self):
        real = os.path.realpath(self.var)
        master = read_pid(os.path.join(real, "nginx", "nginx.pid"))
        return [p for m in master for p in children(m) if "nginx: worker" in cmdline(p)]

    def runas(self):
        r = self.info.get("TR_RUNAS", "")
        return shlex.split(r) if r else []

    def pg_ctl(self, *args, timeout=90):
        cmd = self.runas() + [os.path.join(self.info["TR_PGBIN"], "pg_ctl"),
                              "-D", self.info["TR_PGDATA"], *args]
        clean = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/", "LANG": "C.UTF-8"}
        return subprocess.run(cmd, env=clean, cwd="/", capture_output=True, text=True,
                              timeout=timeout)

    def pg_restart(self, mode):
        """Restarts the stack's PostgreSQL (-m fast or immediate)."""
        proc = self.pg_ctl("-m", mode, "-w", "-t", "60", "-s", "-l",
                           os.path.join(self.log_dir, "postgresql.log"), "restart")
        if proc.returncode != 0:
            raise RuntimeError(f"pg_ctl restart -m {mode}: {proc.stdout} {proc.stderr}")

    def sanitizer_reports(self):
        found = []
        for name in os.listdir(self.log_dir):
            path = os.path.join(self.log_dir, name)
            if not name.endswith(".log"):
                continue
            with open(path, errors="replace") as f:
                for line in f:
                    if re.search(r"ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:", line):
                        found.append(f"{name}: {line.strip()}")
                        break
        return found


# ---------------------------------------------------------------------------
# The API client
# ---------------------------------------------------------------------------

class Client:
    """Calls the API at one of `urls` (chosen per call). Retries connection
    errors and 502/503/504 (after Retry-After, at most 1 s) until `patience`
    seconds pass; with retry_409 (POST /tasks with an Idempotency-Key) a 409
    "in progress" too. Counts every answer (codes) and the ambiguous calls
    (a non-idempotent call that may or may not have been applied)."""

    def __init__(self, urls, requester="soak", patience=120.0):
        self.urls = list(urls)
        self.requester = requester
        self.patience = patience
        self.local = threading.local()
        self.lock = threading.Lock()
        self.codes = Counter()
        self.bad = []          # 500s and other answers that are never right
        self.first_503 = None  # (wall time, url)
        self.events = []       # (wall time, code) when record_events is set
        self.record_events = False

    def _conn(self, base):
        conns = getattr(self.local, "conns", None)
        if conns is None:
            conns = self.local.conns = {}
        c = conns.get(base)
        if c is None:
            u = urllib.parse.urlsplit(base)
            c = conns[base] = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        return c

    def _drop(self, base):
        c = self.local.conns.pop(base, None)
        if c is not None:
            c.close()

    def once(self, method, path, body=None, headers=None, base=None):
        """One try: (status or None on a connection error, headers, json)."""
        base = base or random.choice(self.urls)
        hdrs = {"X-Requester": self.requester}
        hdrs.update(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        elif method in ("POST", "PUT", "PATCH"):
            hdrs["Content-Length"] = "0"
        try:
            c = self._conn(base)
            c.request(method, path, body=data, headers=hdrs)
            r = c.getresponse()
            payload = r.read()
            if r.will_close:
                self._drop(base)
        except (OSError, http.client.HTTPException):
            self._drop(base)
            self._count("conn")
            return None, {}, None
        rh = {k.lower(): v for k, v in r.getheaders()}
        try:
            parsed = json.loads(payload) if payload else None
        except ValueError:
            parsed = None
        self._count(r.status)
        if r.status >= 500 and r.status not in RETRYABLE:
            with self.lock:
                self.bad.append(f"{method} {path}: {r.status} {payload[:300]!r}")
        if r.status == 503:
            if self.first_503 is None:
                self.first_503 = time.time()
            if not rh.get("retry-after", "").isdigit():
                with self.lock:
                    self.bad.append(f"{method} {path}: 503 without Retry-After")
        return r.status, rh, parsed

    def _count(self, code):
        with self.lock:
            self.codes[code] += 1
            if self.record_events:
                self.events.append((time.time(), code))

    def call(self, method, path, body=None, headers=None, retry_409=False):
        """Tries until an answer that is not retryable, or patience runs out
        (then (None, {}, None)). Returns (status, headers, json, tries)."""
        deadline = time.monotonic() + self.patience
        tries = 0
        while True:
            tries += 1
            code, rh, js = self.once(method, path, body, headers)
            retry = code is None or code in RETRYABLE or (retry_409 and code == 409)
            if not retry:
                return code, rh, js, tries
            if time.monotonic() >= deadline:
                return None, {}, None, tries
            wait = 0.2
            if code in (429, 503) and rh.get("retry-after", "").isdigit():
                wait = min(1.0, float(rh["retry-after"]))
            time.sleep(wait * random.uniform(0.5, 1.0))


# ---------------------------------------------------------------------------
# Receivers
# ---------------------------------------------------------------------------

def call_key(call):
    return call.headers.get("idempotency-key", "")


class Faulty(trlib.RecordingServer):
    """A receiver whose answers are sometimes 500, late (past the worker's
    timeout) or slow. backlog_until: every call is late until then."""

    def __init__(self, p500=0.08, plate=0.03, pslow=0.08, late=2.6, slow=0.4):
        super().__init__()
        self.p500, self.plate, self.pslow = p500, plate, pslow
        self.late, self.slow = late, slow
        self.backlog_until = 0.0
        self.faults = Counter()
        self.ok_only = False

    def respond(self, call):
        if time.time() < self.backlog_until:
            self.faults["backlog-late"] += 1
            return 200, b"", self.late
        if self.ok_only:
            return 200, b"", 0
        r = random.random()
        if r < self.p500:
            self.faults["500"] += 1
            return 500, b"", 0
        if r < self.p500 + self.plate:
            self.faults["late"] += 1
            return 200, b"", self.late
        if r < self.p500 + self.plate + self.pslow:
            self.faults["slow"] += 1
            return 200, b"", self.slow
        return 200, b"", 0

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def snapshot(self):
        with self.lock:
            return list(self.calls)


class ExecRx(Faulty):
    """The executor: each start call (once per Idempotency-Key and attempt)
    becomes a job run by its threads after the answer: PUT progress, then
    PATCH the outcome the call's body asks for, through the handle.
    Records what it reported (progress sums accepted and ambiguous)."""

    def __init__(self, client, threads=6, **kw):
        super().__init__(**kw)
        self.client = client
        self.jobs = queue.Queue()
        self.seen = set()
        self.progress_ok = Counter()     # task id -> success counts accepted
        self.progress_maybe = Counter()  # task id -> counts whose fate is unknown
        self.acked = {}                  # task id -> "Success": a PATCH answered 200
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(threads)]

    def __enter__(self):
        super().__enter__()
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        return super().__exit__(*exc)

    def after_answer(self, call):
        handle = call.query.get("handle", [None])[0]
        if not handle:
            return
        key = (call_key(call), handle)
        with self.lock:
            if key in self.seen:
                return
            self.seen.add(key)
        self.jobs.put((call, handle))

    def _loop(self):
        while not self.stopping.is_set():
            try:
                call, handle = self.jobs.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                self._job(call, handle)
            except Exception as e:  # a job's failure must not stop the executor
                print(f"executor: {e!r}", file=sys.stderr, flush=True)

    def _job(self, call, handle):
        spec = call.json() or {}
        u = urllib.parse.urlsplit(handle)
        path = u.path + (f"?{u.query}" if u.query else "")
        task_id = u.path.rsplit("/", 1)[-1]
        attempt = int(urllib.parse.parse_qs(u.query).get("attempt", ["1"])[0])
        outcome = spec.get("outcome", "success")
        if outcome == "hang":
            return  # the heartbeat timeout ends it
        time.sleep(spec.get("work", 0.0) * random.uniform(0.5, 1.5))
        for _ in range(spec.get("puts", 1)):
            n = random.randint(1, 5)
            code, _, _, tries = self.client.call("PUT", path, {"new_success": n})
            # A retried PUT (a broken connection or a 503 while the database
            # restarted) may have been applied by each try: the count is
            # then known only to be between once (202) and once per try.
            with self.lock:
                if code == 202:
                    self.progress_ok[task_id] += n
                    self.progress_maybe[task_id] += n * (tries - 1)
                else:
                    self.progress_maybe[task_id] += n * (tries - (code is not None))
            if code == 409:
                return  # canceled, timed out, or the attempt was superseded
        if outcome == "fail" or (outcome == "fail_once" and attempt == 1):
            body = {"status": "Failure", "failure_reason": "soak: failed on purpose"}
        else:
            body = {"status": "Success", "new_failures": 0}
        code, _, _, _ = self.client.call("PATCH", path, body)
        if code == 200 and body["status"] == "Success":
            with self.lock:
                self.acked[task_id] = "Success"


# ---------------------------------------------------------------------------
# Sampling the rules during the run
# ---------------------------------------------------------------------------

class Sampler:
    """Every `every` s, counts the tasks matching the soak's concurrency
    rules (kind, tenant) now Claimed or Running; keeps the highest count."""

    def __init__(self, stack, kind, every=0.25):
        self.stack, self.kind, self.every = stack, kind, every
        self.max_by_key = Counter()
        self.samples = 0
        self.failed = 0
        self.pending = 0  # tasks of the kind waiting now (the load keeps it bounded)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.thread.join(timeout=30)

    def _loop(self):
        q = ("SELECT metadata->>'tenant', status IN ('Claimed', 'Running'), count(*) "
             f"FROM tasks WHERE kind = '{self.kind}' "
             "AND status IN ('Claimed', 'Running', 'Pending') GROUP BY 1, 2")
        while not self.stopping.wait(self.every):
            try:
                rows = self.stack.sql(q, timeout=10)
            except Exception:
                self.failed += 1
                continue
            self.samples += 1
            pending = 0
            for tenant, active, n in rows:
                if active == "t":
                    self.max_by_key[tenant] = max(self.max_by_key[tenant], int(n))
                else:
                    pending += int(n)
            self.pending = pending


# ---------------------------------------------------------------------------
# Settling and the invariant checker
# ---------------------------------------------------------------------------

def wait_settled(stack, timeout=240.0):
    """Waits until every task has ended and no webhook call is queued or in
    flight. Returns the rows still open when the deadline passed ([])."""
    deadline = time.monotonic() + timeout
    next_note = time.monotonic() + 10
    while True:
        try:
            open_tasks = stack.sql(
                "SELECT status, count(*) FROM tasks WHERE status NOT IN "
                "('Success', 'Failure', 'Canceled', 'Skipped') GROUP BY 1")
            open_calls = stack.sql(
                "SELECT state, count(*) FROM deliveries WHERE state IN ('queued', 'inflight') "
                "GROUP BY 1")
        except Exception as e:
            open_tasks, open_calls = [["?", str(e)]], []
        if not open_tasks and not open_calls:
            return []
        if time.monotonic() >= deadline:
            return open_tasks + open_calls
        if time.monotonic() >= next_note:
            log(f"settling: open tasks {open_tasks}, open calls {open_calls}")
            next_note = time.monotonic() + 10
        time.sleep(0.5)


def parse_metrics(text):
    """Prometheus text: [(name, {labels}, value)]."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)", line)
        if not m:
            continue
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        out.append((m.group(1), labels, float(m.group(4))))
    return out


class Checker:
    """Reads the database, the receivers' records and /metrics after the
    system settled; each violation is a line in .violations."""

    def __init__(self, stack, client):
        self.stack, self.client = stack, client
        self.violations = []
        self.figures = {}

    def fail(self, what, items):
        items = list(items)
        if items:
            self.violations.append(f"{what}: {len(items)}, e.g. {items[:5]}")

    def accepted(self, accepted):
        """accepted: {idempotency key: (batch id, [task ids])} from the 201s."""
        rows = self.stack.sql_json("SELECT id, batch_id FROM tasks")
        where = {r["id"]: r["batch_id"] for r in rows}
        missing, wrong_batch = [], []
        n = 0
        for key, (bid, ids) in accepted.items():
            for tid in ids:
                n += 1
                if tid not in where:
                    missing.append(tid)
                elif where[tid] != bid:
                    wrong_batch.append(tid)
        self.fail("accepted tasks missing", missing)
        self.fail("accepted tasks in another batch", wrong_batch)
        # One batch per key, and every task of the batch is one the 201 named.
        per_batch = Counter(where.values())
        sizes = [(k, per_batch[b], len(ids)) for k, (b, ids) in accepted.items()
                 if per_batch[b] != len(ids)]
        self.fail("batches whose size differs from the 201", sizes)
        keys = self.stack.sql_json(
            f"SELECT key, batch_id FROM idempotency_keys WHERE requester = '{self.client.requester}'")
        dup = [k for k in keys if k["key"] in accepted and accepted[k["key"]][0] != k["batch_id"]]
        self.fail("idempotency keys naming another batch", dup)
        extra = self.stack.sql(
            "SELECT count(DISTINCT t.batch_id) FROM tasks t JOIN batches b ON b.id = t.batch_id "
            f"WHERE b.requester = '{self.client.requester}'")
        n_batches = int(extra[0][0])
        if n_batches > len(accepted):
            self.violations.append(
                f"{n_batches} batches of requester {self.client.requester} stored for "
                f"{len(accepted)} accepted keys (a batch stored twice or without a 201)")
        self.figures["tasks_accepted"] = n
        self.figures["batches_accepted"] = len(accepted)
        self.figures["tasks_total"] = len(where)

    def terminal(self):
        rows = self.stack.sql("SELECT id, status FROM tasks WHERE status NOT IN "
                              "('Success', 'Failure', 'Canceled', 'Skipped')")
        self.fail("tasks neither ended nor legitimately waiting", rows)
        by = self.stack.sql("SELECT status, count(*) FROM tasks GROUP BY 1 ORDER BY 1")
        self.figures["tasks_by_status"] = {s: int(n) for s, n in by}

    def rules(self, kind, limit, sampler):
        over = [(k, v) for k, v in sampler.max_by_key.items() if v > limit]
        self.fail(f"rule of {kind} exceeded (sampled)", over)
        self.figures["rule_samples"] = sampler.samples
        self.figures["rule_max_sampled"] = max(sampler.max_by_key.values(), default=0)
        # From the history, in the order the events were written (a sequence:
        # an event written after another saw its commit has a higher id).
        ev = self.stack.sql(
            "SELECT e.id, e.task_id, t.metadata->>'tenant', e.from_status, e.to_status "
            "FROM task_events e JOIN tasks t ON t.id = e.task_id "
            f"WHERE t.kind = '{kind}' AND e.from_status IS NOT NULL "
            "AND e.event IN ('status', 'canceled', 'paused', 'resumed') ORDER BY e.id")
        active = ("Claimed", "Running")
        count = Counter()
        worst = Counter()
        bad = []
        for eid, _tid, tenant, frm, to in ev:
            if frm in active and to not in active:
                count[tenant] -= 1
            elif to in active and frm not in active:
                count[tenant] += 1
                if count[tenant] > limit:
                    bad.append((eid, tenant, count[tenant]))
            worst[tenant] = max(worst[tenant], count[tenant])
        self.fail(f"rule of {kind} exceeded (history)", bad)
        self.figures["rule_max_history"] = max(worst.values(), default=0)

    def webhooks(self, receivers):
        calls = [c for rx in receivers for c in rx.snapshot()]
        keys_by_action = defaultdict(set)
        got = defaultdict(int)
        for c in calls:
            key = call_key(c)
            tid = c.headers.get("x-task-id", "")
            trig = c.headers.get("x-task-trigger", "")
            if not key or not tid:
                continue
            got[key] += 1
            keys_by_action[(tid, trig, key.rsplit(":", 1)[-1])].add(key)
            if not key.startswith(f"{tid}:{trig}:"):
                self.violations.append(f"Idempotency-Key {key} of a {trig} call of {tid}")
        self.fail("one webhook call with several Idempotency-Keys",
                  [(k, v) for k, v in keys_by_action.items() if len(v) > 1])
        rows = self.stack.sql_json(
            "SELECT d.task_id, d.action_id, lower(d.trigger::text) AS trigger, d.outcome, d.state, "
            "d.attempts FROM deliveries d")
        never, open_ = [], []
        for d in rows:
            mid = f":{d['outcome'].lower()}" if d["trigger"] == "end" and d["outcome"] else ""
            key = f"{d['task_id']}:{d['trigger']}{mid}:{d['action_id']}"
            if d["state"] in ("queued", "inflight"):
                open_.append(key)
            elif d["attempts"] > 0 and got.get(key, 0) == 0:
                never.append((key, d["state"]))
        self.fail("webhook calls made (per the outbox) but never received", never)
        self.fail("webhook calls still queued or in flight", open_)
        # Every ended task's end actions for its outcome were queued.
        missing = self.stack.sql(
            "SELECT t.id, a.id FROM tasks t JOIN actions a ON a.task_id = t.id "
            "WHERE t.status IN ('Success', 'Failure') AND a.trigger = 'End' "
            "AND (a.condition IS NULL OR a.condition = t.status::text) "
            "AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.task_id = t.id "
            "AND d.action_id = a.id AND d.outcome::text = t.status::text)")
        self.fail("end webhooks never queued", missing)
        # Every started task's start call was received.
        started = self.stack.sql(
            "SELECT t.id FROM tasks t WHERE t.status IN ('Success', 'Failure') "
            "AND EXISTS (SELECT 1 FROM task_events e WHERE e.task_id = t.id "
            "AND e.to_status = 'Running' AND e.from_status = 'Claimed')")
        got_start = {c.headers.get("x-task-id") for c in calls
                     if c.headers.get("x-task-trigger") == "start"}
        self.fail("tasks Running whose start call was never received",
                  [r[0] for r in started if r[0] not in got_start])
        repeats = sum(n - 1 for n in got.values() if n > 1)
        self.figures["webhook_calls_received"] = sum(got.values())
        self.figures["webhook_keys"] = len(got)
        self.figures["webhook_repeats"] = repeats
        self.figures["webhook_repeated_keys"] = sum(1 for n in got.values() if n > 1)
        dead = self.stack.sql("SELECT state, count(*) FROM deliveries GROUP BY 1 ORDER BY 1")
        self.figures["deliveries_by_state"] = {s: int(n) for s, n in dead}

    def retries(self):
        rows = self.stack.sql_json(
            "SELECT t.id, t.retry_count, t.max_retries, "
            "(SELECT count(*) FROM task_events e WHERE e.task_id = t.id AND e.event = 'retry') "
            "AS n_retry, "
            "(SELECT count(DISTINCT (e.detail->>'attempt')) FROM task_events e "
            "WHERE e.task_id = t.id AND e.event = 'retry') AS n_attempts "
            "FROM tasks t WHERE t.max_retries > 0")
        bad = [r for r in rows if not (r["retry_count"] == r["n_retry"] == r["n_attempts"]
                                       and r["retry_count"] <= r["max_retries"])]
        self.fail("retries not made exactly once each", bad)
        self.figures["retries"] = sum(r["n_retry"] for r in rows)
        # A start attempt is never started twice: per task, the attempts
        # claimed are 1..attempt.
        claims = self.stack.sql_json(
            "SELECT t.id, t.attempt, array_agg(DISTINCT (e.detail->>'attempt')::int) AS a "
            "FROM tasks t JOIN task_events e ON e.task_id = t.id AND e.to_status = 'Claimed' "
            "AND e.event = 'status' GROUP BY t.id, t.attempt")
        self.fail("start attempts claimed out of order",
                  [c for c in claims if sorted(c["a"]) != list(range(1, c["attempt"] + 1))])

    def progress(self, exec_rx):
        rows = self.stack.sql_json("SELECT id, success FROM tasks")
        with exec_rx.lock:
            ok, maybe = dict(exec_rx.progress_ok), dict(exec_rx.progress_maybe)
        bad = []
        for r in rows:
            lo = ok.get(r["id"], 0)
            hi = lo + maybe.get(r["id"], 0)
            if not lo <= r["success"] <= hi:
                bad.append((r["id"], r["success"], lo, hi))
        self.fail("accepted progress counts lost or counted twice", bad)
        self.figures["progress_counted"] = sum(r["success"] for r in rows)

    def acked(self, exec_rx):
        """A task whose Success was acknowledged (PATCH 200) is Success."""
        rows = self.stack.sql_json("SELECT id, status FROM tasks")
        status = {r["id"]: r["status"] for r in rows}
        with exec_rx.lock:
            acked = list(exec_rx.acked)
        self.fail("acknowledged Success lost",
                  [(t, status.get(t)) for t in acked if status.get(t) != "Success"])
        self.figures["outcomes_acknowledged"] = len(exec_rx.acked)

    def schedules(self, step_s):
        rows = self.stack.sql_json(
            "SELECT s.name, array_agg(extract(epoch FROM b.scheduled_for) "
            "ORDER BY b.scheduled_for) AS slots, "
            "(SELECT count(*) FROM schedule_events e WHERE e.schedule_id = s.id "
            "AND e.event = 'skipped') AS skipped "
            "FROM schedules s JOIN batches b ON b.schedule_id = s.id GROUP BY s.id, s.name")
        fired = 0
        for r in rows:
            slots = r["slots"]
            fired += len(slots)
            dups = [s for s, n in Counter(slots).items() if n > 1]
            self.fail(f"schedule {r['name']}: slots fired twice", dups)
            gaps = [(a, b) for a, b in zip(slots, slots[1:]) if abs(b - a - step_s) > 0.001]
            if gaps and not r["skipped"]:
                self.fail(f"schedule {r['name']}: slots never fired", gaps)
        self.figures["schedule_slots_fired"] = fired

    def metrics(self):
        code = None
        for _ in range(60):
            try:
                c = http.client.HTTPConnection("127.0.0.1",
                                               urllib.parse.urlsplit(self.stack.url).port,
                                               timeout=30)
                c.request("GET", "/metrics")
                r = c.getresponse()
                text = r.read().decode()
                code = r.status
                c.close()
                if code == 200:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        if code != 200:
            self.violations.append(f"GET /metrics answered {code}")
            return
        m = parse_metrics(text)

        def total(name, **want):
            return sum(v for n, lab, v in m if n == name
                       and all(lab.get(k) == x for k, x in want.items()))
        db_created = int(self.stack.sql("SELECT count(*) FROM tasks")[0][0])
        if total("taskrunner_tasks_created_total") != db_created:
            self.violations.append(f"taskrunner_tasks_created_total "
                                   f"{total('taskrunner_tasks_created_total')} != {db_created} tasks")
        trans = self.stack.sql(
            "SELECT from_status, to_status, count(*) FROM task_events WHERE from_status IS NOT NULL "
            "AND event IN ('status', 'canceled', 'paused', 'resumed') GROUP BY 1, 2")
        for frm, to, n in trans:
            got = total("taskrunner_task_status_transitions_total", **{"from": frm, "to": to})
            if got != int(n):
                self.violations.append(f"transitions {frm}->{to}: metric {got:g}, history {n}")
        ended = self.stack.sql(
            "SELECT to_status, count(*) FROM task_events WHERE from_status IS NOT NULL "
            "AND event IN ('status', 'canceled') AND to_status IN "
            "('Success', 'Failure', 'Canceled', 'Skipped') GROUP BY 1")
        for to, n in ended:
            got = total("taskrunner_tasks_completed_total", outcome=to)
            if got != int(n):
                self.violations.append(f"tasks_completed_total{{outcome={to}}}: metric {got:g}, "
                                       f"history {n}")
        fired = int(self.stack.sql("SELECT count(*) FROM batches WHERE schedule_id IS NOT NULL")[0][0])
        got = total("taskrunner_schedule_firings_total", outcome="fired") + \
            total("taskrunner_schedule_firings_total", outcome="triggered")
        if got != fired:
            self.violations.append(f"schedule_firings_total {got:g} != {fired} batches of schedules")
        dead = int(self.stack.sql("SELECT count(*) FROM deliveries WHERE state = 'dead'")[0][0])
        got = total("taskrunner_dead_letters_total")
        if got != dead:
            self.violations.append(f"dead_letters_total {got:g} != {dead} dead deliveries")
        self.figures["metrics_checked"] = len(trans) + len(ended) + 3

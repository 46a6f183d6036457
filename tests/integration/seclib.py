"""seclib: what the hardening tests (t-auth, t-ratelimit, t-ssrf, t-bad-input,
t-faults, t-webhook-signature) add to trlib and workerlib.

    SideStack(name, ...)     a second nginx rendered from nginx/nginx.conf.in (as
                             scripts/stack renders it) on free loopback ports,
                             with its own rate limits, in front of the stack's
                             responders or of responders of its own started with
                             extra settings (such as API tokens)
    http_call(base, ...)     one HTTP call to any loopback base URL, optionally
                             from another loopback source address
    raw_http(port, data)     sends raw bytes, returns (status, headers, body)
    paused_stack_worker()    SIGSTOPs the stack's worker (so that an extra
                             worker with other settings takes the work), with a
                             watchdog that SIGCONTs it even if the test dies
    stack_secret(name)       a secret scripts/stack generated (secrets/<name>)
    callback_token(...)      the callback token of API.md, computed independently
    pg_ctl(action)           stops or starts the stack's PostgreSQL (as the
                             service user, like scripts/stack)

Everything listens on and talks to loopback only.
"""

import contextlib
import hashlib
import hmac
import http.client
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse

import trlib
from trlib import Failed, check, env, wait_for
from workerlib import _children, _cmdline, free_port, stack_worker_pid

# ---------------------------------------------------------------------------
# HTTP to any loopback base URL
# ---------------------------------------------------------------------------


def http_call(base, method, path, body=None, headers=None, raw=None,
              content_type="application/json", source=None, timeout=30):
    """One HTTP call (a new connection) to base (http://127.0.0.1:port).
    source: a loopback address to send from (such as "127.0.0.2").
    Returns (status, headers with lower-case names, parsed JSON or None, raw)."""
    url = urllib.parse.urlsplit(base)
    check(url.hostname == "127.0.0.1", f"only loopback, not {url.hostname}")
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout,
                                      source_address=(source, 0) if source else None)
    data, hdrs = trlib.request_parts(method, body, headers, raw, content_type)
    try:
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        payload = resp.read()
        rheaders = {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()
    try:
        parsed = json.loads(payload) if payload else None
    except ValueError:
        parsed = None
    return resp.status, rheaders, parsed, payload


def raw_http(port, data, timeout=10):
    """Sends data (bytes, a whole request) to 127.0.0.1:port, reads until the
    server closes; returns (status or 0, {lower-case header: value}, body bytes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        try:
            while True:
                b = s.recv(65536)
                if not b:
                    break
                chunks.append(b)
        except (ConnectionResetError, socket.timeout):
            pass
    raw = b"".join(chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/1\.[01] (\d{3})", lines[0]) if lines else None
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _unchunk(body)
    return (int(m.group(1)) if m else 0), headers, body


def _unchunk(body):
    out = b""
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        try:
            n = int(size_line.split(b";")[0], 16)
        except ValueError:
            break
        if n == 0:
            break
        out += rest[:n]
        body = rest[n + 2:]
    return out


def check_json_error(resp, statuses, what):
    """resp = (status, headers, parsed, raw): status in statuses (an int or a
    collection) and the JSON error shape of API.md. Returns the status."""
    if isinstance(statuses, int):
        statuses = (statuses,)
    code, headers, body, payload = resp
    check(code in statuses, f"{what}: expected HTTP {'/'.join(map(str, statuses))}, got {code}: "
          f"{trlib.short(payload)}")
    check(headers.get("content-type", "").startswith("application/json"),
          f"{what}: error Content-Type should be application/json, got "
          f"{headers.get('content-type')!r}")
    check(isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"]
          and isinstance(body.get("details"), list)
          and all(isinstance(d, str) for d in body["details"])
          and isinstance(body.get("fields"), list),
          f"{what}: not a JSON error {{error, details, fields}}: {trlib.short(payload)}")
    return code


# ---------------------------------------------------------------------------
# Secrets and tokens
# ---------------------------------------------------------------------------


def stack_secret(name):
    """The secret scripts/stack generated at $TR_SECRETS/<name>
    (webhook_secret, callback_secret)."""
    path = os.path.join(env("TR_SECRETS"), name)
    with open(path) as f:
        value = f.read().strip()
    check(value, f"{path} is empty")
    return value


def callback_token(secret, task_id, attempt):
    """API.md: hex HMAC-SHA256(secret, "<task id>:<start attempt>")."""
    return hmac.new(secret.encode(), f"{task_id}:{attempt}".encode(), hashlib.sha256).hexdigest()


def verify_signature(header, body, secret, max_age=300):
    """Checks an X-Taskrunner-Signature value the way a receiver would (the
    snippet of docs/security.md). Returns the timestamp or raises Failed."""
    check(header, "no X-Taskrunner-Signature header")
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    check("t" in parts and "v1" in parts, f"signature {header!r} lacks t= or v1=")
    ts = int(parts["t"])
    want = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    check(hmac.compare_digest(want, parts["v1"]),
          f"signature {header!r} does not match the body {body[:60]!r}")
    check(abs(time.time() - ts) <= max_age, f"signature timestamp {ts} is not fresh")
    return ts


# ---------------------------------------------------------------------------
# The service user, as scripts/stack runs things
# ---------------------------------------------------------------------------


def runas_prefix():
    """The command prefix that runs a program as the service user (root only)."""
    if os.geteuid() != 0:
        return []
    runas = os.environ.get("TR_RUNAS")
    if runas:
        return shlex.split(runas)
    return ["runuser", "-u", env("TR_SVC_USER"), "--"]


def _svc_ids():
    import pwd
    pw = pwd.getpwnam(env("TR_SVC_USER"))
    return pw.pw_uid, pw.pw_gid


def pg_ctl(action, timeout=60):
    """Stops (-m fast) or starts the stack's PostgreSQL with pg_ctl, as the
    service user with a clean environment, like scripts/stack."""
    pgbin, pgdata = env("TR_PGBIN"), env("TR_PGDATA")
    cmd = [os.path.join(pgbin, "pg_ctl"), "-D", pgdata, "-w", "-t", str(timeout), "-s"]
    if action == "stop":
        cmd += ["-m", "fast", "stop"]
    else:
        cmd += ["-l", os.path.join(env("TR_LOG"), "postgresql.log"), "start"]
    clean = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": env("TR_VAR"), "LANG": "C.UTF-8"}
    proc = subprocess.run(runas_prefix() + cmd, env=clean, cwd="/", capture_output=True,
                          text=True, timeout=timeout + 30)
    check(proc.returncode == 0, f"pg_ctl {action} failed ({proc.returncode}): "
          f"{proc.stdout.strip()} {proc.stderr.strip()}")


# ---------------------------------------------------------------------------
# Pausing the stack's worker
# ---------------------------------------------------------------------------


@contextlib.contextmanager
def paused_stack_worker(max_seconds=240):
    """SIGSTOPs the stack's worker for the duration, so that an extra worker
    (with other settings) is the only one taking work, and SIGCONTs it after.
    A watchdog process SIGCONTs it after max_seconds even if this test is
    killed first. Yields the worker's pid."""
    pid = stack_worker_pid()
    check(pid, "no stack worker to pause")
    watchdog = subprocess.Popen(
        ["/bin/sh", "-c", f"sleep {int(max_seconds)}; kill -CONT {pid} 2>/dev/null"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    os.kill(pid, signal.SIGSTOP)
    try:
        yield pid
    finally:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
        try:  # the watchdog and its sleep: its own process group
            os.killpg(watchdog.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        watchdog.wait(timeout=10)


# ---------------------------------------------------------------------------
# A side stack: one more nginx (and maybe responders)
# ---------------------------------------------------------------------------


def stack_responder_environ():
    """The environment of one of the stack's responders."""
    with open(env("TR_FCGI_PIDFILE")) as f:
        mw = int(f.read().strip())
    for child in _children(mw):
        if "taskrunner-fcgi" in _cmdline(child):
            with open(f"/proc/{child}/environ", "rb") as f:
                items = [kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv]
            return {k.decode(): v.decode(errors="replace") for k, v in items}
    raise Failed("no stack responder found")


class SideStack:
    """A second nginx, rendered from nginx/nginx.conf.in like scripts/stack
    renders it, with rate limit `rate` r/s and burst `burst`, on free loopback
    ports, with its files in $TR_VAR/side-<name> and its logs in $TR_VAR/log.

    fcgi_env=None: it forwards to the stack's own responders. Otherwise it
    starts one responder of its own (spawn-fcgi + taskrunner-fcgi, threads
    `threads`) with the stack responders' environment plus fcgi_env.
    Use as a context manager; .url is its base URL, .api() calls it."""

    def __init__(self, name, rate=5000, burst=10000, fcgi_env=None, threads=4):
        self.name = name
        self.rate, self.burst = rate, burst
        self.fcgi_env = fcgi_env
        self.threads = threads
        self.dir = os.path.join(env("TR_VAR"), f"side-{name}")
        self.log_dir = os.path.join(env("TR_VAR"), "log")
        self.conf = os.path.join(self.dir, "nginx.conf")
        self.http_port = free_port()
        self.https_port = free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.fcgi = None
        self.nginx_pid = None

    # -- parts

    def _render(self, run_dir):
        root = os.geteuid() == 0
        with open(env("TR_NGINX_TEMPLATE")) as f:
            text = f.read()
        values = {
            "USER_DIRECTIVE": f"user {env('TR_SVC_USER')} {env('TR_SVC_USER')};" if root
            else "# (not root)",
            "NGINX_WORKERS": "1",
            "NGINX_DIR": self.dir,
            "LOG_DIR": self.dir,
            "RUN_DIR": run_dir,
            "TLS_DIR": os.path.join(env("TR_VAR"), "tls"),
            "HTTP_PORT": str(self.http_port),
            "HTTPS_PORT": str(self.https_port),
            "KEEPALIVE": "1",
            "RATE_LIMIT": str(self.rate),
            "RATE_BURST": str(self.burst),
            "MAX_BODY": env("TASKRUNNER_MAX_BODY"),
            "UI_DIR": env("TR_UI_DIR"),
        }
        for k, v in values.items():
            text = text.replace(f"@{k}@", v)
        left = [m for m in re.findall(r"@[A-Z_]+@", "\n".join(
            line for line in text.splitlines() if not line.lstrip().startswith("#")))]
        check(not left, f"nginx template placeholders this test cannot fill: {sorted(set(left))}")
        with open(self.conf, "w") as f:
            f.write(text)

    def _nginx(self, *args):
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        return subprocess.run([nginx, "-p", self.dir + "/", "-c", self.conf, "-e",
                               os.path.join(self.dir, "nginx-error.log"), *args],
                              capture_output=True, text=True, timeout=30)

    def _start_fcgi(self, run_dir):
        sock = os.path.join(run_dir, "fcgi.sock")
        e = stack_responder_environ()
        e.update({"TASKRUNNER_FCGI_THREADS": str(self.threads)})
        e.update(self.fcgi_env)
        binary = os.path.join(os.environ.get("TR_SVC_BIN") or env("TR_BIN"), "taskrunner-fcgi")
        cmd = [shutil.which("spawn-fcgi") or "/usr/bin/spawn-fcgi", "-s", sock, "-M", "0660"]
        if os.geteuid() == 0:
            cmd += ["-u", env("TR_SVC_USER"), "-U", env("TR_SVC_USER")]
        cmd += ["-n", "--", binary]
        log = open(os.path.join(self.log_dir, f"side-{self.name}-fcgi.log"), "ab")
        try:
            self.fcgi = subprocess.Popen(cmd, env=e, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=log, cwd="/")
        finally:
            log.close()
        wait_for(lambda: self.fcgi.poll() is not None or os.path.exists(sock), 10,
                 f"side responder {self.name} to bind {sock}")
        check(self.fcgi.poll() is None, f"side responder {self.name} exited with "
              f"{self.fcgi.returncode}: {self.fcgi_log()[-800:]}")

    def fcgi_log(self):
        try:
            with open(os.path.join(self.log_dir, f"side-{self.name}-fcgi.log"),
                      errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    # -- life

    def __enter__(self):
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        run_dir = env("TR_RUN")
        if os.geteuid() == 0:
            uid, gid = _svc_ids()
            os.chown(self.dir, uid, gid)
        try:
            if self.fcgi_env is not None:
                run_dir = self.dir
                self._start_fcgi(run_dir)
            self._render(run_dir)
            test = self._nginx("-q", "-t")
            check(test.returncode == 0, f"side nginx config invalid: {test.stderr}")
            started = self._nginx()
            check(started.returncode == 0, f"side nginx did not start: {started.stderr}")
            with open(os.path.join(self.dir, "nginx.pid")) as f:
                self.nginx_pid = int(f.read().strip())

            def ready():
                try:
                    return self.api("GET", "/health")[0] == 200
                except OSError:
                    return False
            wait_for(ready, 15, f"side stack {self.name} to answer /health")
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def stop(self):
        if self.nginx_pid:
            self._nginx("-s", "quit")
            pid = self.nginx_pid

            def gone():
                try:
                    os.kill(pid, 0)
                    return False
                except ProcessLookupError:
                    return True
            try:
                wait_for(gone, 15, f"side nginx {self.name} to quit")
            except Failed:
                os.kill(pid, signal.SIGKILL)
            self.nginx_pid = None
        if self.fcgi and self.fcgi.poll() is None:
            self.fcgi.send_signal(signal.SIGTERM)
            try:
                self.fcgi.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.fcgi.kill()
                self.fcgi.wait(timeout=10)

    def api(self, method, path, body=None, headers=None, raw=None, source=None,
            content_type="application/json"):
        return http_call(self.url, method, path, body=body, headers=headers, raw=raw,
                         source=source, content_type=content_type)

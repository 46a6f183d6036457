#!/usr/bin/env python3
"""t-stack: the operations side of the stack, checked through nginx.

Run by ctest as `scripts/test-stack exec BUILD /usr/bin/python3 t-stack.py`,
with the test stack's stack.env exported (TR_URL, TR_HTTPS_URL,
TR_FCGI_PIDFILE, ...). Standard library only.

Checks: unknown paths get a JSON 404 carrying X-Request-Id (the id nginx
logs); HTTPS works with TLS 1.2 and 1.3 and refuses TLS 1.1; a body over the
limit gets a JSON 413; a malformed request gets a JSON 400; a responder killed
with SIGKILL is replaced by multiwatch within 1 s and the service answers.
"""
import http.client
import json
import os
import re
import signal
import socket
import ssl
import sys
import time
import urllib.parse
import warnings

REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")

passed = 0
failed = 0


def ok(what):
    global passed
    passed += 1
    print(f"ok   - {what}", flush=True)


def fail(what, why):
    global failed
    failed += 1
    print(f"FAIL - {what}: {why}", flush=True)


def skip(what, why):
    print(f"skip - {what}: {why}", flush=True)


def env(name):
    value = os.environ.get(name)
    if not value:
        print(f"t-stack: {name} is not set: run me through scripts/test-stack exec", file=sys.stderr)
        sys.exit(2)
    return value


def request(base, method, path, body=None, headers=None, context=None, timeout=10):
    """One request on a fresh connection: (status, headers, body bytes)."""
    url = urllib.parse.urlsplit(base)
    if url.scheme == "https":
        conn = http.client.HTTPSConnection(url.hostname, url.port, timeout=timeout, context=context)
    else:
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        conn.close()


def raw_request(base, data, timeout=10):
    """Sends raw bytes (best effort: the server may answer before reading
    them all) and parses the answer: (status, headers dict, body bytes)."""
    url = urllib.parse.urlsplit(base)
    with socket.create_connection((url.hostname, url.port), timeout=timeout) as s:
        try:
            view = memoryview(data)
            while view:
                n = s.send(view[:65536])
                view = view[n:]
        except (BrokenPipeError, ConnectionResetError):
            pass
        chunks = []
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
                if b"\r\n\r\n" in b"".join(chunks) and response_complete(b"".join(chunks)):
                    break
        except (ConnectionResetError, socket.timeout):
            pass
    raw = b"".join(chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if not lines or not lines[0].startswith("HTTP/"):
        return None, {}, raw
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def response_complete(raw):
    head, _, body = raw.partition(b"\r\n\r\n")
    m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    return m is not None and len(body) >= int(m.group(1))


def header(headers, name):
    if isinstance(headers, dict):
        return headers.get(name.lower())
    return headers.get(name)


def check_json_error(what, status, headers, body, want_status):
    """An error answer as API.md has it: JSON {"error": str, "details": [],
    "fields": []} with an X-Request-Id."""
    problems = []
    if status != want_status:
        problems.append(f"status {status}, want {want_status}")
    ctype = header(headers, "Content-Type") or ""
    if not ctype.startswith("application/json"):
        problems.append(f"Content-Type {ctype!r}")
    rid = header(headers, "X-Request-Id") or ""
    if not REQUEST_ID.match(rid):
        problems.append(f"X-Request-Id {rid!r}")
    try:
        doc = json.loads(body)
        if (not isinstance(doc.get("error"), str) or not isinstance(doc.get("details"), list)
                or not isinstance(doc.get("fields"), list)):
            problems.append(f"body is not an error object: {body[:200]!r}")
    except ValueError:
        problems.append(f"body is not JSON: {body[:200]!r}")
    if problems:
        fail(what, "; ".join(problems))
    else:
        ok(what)
    return rid


# ---------------------------------------------------------------------------


def test_not_found(url, log_dir):
    print("# unknown paths: JSON 404 from nginx, with the request id it logs")
    status, headers, body = request(url, "GET", "/no/such/path")
    rid = check_json_error("GET /no/such/path is a JSON 404 with X-Request-Id", status, headers, body, 404)
    status, headers, body = request(url, "POST", "/nope", body=b"{}",
                                     headers={"Content-Type": "application/json"})
    check_json_error("POST /nope is a JSON 404", status, headers, body, 404)
    if len(headers.get_all("X-Request-Id") or []) != 1:
        fail("exactly one X-Request-Id", f"got {headers.get_all('X-Request-Id')}")
    else:
        ok("exactly one X-Request-Id")
    access_log = os.path.join(log_dir, "nginx-access.log")
    if rid and os.path.exists(access_log):
        deadline = time.monotonic() + 2
        found = False
        while time.monotonic() < deadline and not found:
            with open(access_log, encoding="utf-8", errors="replace") as f:
                found = rid in f.read()
            if not found:
                time.sleep(0.1)
        if found:
            ok("the request id is in the nginx access log")
        else:
            fail("the request id is in the nginx access log", f"{rid} not in {access_log}")


def test_bad_request(url):
    print("# a malformed request: JSON 400 from nginx")
    status, headers, body = raw_request(url, b"GET /x y z\r\n\r\n")
    check_json_error("a malformed request line is a JSON 400", status, headers, body, 400)


def tls_context(version):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if version is not None:
        ctx.minimum_version = version
        ctx.maximum_version = version
    return ctx


def tls_handshake(https_url, ctx):
    """Returns the negotiated protocol, or raises ssl.SSLError/OSError."""
    url = urllib.parse.urlsplit(https_url)
    with socket.create_connection((url.hostname, url.port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=url.hostname) as s:
            return s.version()


def test_https(https_url):
    print("# HTTPS: TLS 1.2+ only, same answers as HTTP")
    ctx = tls_context(None)
    try:
        status, headers, body = request(https_url, "GET", "/no/such/path", context=ctx)
        check_json_error("GET /no/such/path over HTTPS is a JSON 404", status, headers, body, 404)
        proto = tls_handshake(https_url, ctx)
        if proto in ("TLSv1.2", "TLSv1.3"):
            ok(f"default handshake negotiates {proto}")
        else:
            fail("default handshake negotiates TLS 1.2+", f"got {proto}")
    except (ssl.SSLError, OSError) as e:
        fail("HTTPS answers", repr(e))
        return

    for name, version in (("TLSv1.2", ssl.TLSVersion.TLSv1_2), ("TLSv1.3", ssl.TLSVersion.TLSv1_3)):
        try:
            proto = tls_handshake(https_url, tls_context(version))
            if proto == name:
                ok(f"{name} is accepted")
            else:
                fail(f"{name} is accepted", f"negotiated {proto}")
        except (ssl.SSLError, OSError) as e:
            fail(f"{name} is accepted", repr(e))

    # TLS 1.1: only meaningful when this OpenSSL can offer it at all.
    if not getattr(ssl, "HAS_TLSv1_1", False):
        skip("TLSv1.1 is refused", "this Python/OpenSSL has no TLS 1.1")
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx = tls_context(ssl.TLSVersion.TLSv1_1)
    try:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    except ssl.SSLError:
        pass
    try:
        proto = tls_handshake(https_url, ctx)
        fail("TLSv1.1 is refused", f"the server accepted {proto}")
    except ssl.SSLError as e:
        text = str(e)
        if "NO_PROTOCOLS_AVAILABLE" in text or "no protocols available" in text:
            skip("TLSv1.1 is refused", "this OpenSSL will not offer TLS 1.1")
        else:
            ok(f"TLSv1.1 is refused ({e.reason or text})")
    except OSError as e:
        ok(f"TLSv1.1 is refused (connection closed: {e!r})")


def test_body_limit(url):
    print("# a body over the limit (9 MiB > 8 MiB): JSON 413 before the responders")
    size = 9 * 1024 * 1024
    host = urllib.parse.urlsplit(url).netloc
    head = (f"POST /tasks HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {size}\r\nConnection: close\r\n\r\n").encode()
    status, headers, body = raw_request(url, head + b"[" + b" " * (size - 2) + b"]", timeout=30)
    check_json_error("POST /tasks with 9 MiB is a JSON 413", status, headers, body, 413)


def children_of(pid):
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as f:
                stat = f.read()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses.
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] != "Z" and int(fields[1]) == pid:
            kids.append(int(entry))
    return sorted(kids)


def health(url):
    try:
        return request(url, "GET", "/health", timeout=5)[0]
    except OSError as e:
        return repr(e)


def test_responder_replaced(url, pidfile):
    print("# kill -9 of a responder: multiwatch replaces it within 1 s")
    healthy_before = health(url) == 200
    with open(pidfile, encoding="utf-8") as f:
        watcher = int(f.read().strip())
    before = children_of(watcher)
    if not before:
        fail("multiwatch has responders", f"no children of pid {watcher}")
        return
    victim = before[0]
    print(f"  multiwatch {watcher}, responders {before}: killing {victim}")
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 1.0
    after = []
    while time.monotonic() < deadline:
        after = children_of(watcher)
        if victim not in after and len(after) == len(before):
            break
        time.sleep(0.02)
    new = sorted(set(after) - set(before))
    if victim not in after and len(after) == len(before) and new:
        ok(f"responder {victim} replaced by {new[0]} within 1 s")
    else:
        fail("the killed responder is replaced within 1 s", f"responders now {after}")

    if not healthy_before:
        skip("GET /health answers 200 after the kill", "it did not answer 200 before either")
        return
    deadline = time.monotonic() + 5
    status = None
    while time.monotonic() < deadline:
        status = health(url)
        if status == 200:
            break
        time.sleep(0.1)
    if status != 200:
        fail("GET /health answers 200 after the kill", f"last answer {status}")
        return
    statuses = [health(url) for _ in range(20)]
    bad = [s for s in statuses if s != 200]
    if bad:
        fail("GET /health answers 200 after the kill", f"{len(bad)} of 20 answers were {bad}")
    else:
        ok("GET /health answers 200 after the kill (20 of 20)")


def main():
    url = env("TR_URL")
    https_url = env("TR_HTTPS_URL")
    pidfile = env("TR_FCGI_PIDFILE")
    log_dir = os.environ.get("TR_LOG") or os.path.join(env("TR_VAR"), "log")
    print(f"t-stack: checking the stack at {url} and {https_url}")

    for test in (lambda: test_not_found(url, log_dir),
                 lambda: test_bad_request(url),
                 lambda: test_https(https_url),
                 lambda: test_body_limit(url),
                 lambda: test_responder_replaced(url, pidfile)):
        try:
            test()
        except Exception as e:  # one broken check must not hide the others
            fail("unexpected error", repr(e))

    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

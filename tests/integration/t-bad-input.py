"""t-bad-input: a catalogue of bad input, sent through nginx (API.md "Conventions";
docs/security.md).

Malformed and truncated JSON, wrong types, huge numbers, deep nesting,
oversized bodies, invalid UTF-8, NUL bytes, control characters in header
values (over a raw socket), very long URLs, query strings and headers, and
every id malformed (path ids of every route, the batch_id filter, dependency
ids). Each gets a 4xx JSON error {error, details, fields}; nothing is written (no
task of the test's kinds, and the tasks, batches and actions tables keep
their row counts); and the service keeps serving (/health 200 after each).
Unknown fields are ignored and never stored.
"""

import json
import os
import urllib.parse
import uuid

from seclib import check_json_error, raw_http
from trlib import (api, check, create_map, env, get_task, new_kind, q, sql, sql_count, step, task,
                   webhook)
from workerlib import run

KIND = new_kind("t-bad-input")
PORT = urllib.parse.urlsplit(os.environ.get("TR_URL", "http://127.0.0.1:1")).port
COUNTED = ("tasks", "batches", "actions", "task_links", "idempotency_keys")
_seen = {"cases": 0}


def counts():
    return {t: sql_count(f"SELECT count(*) FROM {t}") for t in COUNTED}


def healthy(what):
    code = api("GET", "/health")[0]
    check(code == 200, f"after {what}: /health answered {code}, expected 200")


def bad(method, path, what, body=None, raw=None, headers=None, content_type="application/json",
        statuses=(400,)):
    """One bad request through nginx (trlib.api): a 4xx JSON error, then /health 200."""
    resp = api(method, path, body=body, raw=raw, headers=headers, content_type=content_type)
    check_json_error(resp, statuses, what)
    _seen["cases"] += 1
    healthy(what)
    return resp


def bad_raw(data, what, statuses=(400,)):
    """A raw request (bytes) through nginx: a 4xx JSON error, then /health 200."""
    code, headers, body = raw_http(PORT, data)
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        parsed = None
    check_json_error((code, headers, parsed, body), statuses, what)
    _seen["cases"] += 1
    healthy(what)


def good_task(lid="a", **fields):
    fields.setdefault("on_start", webhook("http://127.0.0.1:9/never"))
    return task(lid, kind=KIND, **fields)


def post_raw(raw, what, statuses=(400,), content_type="application/json", headers=None):
    return bad("POST", "/tasks", what, raw=raw, statuses=statuses, content_type=content_type,
               headers=headers)


# ---------------------------------------------------------------------------


def part_json(rx):
    good = json.dumps([good_task("a"), good_task("b", dependencies=[{"id": "a"}])])
    step("malformed JSON")
    for raw in ['[{"id": ', "{,}", "[1,]", "nul", "[] []", "[]x", "[{'id': 'a'}]",
                '[{"id":"a",}]', '["a" "b"]', "[", "]", '"', "\ufeff[]", "[NaN]", "[Infinity]",
                "[-]", "[01]", "[1e]", '[{"a" 1}]', '[{1: 2}]', "[true false]", "//x\n[]",
                "/* c */ []", '[{"id": "a"}]]', "[\x01]", '["\\x41"]', '["\\u12"]',
                '["\\uZZZZ"]', '["a\tb"]', " ", "\n\n"]:
        post_raw(raw, f"malformed JSON {raw!r}")
    step("truncated JSON: every 9th prefix of a valid batch")
    for n in range(1, len(good) - 1, 9):
        post_raw(good[:n], f"the first {n} bytes of a valid batch")
    step("bodies of the wrong type: object, string, number, null, boolean, empty array")
    for raw in ["{}", '{"id": "a"}', '"tasks"', "42", "null", "true", "[]", "[null]", "[1]",
                '[["a"]]']:
        post_raw(raw, f"body {raw}")
    step("fields of the wrong type")
    cases = {"id": 1, "name": ["n"], "kind": {"k": 1}, "timeout": "60", "priority": 1.5,
             "metadata": [1], "on_start": "http://x", "on_success": {"kind": "Webhook"},
             "dependencies": "a", "rules": "none", "dedupe_strategy": 3}
    for field, value in cases.items():
        t = good_task("a")
        t[field] = value
        post_raw(json.dumps([t]), f"{field} = {json.dumps(value)}")
    for params in [{"url": 5}, {"url": "http://x", "verb": 1}, {"url": "http://x", "headers": []},
                   {"url": "http://x", "headers": {"X-A": 1}}, "params"]:
        t = good_task("a", on_start={"kind": "Webhook", "params": params})
        post_raw(json.dumps([t]), f"on_start params {json.dumps(params)}")
    step("huge numbers")
    for field, value in [("timeout", "1e400"), ("timeout", "99999999999999999999999"),
                         ("priority", "-99999999999999999999999"), ("priority", "1e308"),
                         ("timeout", "18446744073709551616"), ("timeout", "-0.0e99999")]:
        post_raw(f'[{{"id": "a", "name": "n", "kind": "{KIND}", "{field}": {value}, '
                 f'"on_start": {{"kind": "Webhook", "params": {{"url": "http://127.0.0.1:9/"}}}}}}]',
                 f"{field}: {value}")
    post_raw(f'[{{"id": "a", "name": "n", "kind": "{KIND}", "metadata": {{"n": 1e999}}, '
             f'"on_start": {{"kind": "Webhook", "params": {{"url": "http://127.0.0.1:9/"}}}}}}]',
             "metadata number 1e999")
    post_raw(f'[{{"id": "a", "name": "n", "kind": "{KIND}", '
             f'"metadata": {{"n": 123456789012345678901234567890}}, '
             f'"on_start": {{"kind": "Webhook", "params": {{"url": "http://127.0.0.1:9/"}}}}}}]',
             "metadata integer beyond 64 bits")


def part_nesting_and_size(rx):
    step("deep nesting: 100,000 nested arrays; 100,000 nested objects; 100 nested "
         "objects in metadata")
    post_raw("[" * 100000 + "]" * 100000, "100,000 nested arrays")
    post_raw('{"a":' * 100000 + "1" + "}" * 100000, "100,000 nested objects")
    post_raw("[" * 100000, "100,000 unclosed arrays")
    meta = "1"
    for _ in range(100):
        meta = '{"a": ' + meta + "}"
    post_raw(f'[{{"id": "a", "name": "n", "kind": "{KIND}", "metadata": {meta}, '
             f'"on_start": {{"kind": "Webhook", "params": {{"url": "http://127.0.0.1:9/"}}}}}}]',
             "metadata nested 100 deep")
    step("oversized bodies: 413 JSON from nginx (over TASKRUNNER_MAX_BODY), 400/413 beyond "
         "the per-field limits")
    limit = int(env("TASKRUNNER_MAX_BODY"))
    big = json.dumps([good_task("a", metadata={"pad": "x" * (limit + 10)})])
    post_raw(big, f"a body of {len(big)} bytes", statuses=(413,))
    post_raw(json.dumps([good_task("a", metadata={"pad": "x" * 70000})]),
             "metadata over 64 KiB")
    post_raw(json.dumps([good_task("a", name="n" * 256)]), "a name of 256 characters")
    post_raw(json.dumps([good_task(f"t{i}") for i in range(10001)]), "10,001 tasks",
             statuses=(400, 413))
    step("a wrong Content-Type or none: 415")
    for ct in ("text/plain", "application/jsonx", "application/x-www-form-urlencoded", None):
        post_raw(json.dumps([good_task()]), f"Content-Type {ct}", statuses=(415,),
                 content_type=ct)


def part_encoding(rx):
    step("invalid UTF-8, NUL bytes and control characters in the body")
    head = f'[{{"id": "a", "kind": "{KIND}", "on_start": {{"kind": "Webhook", "params": ' \
           f'{{"url": "http://127.0.0.1:9/"}}}}, "name": "'.encode()
    tail = b'"}]'
    for blob, what in [(b"\xff\xfe", "bytes FF FE"), (b"\xc0\xaf", "an overlong '/'"),
                       (b"\xed\xa0\x80", "a UTF-16 surrogate as UTF-8"),
                       (b"\xf4\x90\x80\x80", "a code point beyond U+10FFFF"),
                       (b"a\xe2\x82", "a cut sequence"), (b"\x80", "a lone continuation byte"),
                       (b"a\x00b", "a NUL byte"), (b"\\u0000", "the escape \\u0000"),
                       (b"\\ud800", "a lone surrogate escape"), (b"a\x01b", "a control byte"),
                       (b"a\nb", "a raw new line")]:
        post_raw(head + blob + tail, f"a name with {what}")
    post_raw(b'[{"id": "a", "n\xffame": 1}]', "invalid UTF-8 in a key")
    post_raw(b'[{"id": "a", "na\\u0000me": 1}]', "\\u0000 in a key")
    post_raw(b"\x00", "a body of one NUL byte")
    post_raw(json.dumps([good_task()]).encode("utf-16"), "a UTF-16 body")
    bad("PATCH", f"/tasks/{uuid.uuid4()}", "PATCH with invalid UTF-8", raw=b'{"failure_reason": '
        b'"\xff", "status": "Failure"}')
    bad("PATCH", f"/tasks/{uuid.uuid4()}", "PATCH with a NUL byte",
        raw=b'{"failure_reason": "a\x00b"}')


def part_headers(rx):
    step("control characters and other junk in header values (raw socket)")
    body = json.dumps([good_task()]).encode()

    def req(extra, method=b"POST", path=b"/tasks", data=body, ctype=b"application/json"):
        return (method + b" " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                b"Content-Type: " + ctype + b"\r\nContent-Length: " + str(len(data)).encode()
                + b"\r\n" + extra + b"\r\n" + data)
    for value, what in [(b"a\x01b", "SOH"), (b"a\x1bb", "ESC"), (b"a\x7fb", "DEL"),
                        (b"a\x00b", "NUL"), (b"a\rb", "a bare CR"), (b"\xff\xfe", "invalid UTF-8"),
                        (b"x" * 300, "300 bytes"), (b"a\x08b", "backspace")]:
        bad_raw(req(b"X-Requester: " + value + b"\r\n"), f"X-Requester with {what}")
        bad_raw(req(b"Idempotency-Key: " + value + b"\r\n"), f"Idempotency-Key with {what}")
    for ctype in (b"application/json\x01", b"\x01application/json", b"application/json\x7f"):
        bad_raw(req(b"", ctype=ctype), f"Content-Type {ctype!r}", statuses=(400, 415))
    bad_raw(req(b"Content-Length: 5\r\n"), "two Content-Length headers")
    bad_raw(req(b"Transfer-Encoding: chunked\r\n"), "Content-Length and Transfer-Encoding")
    bad_raw(req(b"X-Bad Header: 1\r\n"), "a space in a header name")
    bad_raw(req(b"X-Long: " + b"y" * 20000 + b"\r\n"), "a header of 20,000 bytes")
    bad_raw(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-Many: 1\r\n" * 3000 +
            b"Connection: close\r\n\r\n", "3,000 header lines", statuses=(400, 431))
    bad_raw(b"GET /tasks\x01 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
            "a control character in the request line")
    bad_raw(b"GARBAGE\r\n\r\n", "a request line that is not HTTP")
    bad_raw(b"GET /tasks HTTP/9.9\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
            "HTTP/9.9", statuses=(400, 505))
    bad_raw(b"GET /tasks/%00 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
            "%00 in the path")


def part_long_urls(rx):
    step("very long URLs and query strings: 414 JSON; a long but valid query is served")
    bad("GET", "/tasks/" + "a" * 20000, "a path of 20,000 bytes", statuses=(414,))
    bad("GET", "/tasks?name=" + "a" * 20000, "a query of 20,000 bytes", statuses=(414,))
    bad("GET", "/tasks?" + "&".join(f"p{i}=v" for i in range(5000)),
        "5,000 query parameters", statuses=(414,))
    code, _, body, _ = api("GET", f"/tasks?kind={KIND}&name=" + "a" * 8000)
    check(code == 200 and body == [], f"a valid 8 KB query: expected 200 [], got {code}")
    healthy("a long valid query")
    step("bad query values: 400 JSON")
    for query in ["page=x", "page=1e3", "page_size=0", "page_size=-1", "per_page=abc",
                  "status=Nope", "status=%00", "kind=%00", "name=a%00b", "metadata=%7B",
                  "metadata=%5B1%5D", "metadata=%7B%22a%22%3A1e999%7D", "page=99999999999999999999",
                  "metadata=%7B%22a%22%3A%22%ff%22%7D"]:
        bad("GET", f"/tasks?{query}", f"GET /tasks?{query}")


MALFORMED_IDS = ["not-a-uuid", "1234", "0" * 36, str(uuid.uuid4()) + "0",
                 str(uuid.uuid4())[:-1], str(uuid.uuid4()).replace("-", ""),
                 str(uuid.uuid4())[:-1] + "g", "%27%20OR%201%3D1%20--", "%00",
                 "a" * 1000, "%2e%2e", "{" + str(uuid.uuid4()) + "}",
                 "%e2%80%ae" + str(uuid.uuid4())[3:]]

def route_exists(method, path):
    code, _, body, _ = api(method, path)
    return not (code == 404 and isinstance(body, dict)
                and body.get("error") in ("no such route", "not found"))


# Dead letters are named by a positive integer (their delivery id).
MALFORMED_NUMBERS = ["0", "-1", "abc", "1.5", "1e3", "99999999999999999999", "0x10", "%00",
                     str(uuid.uuid4()), "1" * 1000, "%201", "+1"]


def part_malformed_ids(rx):
    step("every route with an id, every malformed id: 400 JSON")
    routes = [("GET", "/tasks/{}"), ("PATCH", "/tasks/{}"), ("PUT", "/tasks/{}"),
              ("DELETE", "/tasks/{}"), ("POST", "/tasks/{}/pause"), ("POST", "/tasks/{}/resume"),
              ("GET", "/task/{}"), ("PATCH", "/task/{}"), ("PUT", "/task/{}"),
              ("DELETE", "/task/{}"), ("PATCH", "/task/pause/{}"), ("GET", "/batches/{}"),
              ("DELETE", "/batches/{}")]
    optional = [("GET", "/tasks/{}/history"), ("GET", "/tasks/{}/blockers")]
    for method, pattern in optional:  # routes that other work adds: checked when present
        if route_exists(method, pattern.format(uuid.uuid4())):
            routes.append((method, pattern))
    cases = [(m, p, MALFORMED_IDS) for m, p in routes]
    if route_exists("POST", "/dead-letters/1/replay"):
        cases.append(("POST", "/dead-letters/{}/replay", MALFORMED_NUMBERS))
    for method, pattern, ids in cases:
        for bad_id in ids:
            body = {"new_success": 1} if method in ("PATCH", "PUT") else None
            bad(method, pattern.format(bad_id), f"{method} {pattern} with id {bad_id[:40]}",
                body=body, statuses=(400, 404, 405) if bad_id == "%2e%2e" else (400,))
    step("the batch_id filter: 400 JSON")
    for bad_id in MALFORMED_IDS:
        bad("GET", f"/tasks?batch_id={bad_id}", f"batch_id={bad_id[:40]}")
    step("dependency ids: wrong type, empty, unknown, self, duplicate, a cycle, a UUID of "
         "another batch: 400 JSON")
    other = str(uuid.uuid4())
    for deps, what in [([{"id": 1}], "a number"), ([{"id": None}], "null"), ([{"id": ""}], "empty"),
                       ([{"id": "nope"}], "unknown"), ([{"id": "a"}], "itself"),
                       ([{"id": "b"}, {"id": "b"}], "twice"), ([{"id": other}], "a foreign UUID"),
                       ([{"id": "b", "requires_success": "yes"}], "requires_success a string"),
                       (["b"], "a bare string"), ([{}], "no id"), ({"id": "b"}, "an object"),
                       ([{"id": "b" * 300}], "300 characters")]:
        tasks = [good_task("a", dependencies=deps), good_task("b")]
        post_raw(json.dumps(tasks), f"dependency id {what}")
    tasks = [good_task("a", dependencies=[{"id": "b"}]), good_task("b", dependencies=[{"id": "a"}])]
    post_raw(json.dumps(tasks), "a dependency cycle")
    step("local ids: duplicate, empty, too long")
    for tasks, what in [([good_task("a"), good_task("a")], "a duplicate id"),
                        ([good_task("")], "an empty id"), ([good_task("x" * 256)], "256 chars")]:
        post_raw(json.dumps(tasks), f"task id: {what}")


def part_unknown_fields(rx):
    step("unknown fields are ignored and never stored")
    marker = f"unknown-{uuid.uuid4().hex}"
    t = good_task("a", metadata={"keep": 1})
    t[marker] = {"x": 1}
    t["on_start"]["name"] = marker
    t["on_start"]["trigger"] = "Start"
    t["on_start"]["params"][marker] = 1
    t["on_success"] = [{"kind": "Webhook", "name": marker,
                        "params": {"url": "http://127.0.0.1:9/end", marker: True}}]
    t["rules"] = [{"type": "Concurrency", "max_concurrency": 5, marker: 1,
                   "matcher": {"kind": KIND, "status": "Running", "fields": ["keep"],
                               marker: 2}}]
    t2 = good_task("b", dependencies=[{"id": "a", "requires_success": False, marker: 3}])
    made, bid = create_map([t, t2])
    for lid in ("a", "b"):
        got = json.dumps(get_task(made[lid]["id"]))
        check(marker not in got, f"task {lid}: an unknown field came back: {got[:400]}")
    stored = sql(f"SELECT count(*) FROM tasks t WHERE t.batch_id = {q(bid)} AND "
                 f"(row_to_json(t)::text LIKE {q('%' + marker + '%')})")[0][0]
    check(stored == "0", f"an unknown field was stored in tasks ({stored} rows)")
    stored = sql_count(f"SELECT count(*) FROM actions a JOIN tasks t ON t.id = a.task_id "
                       f"WHERE t.batch_id = {q(bid)} AND row_to_json(a)::text LIKE "
                       f"{q('%' + marker + '%')}")
    check(stored == 0, f"an unknown field was stored in actions ({stored} rows)")
    api("DELETE", f"/batches/{bid}")


if __name__ == "__main__":
    before = counts()
    _parts = [part_json, part_nesting_and_size, part_encoding, part_headers, part_long_urls,
              part_malformed_ids]

    def part_nothing_written(rx):
        step("nothing was written by any of the bad requests")
        n = sql_count(f"SELECT count(*) FROM tasks WHERE kind = {q(KIND)}")
        check(n == 0, f"{n} tasks of the test's kind were stored")
        after = counts()
        check(after == before, f"row counts changed: before {before}, after {after}")
        print(f"   {_seen['cases']} bad requests, each a 4xx JSON error followed by /health "
              f"200; row counts unchanged: {after}")

    run(*_parts, part_nothing_written, part_unknown_fields)

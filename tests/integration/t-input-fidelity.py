"""t-input-fidelity: numbers keep their value, HEAD is served, and a few
inputs that used to be misread are answered plainly (API.md, "Webhook header
safety and input fidelity"; docs/API.md, "Numbers").

- Numbers in metadata: both ends of the signed 64-bit range, 5e-324, -0, a
  long mantissa and 1.5e3 are stored and returned with their exact value;
  what GET returns is POSTed back and returned the same. 1e308, 1.5e308,
  1e-400, 0.1e-400, 1e400 and integers beyond 64 bits are 400.
- HEAD wherever GET is served: the status and headers of the GET, no body;
  405 answers list HEAD in Allow.
- ?page= beyond 64 bits: 400 "too large"; a charset other than UTF-8: 415;
  an encoded slash (%2F) in a task id does not reach another endpoint.
"""

import json
from decimal import Decimal

from trlib import (api, check, check_error, create, expect, get_task, held, new_kind, q,
                   sql_value, start_holder, step, task)
from workerlib import run

ON_START = '{"kind": "Webhook", "params": {"url": "http://127.0.0.1:9/"}}'


class Num(str):
    """A JSON number kept as its text."""


def loads_exact(text):
    return json.loads(text, parse_float=Num, parse_int=Num)


def dumps_exact(v):
    """JSON text of a loads_exact value, numbers written as they were read."""
    if isinstance(v, Num):
        return str(v)
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {dumps_exact(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(dumps_exact(x) for x in v) + "]"
    return json.dumps(v)


def post_metadata(kind, metadata_text):
    """POST /tasks of one task with the metadata written as given; the answer."""
    body = (f'[{{"id": "a", "name": "n", "kind": "{kind}", "metadata": {metadata_text}, '
            f'"on_start": {ON_START}}}]')
    return api("POST", "/tasks", raw=body)


def part_numbers(rx):
    kind = new_kind("t-fidelity")
    sent = {"max": "9223372036854775807", "min": "-9223372036854775808", "tiny": "5e-324",
            "negzero": "-0", "long": "0.1234567890123456789012345678901234567890123",
            "big_mantissa": "123456789012345678901234567890.5", "e3": "1.5e3",
            "frac": "-2.50", "list": "[1e-300, 9223372036854775806]"}
    text = "{" + ", ".join(f'"{k}": {v}' for k, v in sent.items()) + "}"
    step(f"accepted and returned with their value: {text}")
    code, _, body, raw = post_metadata(kind, text)
    check(code == 201, f"expected 201, got {code}: {raw[:400]!r}")
    tid = body[0]["id"]
    code, _, _, raw = api("GET", f"/tasks/{tid}")
    check(code == 200, f"GET: {code}")
    got = loads_exact(raw.decode())["metadata"]
    print(f"   returned: {dumps_exact(got)[:300]}")
    for k, v in sent.items():
        want = loads_exact(v)
        if isinstance(want, list):
            check([Decimal(x) for x in got[k]] == [Decimal(x) for x in want],
                  f"{k}: sent {v}, got {got[k]}")
        else:
            check(Decimal(got[k]) == Decimal(want), f"{k}: sent {v}, got {got[k]}")
    check(got["max"] == "9223372036854775807" and got["min"] == "-9223372036854775808",
          f"the ends of the range should come back as sent: {got['max']} {got['min']}")
    check(got["long"] == sent["long"], f"the long mantissa changed: {got['long']}")

    step("what GET returned is POSTed back and returned the same")
    again = dumps_exact(got)
    code, _, body, raw = post_metadata(kind, again)
    check(code == 201, f"POSTing back {again[:200]}: {code}: {raw[:400]!r}")
    _, _, _, raw = api("GET", f"/tasks/{body[0]['id']}")
    check(loads_exact(raw.decode())["metadata"] == got, "the metadata changed on the way back")

    step("refused (400), not changed: 1e308, 1.5e308, 1e-400, 0.1e-400, 1e400, 1e19, "
         "2^63, -2^63-1")
    for value, where in [("1e308", "[0].metadata.n"), ("1.5e308", "[0].metadata.n"),
                         ("1e-400", "[0].metadata.n"), ("0.1e-400", "[0].metadata.n"),
                         ("1e400", "[0].metadata.n"), ("1e19", "[0].metadata.n"),
                         ("9223372036854775808", "[0].metadata.n"),
                         ("-9223372036854775809", "[0].metadata.n"),
                         ("123456789012345678901234567890", "[0].metadata.n")]:
        resp = post_metadata(kind, f'{{"n": {value}}}')
        body = check_error(resp, 400, f"metadata n = {value}")
        check(any(d.get("field") == where for d in body.get("fields", [])),
              f"{value}: no error at {where}: {body}")
    check(sql_value(f"SELECT count(*) FROM tasks WHERE kind = {q(kind)}") == "2",
          "only the two accepted tasks should be stored")


def part_head(rx):
    kind = new_kind("t-fidelity-head")
    body, _ = create([task("a", kind=kind, on_start="http://127.0.0.1:9/")])
    tid = body[0]["id"]
    step("HEAD wherever GET is served: the GET's status and headers, no body")
    for path in (f"/tasks/{tid}", "/tasks?page_size=1", f"/tasks/{tid}/history", "/health",
                 f"/batches/{body[0]['batch_id']}", "/metrics", "/dead-letters",
                 "/tasks/00000000-0000-0000-0000-000000000000"):
        gcode, gheaders, _, _ = api("GET", path)
        code, headers, _, raw = api("HEAD", path)
        check(code == gcode, f"HEAD {path}: {code}, GET answered {gcode}")
        check(raw == b"", f"HEAD {path} should have no body, got {raw[:100]!r}")
        check(headers.get("content-type") == gheaders.get("content-type"),
              f"HEAD {path}: content-type {headers.get('content-type')}")
    step("405 answers list HEAD with GET in Allow")
    for method, path, want in [("DELETE", "/health", "GET, HEAD"),
                               ("PUT", "/tasks", "POST, GET, HEAD")]:
        code, headers, _, _ = api(method, path)
        check(code == 405 and headers.get("allow") == want,
              f"{method} {path}: {code}, Allow {headers.get('allow')!r}, wanted {want!r}")


def part_odd_inputs(rx):
    step("?page= beyond 64 bits: 400 \"too large\"; not a number: \"must be an integer\"")
    for page, msg in [("99999999999999999999", "too large"), ("-99999999999999999999",
                                                               "too large"),
                      ("x", "must be an integer")]:
        body = check_error(api("GET", f"/tasks?page={page}"), 400, f"page={page}")
        check(any(d.get("field") == "page" and msg in d.get("message", "")
                  for d in body.get("fields", [])), f"page={page}: {body}")
    step("a body whose Content-Type names a charset other than UTF-8: 415")
    kind = new_kind("t-fidelity-ct")
    good = [task("a", kind=kind, on_start="http://127.0.0.1:9/")]
    for ctype in ("application/json; charset=iso-8859-1", "application/json;charset=utf-16",
                  'application/json; charset="latin1"'):
        check_error(api("POST", "/tasks", good, content_type=ctype), 415, ctype)
    for ctype in ("application/json; charset=UTF-8", 'application/json;charset="utf-8"'):
        expect(api("POST", "/tasks", good, content_type=ctype), 201, ctype)

    step("an encoded slash in a task id does not route to another endpoint")
    holder_kind = new_kind("t-fidelity-slash")
    start_holder(holder_kind)
    body, _ = create([held("w", holder_kind)])
    tid = body[0]["id"]
    for method, path in [("POST", f"/tasks/{tid}%2fpause"), ("POST", f"/tasks/{tid}%2Fpause"),
                         ("GET", f"/tasks/{tid}%2fhistory"), ("PATCH", f"/task/pause%2F{tid}"),
                         ("DELETE", f"/tasks/{tid}%2F")]:
        code, _, _, raw = api(method, path)
        check(code in (400, 404, 405), f"{method} {path}: {code}: {raw[:200]!r}")
    check(get_task(tid)["status"] in ("Pending", "Waiting"),
          f"the task should be untouched, is {get_task(tid)['status']}")


if __name__ == "__main__":
    run(part_numbers, part_head, part_odd_inputs)

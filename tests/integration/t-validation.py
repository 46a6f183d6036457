"""t-validation: every validation rule of POST /tasks (API.md, "Create a batch").

Each refused request must be 400 (415 for a wrong Content-Type) with the JSON
error shape and a `details` entry naming each problem's field path, and must
write nothing: no task of its unique kind (or name), no new batch. Each case
is table-driven: (what, body builder, expected field paths).
"""

import json

from trlib import (Failed, api, check, check_error, create, detail_fields, get_task, held, new_kind, q,
                   run, short, sql_count, start_holder, step, task, webhook)


def batches_count():
    return sql_count("SELECT count(*) FROM batches")


def nothing_written(tok, batches_before, what):
    n = sql_count(f"SELECT count(*) FROM tasks WHERE kind = {q(tok)} OR name = {q(tok)}")
    check(n == 0, f"{what}: a refused batch stored {n} task(s)")
    after = batches_count()
    check(after == batches_before, f"{what}: a refused batch stored a batch "
          f"({batches_before} batches before, {after} after)")


def refused(what, body=None, fields=(), status=400, raw=None, content_type="application/json",
            tok=None):
    """POSTs a batch that must be refused; checks the error, the field paths
    and that nothing was written. Returns the error body."""
    before = batches_count()
    resp = api("POST", "/tasks", body, raw=raw, content_type=content_type)
    err = check_error(resp, status, what)
    got = detail_fields(err)
    for f in fields:
        if f.endswith("*"):
            check(any(g.startswith(f[:-1]) for g in got),
                  f"{what}: details should name a field under {f[:-1]}, got {got}")
        else:
            check(f in got, f"{what}: details should name field {f!r}, got {got}")
    if tok is not None:
        nothing_written(tok, before, what)
    print(f"   ok: {what} -> {status} {got}")
    return err


# ---------------------------------------------------------------------------
# Cases: (what, build(tok, rx) -> body, [field paths]); tok is a unique kind
# ---------------------------------------------------------------------------

def t(tok, lid="a", **fields):
    return task(lid, kind=tok, **fields)


def start_with(rx, **params):
    return {"kind": "Webhook", "params": {"url": rx.url("/start"), **params}}


FIELD_CASES = [
    # several problems at once, in one task and across tasks
    ("a task missing kind and on_start",
     lambda tok, rx: [t(tok), {"id": "b", "name": tok}],
     ["[1].kind", "[1].on_start"]),
    ("a task missing id and name",
     lambda tok, rx: [{"kind": tok, "on_start": start_with(rx)}],
     ["[0].id", "[0].name"]),
    ("problems in three tasks at once",
     lambda tok, rx: [t(tok, "a", timeout=0), t(tok, "b", priority=1001),
                      t(tok, "c", dependencies=[{"id": "nope", "requires_success": True}])],
     ["[0].timeout", "[1].priority", "[2].dependencies[0].id"]),
    # id, name, kind
    ("an empty id", lambda tok, rx: [t(tok, "")], ["[0].id"]),
    ("a 256-character id", lambda tok, rx: [t(tok, "i" * 256)], ["[0].id"]),
    ("a numeric id", lambda tok, rx: [t(tok, 5)], ["[0].id"]),
    ("an empty name", lambda tok, rx: [t(tok, name="")], ["[0].name"]),
    ("a non-string name", lambda tok, rx: [t(tok, name=["x"])], ["[0].name"]),
    ("an empty kind", lambda tok, rx: [task("a", name=tok, kind="")], ["[0].kind"]),
    ("a 101-character kind", lambda tok, rx: [task("a", name=tok, kind="k" * 101)], ["[0].kind"]),
    # timeout, priority, metadata
    ("timeout 0", lambda tok, rx: [t(tok, timeout=0)], ["[0].timeout"]),
    ("timeout 86401", lambda tok, rx: [t(tok, timeout=86401)], ["[0].timeout"]),
    ("timeout as a string", lambda tok, rx: [t(tok, timeout="60")], ["[0].timeout"]),
    ("timeout 1.5", lambda tok, rx: [t(tok, timeout=1.5)], ["[0].timeout"]),
    ("priority 1001", lambda tok, rx: [t(tok, priority=1001)], ["[0].priority"]),
    ("priority -1001", lambda tok, rx: [t(tok, priority=-1001)], ["[0].priority"]),
    ("priority true", lambda tok, rx: [t(tok, priority=True)], ["[0].priority"]),
    ("metadata as an array", lambda tok, rx: [t(tok, metadata=[1, 2])], ["[0].metadata"]),
    ("metadata as a string", lambda tok, rx: [t(tok, metadata="x")], ["[0].metadata"]),
    # A \u0000 escape anywhere is refused before parsing (json-c would cut an
    # object key at it), so these errors name no field.
    ("a NUL character in a metadata value",
     lambda tok, rx: [t(tok, metadata={"k": "a\u0000b"})], []),
    ("a NUL character in a metadata key (cannot be stored as sent)",
     lambda tok, rx: [t(tok, metadata={"a\u0000b": 1})], []),
    ("a NUL character in a name", lambda tok, rx: [t(tok, name="a\u0000b")], []),
    # webhooks
    ("on_start without params", lambda tok, rx: [t(tok, on_start={"kind": "Webhook"})],
     ["[0].on_start.params"]),
    ("on_start without url", lambda tok, rx: [t(tok, on_start={"kind": "Webhook", "params": {}})],
     ["[0].on_start.params.url"]),
    ("an ftp url", lambda tok, rx: [t(tok, on_start=webhook("ftp://127.0.0.1/x"))],
     ["[0].on_start.params.url"]),
    ("a url that is not one", lambda tok, rx: [t(tok, on_start=webhook("not a url"))],
     ["[0].on_start.params.url"]),
    ("a relative url", lambda tok, rx: [t(tok, on_start=webhook("/relative/path"))],
     ["[0].on_start.params.url"]),
    ("a url without host", lambda tok, rx: [t(tok, on_start=webhook("http://"))],
     ["[0].on_start.params.url"]),
    ("a url over 2048 bytes",
     lambda tok, rx: [t(tok, on_start=webhook(rx.url("/start?x=" + "u" * 2100)))],
     ["[0].on_start.params.url"]),
    ("an unknown verb", lambda tok, rx: [t(tok, on_start=start_with(rx, verb="Fetch"))],
     ["[0].on_start.params.verb"]),
    ("a header name with a space",
     lambda tok, rx: [t(tok, on_start=start_with(rx, headers={"Bad Name": "v"}))],
     ["[0].on_start.params.headers*"]),
    ("a header name with a colon",
     lambda tok, rx: [t(tok, on_start=start_with(rx, headers={"X-A:": "v"}))],
     ["[0].on_start.params.headers*"]),
    ("CRLF in a header value",
     lambda tok, rx: [t(tok, on_start=start_with(rx, headers={"X-A": "a\r\nX-Injected: 1"}))],
     ["[0].on_start.params.headers.X-A"]),
    ("LF in a header value",
     lambda tok, rx: [t(tok, on_start=start_with(rx, headers={"X-A": "a\nb"}))],
     ["[0].on_start.params.headers.X-A"]),
    ("a header value that is not a string",
     lambda tok, rx: [t(tok, on_start=start_with(rx, headers={"X-A": 5}))],
     ["[0].on_start.params.headers.X-A"]),
    ("headers as an array", lambda tok, rx: [t(tok, on_start=start_with(rx, headers=["x"]))],
     ["[0].on_start.params.headers"]),
    ("a bad on_success url",
     lambda tok, rx: [t(tok, on_success=[webhook(rx.url("/ok")), webhook("nope")])],
     ["[0].on_success[1].params.url"]),
    ("17 on_success actions",
     lambda tok, rx: [t(tok, on_success=[webhook(rx.url("/ok"))] * 17)], ["[0].on_success"]),
    ("on_failure not an array",
     lambda tok, rx: [t(tok, on_failure=webhook(rx.url("/f")))], ["[0].on_failure"]),
    ("an action kind other than Webhook",
     lambda tok, rx: [t(tok, on_start={"kind": "Email", "params": {"url": rx.url("/start")}})],
     ["[0].on_start.kind"]),
    ("an on_success action with trigger Start",
     lambda tok, rx: [t(tok, on_success=[{"kind": "Webhook", "trigger": "Start",
                                          "params": {"url": rx.url("/ok")}}])],
     ["[0].on_success[0].trigger"]),
    ("a bad on_cancel verb",
     lambda tok, rx: [t(tok, on_cancel=[webhook(rx.url("/c"), verb="Yell")])],
     ["[0].on_cancel[0].params.verb"]),
    # dependencies
    ("an unknown dependency id",
     lambda tok, rx: [t(tok, "a"), t(tok, "b", dependencies=[{"id": "zz", "requires_success": True}])],
     ["[1].dependencies[0].id"]),
    ("a self-dependency",
     lambda tok, rx: [t(tok, "a", dependencies=[{"id": "a", "requires_success": True}])],
     ["[0].dependencies[0].id"]),
    ("a duplicate dependency",
     lambda tok, rx: [t(tok, "a"), t(tok, "b", dependencies=[{"id": "a", "requires_success": True},
                                                             {"id": "a", "requires_success": False}])],
     ["[1].dependencies[1].id"]),
    ("duplicate task ids", lambda tok, rx: [t(tok, "a"), t(tok, "b"), t(tok, "a")], ["[2].id"]),
    ("dependencies not an array",
     lambda tok, rx: [t(tok, "a"), t(tok, "b", dependencies={"id": "a"})], ["[1].dependencies"]),
    ("a dependency without id",
     lambda tok, rx: [t(tok, "a"), t(tok, "b", dependencies=[{"requires_success": True}])],
     ["[1].dependencies[0].id"]),
    ("requires_success not a boolean",
     lambda tok, rx: [t(tok, "a"), t(tok, "b", dependencies=[{"id": "a", "requires_success": "yes"}])],
     ["[1].dependencies[0].requires_success"]),
    # rules and dedupe
    ("a rule field missing from metadata",
     lambda tok, rx: [t(tok, metadata={"tenant": 1}, rules=[
         {"type": "Concurrency", "max_concurrency": 2,
          "matcher": {"kind": tok, "status": "Running", "fields": ["tenant", "region"]}}])],
     ["[0].rules[0].matcher.fields[1]"]),
    ("a rule field without any metadata",
     lambda tok, rx: [t(tok, rules=[{"type": "Concurrency", "max_concurrency": 2,
                                     "matcher": {"kind": tok, "fields": ["tenant"]}}])],
     ["[0].rules[0].matcher.fields[0]"]),
    ("a dedupe field missing from metadata",
     lambda tok, rx: [t(tok, metadata={"a": 1},
                        dedupe_strategy=[{"kind": tok, "status": "Pending", "fields": ["b"]}])],
     ["[0].dedupe_strategy[0].fields[0]"]),
    ("max_concurrency 0",
     lambda tok, rx: [t(tok, rules=[{"type": "Concurrency", "max_concurrency": 0,
                                     "matcher": {"kind": tok, "fields": []}}])],
     ["[0].rules[0].max_concurrency"]),
    ("max_concurrency 100001",
     lambda tok, rx: [t(tok, rules=[{"type": "Concurrency", "max_concurrency": 100001,
                                     "matcher": {"kind": tok, "fields": []}}])],
     ["[0].rules[0].max_concurrency"]),
    ("max_concurency (old spelling) 0",
     lambda tok, rx: [t(tok, rules=[{"type": "Concurency", "max_concurency": 0,
                                     "matcher": {"kind": tok, "fields": []}}])],
     ["[0].rules[0].max_concurency"]),
    ("a rule without type",
     lambda tok, rx: [t(tok, rules=[{"max_concurrency": 1, "matcher": {"kind": tok, "fields": []}}])],
     ["[0].rules[0].type"]),
    ("a rule of an unknown type",
     lambda tok, rx: [t(tok, rules=[{"type": "Bogus", "max_concurrency": 1,
                                     "matcher": {"kind": tok, "fields": []}}])],
     ["[0].rules[0].type"]),
    ("a matcher of an unknown status",
     lambda tok, rx: [t(tok, rules=[{"type": "Concurrency", "max_concurrency": 1,
                                     "matcher": {"kind": tok, "status": "Nope", "fields": []}}])],
     ["[0].rules[0].matcher.status"]),
]


def step_field_cases(rx):
    step(f"{len(FIELD_CASES)} invalid batches: 400, each problem's field path, nothing written")
    wrong = []
    for what, build, fields in FIELD_CASES:
        tok = new_kind("t-val")
        try:
            refused(what, build(tok, rx), fields, tok=tok)
        except Failed as e:
            print(f"   WRONG: {e}")
            wrong.append(str(e))
    check(not wrong, f"{len(wrong)} of {len(FIELD_CASES)} invalid batches were not refused as "
          "expected:\n  " + "\n  ".join(wrong))

    step("every problem is reported, and only those")
    tok = new_kind("t-val-all")
    body = [t(tok, "a", timeout=0, priority=5000),
            t(tok, "b", on_start=webhook("nope"), metadata=[1]),
            t(tok, "c", dependencies=[{"id": "zz", "requires_success": True}]),
            t(tok, "d")]
    err = refused("five problems in three of four tasks", body, tok=tok)
    want = ["[0].timeout", "[0].priority", "[1].metadata", "[1].on_start.params.url",
            "[2].dependencies[0].id"]
    check(sorted(detail_fields(err)) == sorted(want),
          f"details: expected exactly {sorted(want)}, got {sorted(detail_fields(err))}")


def step_cycles(rx):
    step("cycles are 400 and the error names the ids on the cycle")
    tok = new_kind("t-val-cycle")
    body = [t(tok, "alpha-1", dependencies=[{"id": "charlie-3", "requires_success": True}]),
            t(tok, "bravo-2", dependencies=[{"id": "alpha-1", "requires_success": True}]),
            t(tok, "charlie-3", dependencies=[{"id": "bravo-2", "requires_success": False}]),
            t(tok, "off-cycle")]
    err = refused("a 3-task cycle", body, tok=tok)
    text = " ".join(f"{d['field']} {d['message']}" for d in err["fields"])
    for lid in ("alpha-1", "bravo-2", "charlie-3"):
        check(lid in text, f"the cycle error should name {lid!r}: {short(err)}")
    check("off-cycle" not in text, f"the cycle error names a task off the cycle: {short(err)}")
    check(all(d["field"].startswith("[") for d in err["fields"]),
          f"cycle details should carry a task path: {short(err)}")

    tok = new_kind("t-val-cycle2")
    body = [t(tok, "left", dependencies=[{"id": "right", "requires_success": True}]),
            t(tok, "right", dependencies=[{"id": "left", "requires_success": True}])]
    err = refused("a 2-task cycle", body, tok=tok)
    text = " ".join(d["message"] for d in err["fields"])
    check("left" in text and "right" in text, f"the cycle error should name left and right: {short(err)}")


def step_body_shapes(rx):
    step("the body must be a non-empty JSON array of at most 10,000 tasks")
    tok = new_kind("t-val-shape")
    refused("an object body", {"id": "a", "name": "n", "kind": tok}, tok=tok)
    refused("a string body", "tasks", tok=tok)
    refused("a null body", raw="null", tok=tok)
    refused("an empty array", [], tok=tok)
    minimal = [{"id": f"t{i}", "name": "n", "kind": tok,
                "on_start": {"kind": "Webhook", "params": {"url": rx.url("/start")}}}
               for i in range(10001)]
    refused("10,001 tasks", minimal, tok=tok)

    step("malformed JSON and trailing garbage are 400; nothing written")
    good = json.dumps([t(tok, "a")])
    refused("malformed JSON (cut short)", raw=good[:-3], tok=tok)
    refused("malformed JSON (single quotes)", raw=good.replace('"', "'"), tok=tok)
    refused("trailing garbage after the array", raw=good + " garbage", tok=tok)
    refused("a second document after the array", raw=good + good, tok=tok)
    refused("invalid UTF-8 in a string", raw=good.encode().replace(b"task a", b"task \xff\xfe"),
            tok=tok)

    step("a Content-Type other than application/json is 415; nothing written")
    refused("Content-Type text/plain", raw=good, status=415, content_type="text/plain", tok=tok)
    refused("Content-Type application/x-www-form-urlencoded", raw=good, status=415,
            content_type="application/x-www-form-urlencoded", tok=tok)
    refused("no Content-Type", raw=good, status=415, content_type=None, tok=tok)


def step_accepted_limits(rx):
    step("values at the limits are accepted and stored as given")
    tok = new_kind("t-val-limits")
    url = rx.url("/start?x=")
    url += "u" * (2048 - len(url))
    body = [task("i" * 255, kind=tok, name="n" * 255, timeout=1, priority=-1000, metadata=None,
                 on_start=webhook(url), on_success=[webhook(rx.url("/ok"))] * 16),
            task("b", kind=tok, timeout=86400, priority=1000, metadata={},
                 rules=[{"type": "Concurrency", "max_concurrency": 100000,
                         "matcher": {"kind": tok, "fields": []}},
                        {"type": "Concurrency", "max_concurrency": 1,
                         "matcher": {"kind": "k" * 100, "fields": []}}],
                 dependencies=[{"id": "i" * 255, "requires_success": False}]),
            task("c", kind="é" * 100, name=tok)]
    created, _ = create(body)
    a, b, c = created
    check((len(a["local_id"]), len(a["name"]), a["timeout"], a["priority"], a["metadata"]) ==
          (255, 255, 1, -1000, None), f"limits of task a not kept: {short(a)}")
    check(len(a["actions"]) == 17, f"on_start plus 16 on_success: got {len(a['actions'])} actions")
    starts = [x for x in a["actions"] if x["trigger"] == "Start"]
    check(len(starts) == 1 and starts[0]["params"]["url"] == url,
          "a 2048-byte url was not stored as given")
    check((b["timeout"], b["priority"], b["metadata"]) == (86400, 1000, {}),
          f"limits of task b not kept: {short(b)}")
    check([r["max_concurency"] for r in b["rules"]] == [100000, 1], f"rules: {b['rules']}")
    check(b["dependencies"] == [{"id": a["id"], "requires_success": False}],
          f"dependency on a 255-character id: {b['dependencies']}")
    check(c["kind"] == "é" * 100, f"a 100-character kind was not kept: {c['kind']!r}")

    step("a batch of exactly 10,000 tasks is accepted (held Pending, so the worker idles)")
    big = new_kind("t-val-10000")
    start_holder(big)
    created, bid = create([held(f"t{i}", big) for i in range(10000)])
    check([x["local_id"] for x in created] == [f"t{i}" for i in range(10000)],
          "the 10,000 tasks are not answered in input order")
    check(sql_count(f"SELECT count(*) FROM tasks WHERE batch_id = {q(bid)}") == 10000,
          "the database should hold the 10,000 tasks")

    step("explicit nulls count as not given")
    created, _ = create([task("n", kind=tok, timeout=None, priority=None, metadata=None,
                              on_success=None, on_failure=None, on_cancel=None, rules=None,
                              dependencies=None, dedupe_strategy=None)])
    n = created[0]
    check((n["timeout"], n["priority"], n["rules"], n["dependencies"], len(n["actions"])) ==
          (60, 0, [], [], 1), f"nulls should give the defaults: {short(n)}")


def step_accepted_spellings(rx):
    step("the original spellings Concurency / max_concurency are accepted and normalized")
    tok = new_kind("t-val-ok")
    body, _ = create([t(tok, "old", metadata={"tenant": 1}, rules=[
        {"type": "Concurency", "max_concurency": 3,
         "matcher": {"kind": tok, "status": "Running", "fields": ["tenant"]}}])])
    want = [{"type": "Concurency", "max_concurency": 3,
             "matcher": {"kind": tok, "status": "Running", "fields": ["tenant"]}}]
    for where, rules in (("created", body[0]["rules"]), ("GET", get_task(body[0]["id"])["rules"])):
        check(rules == want, f"{where} rules: expected {want}, got {rules}")

    step("matcher.status defaults to Running")
    body, _ = create([t(tok, "dflt", rules=[{"type": "Concurrency", "max_concurrency": 5,
                                             "matcher": {"kind": tok, "fields": []}}])])
    got = body[0]["rules"][0]["matcher"]["status"]
    check(got == "Running", f"default matcher status: expected Running, got {got!r}")

    step("enums in any letter case are accepted; output uses the canonical spelling")
    body, _ = create([t(tok, "case",
                        on_start={"kind": "webhook", "trigger": "START",
                                  "params": {"url": rx.url("/start"), "verb": "pOsT"}},
                        on_success=[{"kind": "WEBHOOK", "trigger": "end",
                                     "params": {"url": rx.url("/ok"), "verb": "delete"}}],
                        on_cancel=[{"kind": "Webhook", "trigger": "cancel",
                                    "params": {"url": rx.url("/c"), "verb": "PATCH"}}],
                        rules=[{"type": "concurrency", "max_concurrency": 5,
                                "matcher": {"kind": tok, "status": "rUnNiNg", "fields": []}}],
                        dedupe_strategy=[{"kind": tok, "status": "paused", "fields": []}])])
    g = get_task(body[0]["id"])
    got = sorted((a["kind"], a["trigger"], a["condition"], a["params"]["verb"]) for a in g["actions"])
    want = sorted([("Webhook", "Start", None, "Post"), ("Webhook", "End", "Success", "Delete"),
                   ("Webhook", "Cancel", None, "Patch")])
    check(got == want, f"actions: expected {want}, got {got}")
    # Written in the original's spelling, which its client requires.
    check(g["rules"] == [{"type": "Concurency", "max_concurency": 5,
                          "matcher": {"kind": tok, "status": "Running", "fields": []}}],
          f"rules: got {g['rules']}")


if __name__ == "__main__":
    run(step_field_cases, step_cycles, step_body_shapes, step_accepted_limits,
        step_accepted_spellings)

"""t-webhooks-v2: webhooks v2 through the real stack (API.md, "Webhooks v2
(F8)"): placeholders filled at call time from the task, its metadata, its
output and its parents' outputs, with hostile values that must arrive as
data (never a new header, another host, a broken body); a missing value
failing the call for good; params.response (store_output, and rules for
every `then`: accept, succeed, fail, retry); conditional actions ("when");
per-action timeout_ms and max_attempts; and the 400s of bad placeholders,
rules and conditions at their field paths.
"""

import urllib.parse

from trlib import (api, check, check_error, create, create_map, dep, get_task, new_kind, sql_value,
                   step, task, wait_for, wait_status, webhook)
from workerlib import Hooks, run

HOSTILE = {
    "crlf": "a\r\nX-Injected: 1",
    "at": "user@evil.example:80",
    "hash": "x#frag",
    "query": "x?admin=1&y=2",
    "dots": "../../etc/passwd",
    "dotdot": "..",
    "slashes": "//evil.example/x",
    "quotes": "say \"hi\" and 'bye' \\ backslash } { ]",
    "unicode": "Zoë ✓",
}


def deep(n):
    v = "bottom"
    for _ in range(n):
        v = {"d": v}
    return v


def history(tid, event=None):
    code, _, body, _ = api("GET", f"/tasks/{tid}/history?page_size=500")
    check(code == 200, f"history of {tid}: {code}")
    items = body["items"] if isinstance(body, dict) else body
    return [e for e in items if event is None or e["event"] == event]


def part_placeholders_and_hostile_values(rx):
    step("placeholders: every root, hostile values arrive as data")
    with Hooks() as hooks:
        kind = new_kind("t-wh2")
        metadata = dict(HOSTILE, n=42, obj={"k": [1, 2, {"x": True}]}, deep=deep(20),
                        big="B" * 60000)
        # export's on_start answer is its output (store_output).
        hooks.fixed("/export", 200, {"file": "s3://bucket/exp 1.csv?v=1", "rows": 7})
        export = task("export", kind=kind, metadata={"id": "exp-1"},
                      on_start=webhook(hooks.url("/export"),
                                       response={"store_output": True,
                                                 "rules": [{"when": {"status": ["2xx"]},
                                                            "then": "succeed"}]}))
        body = {"exact_num": "{{metadata.n}}", "exact_obj": "{{metadata.obj}}",
                "exact_parent": "{{parents.export.output}}",
                "text": "rows={{parents.export.output.rows}} name={{task.name}}",
                "hostile": {k: "{{metadata.%s}}" % k for k in HOSTILE},
                "in_text": "<{{metadata.quotes}}>", "deep": "{{metadata.deep}}",
                "big": "{{metadata.big}}", "list": ["{{task.kind}}", 1, None, "{{metadata.obj.k.2}}"],
                "ids": ["{{task.id}}", "{{task.batch_id}}", "{{task.attempt}}"]}
        path = "/up/" + "/".join("{{metadata.%s}}" % k for k in
                                 ("at", "hash", "query", "dots", "dotdot", "slashes", "unicode"))
        group = "tenant 42/night?ly&x=1"
        upload = task("upload", kind=kind, metadata=metadata, group=group,
                      dependencies=[dep("export")],
                      on_start=webhook(hooks.url(path) + "?file={{parents.export.output.file}}"
                                       "&q={{metadata.query}}&g={{task.group}}",
                                       body=body,
                                       headers={"X-Name": "{{task.name}}",
                                                "X-Group": "{{task.group}}",
                                                "X-Quotes": "{{metadata.quotes}}",
                                                "X-Unicode": "{{metadata.unicode}}"}))
        tasks, _ = create_map([export, upload])
        eid, uid = tasks["export"]["id"], tasks["upload"]["id"]
        wait_status(eid, "Success", 15, "export (synchronous: succeed on its on_start answer)")
        check(get_task(eid)["output"] == {"file": "s3://bucket/exp 1.csv?v=1", "rows": 7},
              "store_output stored the answer")
        calls = wait_for(lambda: [c for c in hooks.received() if c.path.startswith("/up/")],
                         15, "the upload's on_start call")
        c = calls[0]
        # The path: each value one percent-encoded segment piece, on our host.
        raw_path = c.path
        want = "/up/" + "/".join(
            urllib.parse.quote(HOSTILE[k], safe="-_~").replace(".", "%2E")
            for k in ("at", "hash", "query", "dots", "dotdot", "slashes", "unicode"))
        check(raw_path.lower() == want.lower(), f"path arrived encoded: {raw_path!r} want {want!r}")
        check(c.query.get("file") == ["s3://bucket/exp 1.csv?v=1"], f"parent output in query: {c.query}")
        check(c.query.get("q") == [HOSTILE["query"]], f"'?' and '&' stay in their value: {c.query}")
        check(c.query.get("g") == [group], f"task.group in the query, as data: {c.query}")
        check(c.headers.get("x-group") == group, f"task.group in a header: {c.headers}")
        check(set(c.query) == {"file", "q", "g", "handle"}, f"no parameter added: {sorted(c.query)}")
        check(c.headers.get("x-name") == "task upload", f"task.name in a header: {c.headers}")
        check(c.headers.get("x-quotes") == HOSTILE["quotes"], "quotes in a header kept")
        check("x-injected" not in c.headers, "no header injected")
        b = c.json()
        check(b["exact_num"] == 42 and b["exact_obj"] == metadata["obj"],
              f"an exact placeholder keeps its JSON type: {b['exact_num']!r} {b['exact_obj']!r}")
        check(b["exact_parent"] == {"file": "s3://bucket/exp 1.csv?v=1", "rows": 7}, "parent output")
        check(b["text"] == "rows=7 name=task upload", f"text insertion: {b['text']!r}")
        check(b["hostile"] == HOSTILE, f"hostile values arrive as they are: {b['hostile']}")
        check(b["in_text"] == "<" + HOSTILE["quotes"] + ">", "quotes inside a larger string")
        check(b["deep"] == metadata["deep"] and b["big"] == metadata["big"], "deep and big values")
        check(b["list"] == [kind, 1, None, {"x": True}], f"array entries: {b['list']}")
        check(b["ids"] == [uid, tasks["upload"]["batch_id"], 1], f"task.*: {b['ids']}")


def part_header_crlf_fails_for_good(rx):
    step("a value with CR/LF for a header: the call fails for good, naming the placeholder")
    with Hooks() as hooks:
        tasks, _ = create_map([task("t", kind=new_kind("t-wh2"), metadata={"v": HOSTILE["crlf"]},
                                    on_start=webhook(hooks.url("/s"),
                                                     headers={"X-V": "{{metadata.v}}"}))])
        tid = tasks["t"]["id"]
        t = wait_status(tid, "Failure", 15)
        check("{{metadata.v}}" in (t["failure_reason"] or ""),
              f"the reason names the placeholder: {t['failure_reason']}")
        check(not hooks.received("/s"), "nothing was sent")
        hooks_events = history(tid, "webhook")
        check(len(hooks_events) == 1, f"one attempt, no retry: {hooks_events}")


def part_missing_value_dead_letter(rx):
    step("a value missing at call time: an end call becomes a dead letter at once")
    with Hooks() as hooks:
        tasks, _ = create_map([task("t", kind=new_kind("t-wh2"), on_start=webhook(hooks.url("/s")),
                                    on_success=[webhook(hooks.url("/done"),
                                                        body={"f": "{{output.file}}"})])])
        tid = tasks["t"]["id"]
        wait_for(lambda: hooks.received("/s"), 15, "on_start")
        handle = urllib.parse.urlsplit(hooks.received("/s")[0].query["handle"][0])
        code, _, _, _ = api("PATCH", handle.path + "?" + handle.query, {"status": "Success"})
        check(code == 200, f"PATCH Success: {code}")
        n = wait_for(lambda: sql_value(f"SELECT count(*) FROM deliveries WHERE task_id = '{tid}' "
                                       "AND state = 'dead'") == "1" or None, 15, "a dead letter")
        check(n, "dead letter")
        err = sql_value(f"SELECT last_error FROM deliveries WHERE task_id = '{tid}' AND state = 'dead'")
        check("{{output.file}}" in err and "no value" in err, f"dead letter names it: {err}")
        check(sql_value(f"SELECT attempts FROM deliveries WHERE task_id = '{tid}' AND state = 'dead'")
              == "1", "no retry")
        check(not hooks.received("/done"), "nothing was sent")


def part_rules(rx):
    step("response rules: fail, retry (even on 2xx), accept (a 404), first match decides")
    with Hooks() as hooks:
        kind = new_kind("t-wh2")
        hooks.fixed("/fail", 404, {"error": "gone"})
        hooks.sequence("/retry", [(200, {"state": "pending"}), (200, {"state": "pending"})],
                       then=(200, {"state": "ready"}))
        hooks.fixed("/accept", 404)
        pend = {"when": {"json": {"path": "state", "equals": "pending"}}, "then": "retry"}
        tasks, _ = create_map([
            task("fail", kind=kind, on_start=webhook(hooks.url("/fail"), response={"rules": [
                {"when": {"status": [404]}, "then": "accept"} if False else
                {"when": {"status": ["4xx"], "json": {"path": "error", "in": ["gone", "x"]}},
                 "then": "fail"}]})),
            task("retry", kind=kind, on_start=webhook(hooks.url("/retry"), max_attempts=5,
                                                       response={"rules": [pend]})),
            task("accept", kind=kind, on_start=webhook(hooks.url("/accept"), response={"rules": [
                {"when": {"status": [500]}, "then": "fail"},
                {"when": {"status": [404]}, "then": "accept"},
                {"when": {"status": ["4xx"]}, "then": "fail"}]})),
        ])
        t = wait_status(tasks["fail"]["id"], "Failure", 15)
        check("response rule 1 says fail" in t["failure_reason"], f"reason: {t['failure_reason']}")
        check(len(hooks.received("/fail")) == 1, "fail: no more tries")
        wait_status(tasks["retry"]["id"], "Running", 20)
        check(len(hooks.received("/retry")) == 3, f"retry twice on a 2xx: {len(hooks.received('/retry'))}")
        wait_status(tasks["accept"]["id"], "Running", 15)
        check(len(hooks.received("/accept")) == 1, "a 404 accepted by the second rule")


def part_synchronous_task(rx):
    step("succeed: a synchronous task ends Success, its end actions and children follow")
    with Hooks() as hooks:
        kind = new_kind("t-wh2")
        hooks.fixed("/sync", 200, {"state": "done", "id": 9})
        tasks, _ = create_map([
            task("a", kind=kind, on_start=webhook(hooks.url("/sync"), response={
                "store_output": True,
                "rules": [{"when": {"status": ["2xx"], "json": {"path": "state", "equals": "done"}},
                           "then": "succeed"}]}),
                 on_success=[webhook(hooks.url("/ok"), body={"id": "{{output.id}}"})]),
            task("b", kind=kind, dependencies=[dep("a")], on_start=webhook(hooks.url("/b"))),
        ])
        a = wait_status(tasks["a"]["id"], "Success", 15)
        check(a["output"] == {"state": "done", "id": 9}, f"output: {a['output']}")
        ok = hooks.wait_calls("/ok", 1)
        check(ok[0].json() == {"id": 9}, f"on_success read the output: {ok[0].body!r}")
        hooks.wait_calls("/b", 1, what="the child started")
        ev = [e for e in history(tasks["a"]["id"], "updated") if e.get("actor") == "worker"]
        check(ev, "the worker's PATCH-like update is in the history")


def part_store_output_too_big(rx):
    step("store_output: an answer over 64 KiB is not stored, the call counts, history says so")
    with Hooks() as hooks:
        hooks.fixed("/big", 200, {"x": "y" * 70000})
        tasks, _ = create_map([task("t", kind=new_kind("t-wh2"), on_start=webhook(
            hooks.url("/big"), response={"store_output": True}))])
        tid = tasks["t"]["id"]
        t = wait_status(tid, "Running", 15)
        check(t["output"] is None, "no output")
        wait_for(lambda: history(tid, "output_not_stored") or None, 10, "output_not_stored event")


def part_conditional_actions(rx):
    step("when: an end action fires only if its condition holds when the task ends")
    with Hooks() as hooks:
        kind = new_kind("t-wh2")
        tasks, _ = create_map([task("t", kind=kind, metadata={"env": "prod"},
                                    on_start=webhook(hooks.url("/s")),
                                    on_success=[
                                        {**webhook(hooks.url("/big")),
                                         "when": {"output": {"path": "rows", "in": [1000, 2000]}}},
                                        {**webhook(hooks.url("/small")),
                                         "when": {"output": {"path": "rows", "equals": 5}}},
                                        {**webhook(hooks.url("/prod")),
                                         "when": {"metadata": {"path": "env", "equals": "prod"}}},
                                        {**webhook(hooks.url("/nofile")),
                                         "when": {"output": {"path": "file", "exists": False}}},
                                    ])])
        tid = tasks["t"]["id"]
        check(get_task(tid)["actions"][1]["when"] == {"output": {"path": "rows", "in": [1000, 2000]}},
              "when shown on the action")
        wait_for(lambda: hooks.received("/s"), 15, "on_start")
        handle = urllib.parse.urlsplit(hooks.received("/s")[0].query["handle"][0])
        code, _, _, _ = api("PATCH", handle.path + "?" + handle.query,
                            {"status": "Success", "output": {"rows": 5}})
        check(code == 200, "PATCH")
        hooks.wait_calls("/small", 1)
        hooks.wait_calls("/prod", 1)
        hooks.wait_calls("/nofile", 1)
        nf = wait_for(lambda: len(history(tid, "action_not_fired")) == 1 or None, 10,
                      "one action_not_fired event")
        check(nf and not hooks.received("/big"), "the false condition did not fire")


def part_timeout_and_attempts(rx):
    step("per-action timeout_ms and max_attempts")
    with Hooks() as hooks:
        hooks.fixed("/slow", 200, b"", 1.5)
        hooks.fixed("/down", 503)
        tasks, _ = create_map([
            task("slow", kind=new_kind("t-wh2"), on_start=webhook(hooks.url("/slow"),
                                                                  timeout_ms=200, max_attempts=1)),
            task("down", kind=new_kind("t-wh2"), on_start=webhook(hooks.url("/down"),
                                                                  max_attempts=2)),
        ])
        t = wait_status(tasks["slow"]["id"], "Failure", 15)
        check("no answer within 200 ms" in t["failure_reason"], f"reason: {t['failure_reason']}")
        t = wait_status(tasks["down"]["id"], "Failure", 20)
        check("after 2 attempts" in t["failure_reason"], f"reason: {t['failure_reason']}")
        check(len(hooks.received("/down")) == 2, f"2 tries: {len(hooks.received('/down'))}")


def part_validation(rx):
    step("bad placeholders, rules and conditions are 400 at their field paths")
    u = "http://127.0.0.1:9/x"
    cases = [
        ([task("a", on_start=webhook(u + "/{{metadata.x"))], "[0].on_start.params.url"),
        ([task("a", on_start=webhook(u, body={"k": ["{{nope.x}}"]}))], "[0].on_start.params.body.k[0]"),
        ([task("a", on_start=webhook(u, headers={"X-A": "{{task.secret}}"}))],
         "[0].on_start.params.headers.X-A"),
        ([task("a", on_start=webhook(u, body={"k": "{{ metadata.x }}"}))], "[0].on_start.params.body.k"),
        ([task("a", on_start=webhook("http://{{metadata.host}}/x"))], "[0].on_start.params.url"),
        ([task("b", on_start=webhook(u)),
          task("a", on_start=webhook(u, body="{{parents.b.output}}"))], "[1].on_start.params.body"),
        ([task("a", on_start=webhook(u, timeout_ms=0))], "[0].on_start.params.timeout_ms"),
        ([task("a", on_start=webhook(u, max_attempts=51))], "[0].on_start.params.max_attempts"),
        ([task("a", on_start=webhook(u, response={"rules": [{"then": "explode"}]}))],
         "[0].on_start.params.response.rules[0].then"),
        ([task("a", on_start=webhook(u, response={"rules": [{"when": {"status": ["6xx"]},
                                                              "then": "fail"}]}))],
         "[0].on_start.params.response.rules[0].when.status[0]"),
        ([task("a", on_start=webhook(u), on_success=[webhook(u, response={"store_output": True})])],
         "[0].on_success[0].params.response.store_output"),
        ([task("a", on_start=webhook(u), on_success=[webhook(u, response={"rules": [
            {"then": "succeed"}]})])], "[0].on_success[0].params.response.rules[0].then"),
        ([task("a", on_start={**webhook(u), "when": {"output": {"path": "x", "exists": True}}})],
         "[0].on_start.when"),
        ([task("a", on_start=webhook(u), on_failure=[
            {**webhook(u), "when": {"output": {"path": "x"}}}])], "[0].on_failure[0].when.output"),
        ([task("a", on_start=webhook(u), on_failure=[
            {**webhook(u), "when": {"output": {"path": "a..b", "equals": 1}}}])],
         "[0].on_failure[0].when.output.path"),
    ]
    for tasks, field in cases:
        body = check_error(api("POST", "/tasks", tasks), 400, f"bad input at {field}")
        fields = [f["field"] for f in body.get("fields", [])]
        check(field in fields, f"{field} should be reported, got {body}")
    # And the good ones are taken as given.
    body, _ = create([task("b", on_start=webhook(u)),
                      task("a", dependencies=[dep("b")], on_start=webhook(
                          u + "/{{parents.b.output.x}}?q={{task.group}}", timeout_ms=300000,
                          max_attempts=50, response={"store_output": True, "rules": [
                              {"when": {"status": [404, "5XX"]}, "then": "Retry"}]}))])
    p = body[1]["actions"][0]["params"]
    check(p["timeout_ms"] == 300000 and p["max_attempts"] == 50, f"params kept: {p}")
    check(p["response"]["rules"][0] == {"when": {"status": [404, "5xx"]}, "then": "retry"},
          f"rules normalized: {p['response']}")


if __name__ == "__main__":
    run(part_validation, part_placeholders_and_hostile_values, part_header_crlf_fails_for_good,
        part_missing_value_dead_letter, part_rules, part_synchronous_task,
        part_store_output_too_big, part_conditional_actions, part_timeout_and_attempts)

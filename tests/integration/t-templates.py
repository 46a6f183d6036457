"""t-templates: rule and action templates through the real stack (API.md
Part 2, "Rule and action templates (F2, F3)").

(a) /rules: PUT 201 then 200, GET, the paged list, bad bodies 400 at their
field paths, 404; a task naming an unknown template is 400 at its path.
(b) A live rule with two worker processes: six tasks of one tenant under a
template of max 1; raising it to 4 starts three more at once, lowering it to
2 stops nothing that runs, and once tasks end only up to 2 run; never more
than the limit of the moment in the database. tasks_using, the 409 of DELETE
while a task that has not ended names it, the 204 after; every change is in
the audit table with its actor.
(c) /action-templates: an on_start and an on_success naming templates; the
given params keys replace the template's; the on_success template corrected
while the task runs is the one called; the task object shows "ref" and the
params a call would use; unknown ref 400 at its path; DELETE 409 then 204,
after which the ended task keeps its actions' params.
"""

from trlib import (api, check, check_error, create, create_map, detail_fields, expect, get_task,
                   new_kind, patch_task, q, sql, sql_count, step, task, wait_for, wait_status,
                   webhook)
from workerlib import CountSampler, ExtraWorker, run

ACTOR = {"X-Requester": "t-templates"}


def put(path, body):
    return api("PUT", path, body, headers=ACTOR)


def rule_body(kind, max_concurrency, fields=()):
    return {"type": "Concurrency", "max_concurrency": max_concurrency,
            "matcher": {"kind": kind, "status": "Running", "fields": list(fields)}}


def part_rule_endpoints(rx):
    step("(a) PUT /rules/{name}: 201 new, 200 replaced; GET, list, 404, bad bodies")
    kind = new_kind("t-tpl-a")
    name = f"{kind}-rule"
    r = expect(put(f"/rules/{name}", rule_body(kind, 2, ["tenant"])), 201, "PUT new rule")
    check(r["name"] == name and r["max_concurrency"] == 2 and r["tasks_using"] == []
          and r["matcher"] == {"kind": kind, "status": "Running", "fields": ["tenant"]},
          f"the new rule as stored: {r}")
    r = expect(put(f"/rules/{name}", rule_body(kind, 3, ["tenant"])), 200, "PUT replacing")
    check(r["max_concurrency"] == 3, f"replaced: {r}")
    got = expect(api("GET", f"/rules/{name}"), 200, "GET /rules/{name}")
    check(got["max_concurrency"] == 3 and got["created_at"] <= got["updated_at"],
          f"GET /rules/{name}: {got}")
    other = f"{kind}-other"
    expect(put(f"/rules/{other}", rule_body(kind, 1)), 201, "PUT a second rule")
    page = expect(api("GET", "/rules?page_size=1000"), 200, "GET /rules")
    names = [x["name"] for x in page]
    check(name in names and other in names and names == sorted(names), f"GET /rules: {names}")
    one = expect(api("GET", "/rules?page_size=1"), 200, "GET /rules?page_size=1")
    check(len(one) == 1, f"a page of 1: {one}")
    check_error(api("GET", f"/rules/{kind}-missing"), 404, "GET unknown rule")
    body = check_error(put(f"/rules/{kind}-bad", {"type": "Concurrency", "max_concurrency": 0,
                                                   "matcher": {"fields": [3]}}), 400, "bad rule")
    fields = detail_fields(body)
    for f in ("max_concurrency", "matcher.kind", "matcher.fields[0]"):
        check(f in fields, f"bad rule: {f} should be named: {fields}")
    body = check_error(put(f"/rules/{kind}-ref", {"ref": name}), 400, "a template naming one")
    check(detail_fields(body) == ["ref"], f"a template naming another: {detail_fields(body)}")
    check_error(api("GET", f"/rules/{kind}-bad"), 404, "a refused rule was not stored")

    step("(a) tasks naming templates: unknown ref 400 at its path; a ref takes no other key")
    body = check_error(api("POST", "/tasks", [
        task("x", kind=kind, rules=[{"ref": name}]),
        task("y", kind=kind, rules=[rule_body(kind, 1), {"ref": f"{kind}-nope"}])]),
        400, "unknown rule ref")
    check(detail_fields(body) == ["[1].rules[1].ref"], f"unknown ref path: {body}")
    body = check_error(api("POST", "/tasks", [
        task("x", kind=kind, rules=[{"ref": name, "max_concurrency": 2}])]), 400, "ref + key")
    check(detail_fields(body) == ["[0].rules[0]"], f"ref with another key: {body}")
    body = check_error(api("POST", "/tasks", [task("x", kind=kind, rules=[{"ref": 7}])]),
                       400, "ref not a string")
    check(detail_fields(body) == ["[0].rules[0].ref"], f"ref not a string: {body}")
    check(sql_count(f"SELECT count(*) FROM tasks WHERE kind = {q(kind)}") == 0,
          "refused batches stored nothing")
    expect(api("DELETE", f"/rules/{other}", headers=ACTOR), 204, "DELETE unused rule")
    check_error(api("DELETE", f"/rules/{other}"), 404, "DELETE again")
    expect(api("DELETE", f"/rules/{name}", headers=ACTOR), 204, "DELETE rule")


def running_pending(ids):
    rows = sql("SELECT status, count(*) FROM tasks WHERE id IN ("
               + ", ".join(q(i) for i in ids) + ") GROUP BY 1")
    return {s: int(n) for s, n in rows}


def part_live_rule(rx):
    step("(b) a template of max 1 over six tasks of one tenant, two workers")
    kind = new_kind("t-tpl-live")
    name = f"{kind}-per-tenant"
    expect(put(f"/rules/{name}", rule_body(kind, 1, ["tenant"])), 201, "PUT rule max 1")
    sampler = CountSampler(f"SELECT '', count(*) FROM tasks WHERE kind = {q(kind)} "
                           "AND status IN ('Claimed', 'Running')")
    limit = {"now": 1}
    with ExtraWorker("t-templates-worker"), sampler:
        body, _ = create([task(f"t{i}", kind=kind, timeout=86400, metadata={"tenant": "acme"},
                               rules=[{"ref": name}]) for i in range(6)])
        ids = [t["id"] for t in body]
        check(all(t["rules"] == [{"ref": name}] for t in body),
              f"the task object shows the reference: {body[0]['rules']}")
        wait_for(lambda: running_pending(ids).get("Running") == 1, 15, "one task Running")
        using = expect(api("GET", f"/rules/{name}"), 200, "GET rule")["tasks_using"]
        check(sorted(using) == sorted(ids), f"tasks_using: {using}")
        blocked = [i for i in ids if get_task(i)["status"] == "Pending"][0]
        b = expect(api("GET", f"/tasks/{blocked}/blockers"), 200, "blockers")
        check(any(x.get("type") == "rule" and x.get("max") == 1
                  and x["rule"]["matcher"]["kind"] == kind for x in b["blockers"]),
              f"blockers name the template's rule and limit: {b}")
        check(sampler.max_by_key.get("", 0) <= 1, f"limit 1 exceeded: {sampler.max_by_key}")

        step("(b) raised to 4: three more start at once; lowered to 2: nothing stops")
        expect(put(f"/rules/{name}", rule_body(kind, 4, ["tenant"])), 200, "PUT max 4")
        wait_for(lambda: running_pending(ids).get("Running") == 4, 15, "four tasks Running")
        check(sampler.max_by_key.get("", 0) <= 4, f"limit 4 exceeded: {sampler.max_by_key}")
        expect(put(f"/rules/{name}", rule_body(kind, 2, ["tenant"])), 200, "PUT max 2")
        st = running_pending(ids)
        check(st.get("Running") == 4 and st.get("Pending") == 2,
              f"lowering the limit stops nothing that runs: {st}")
        running = [i for i in ids if get_task(i)["status"] == "Running"]
        high_before = sampler.max_by_key.get("", 0)
        sampler.max_by_key.clear()
        for i in running[:3]:
            patch_task(i, {"status": "Success"})
        wait_for(lambda: running_pending(ids) == {"Success": 3, "Running": 2, "Pending": 1}, 15,
                 "two Running under the new limit of 2, one Pending")
        check(sampler.max_by_key.get("", 0) <= 4 and high_before <= 4,
              f"limits exceeded: {high_before}, {sampler.max_by_key}")
        limit["now"] = 2

        step("(b) DELETE while tasks that have not ended name it: 409; after: 204")
        body = check_error(api("DELETE", f"/rules/{name}"), 409, "DELETE used rule")
        check("used by" in body["error"], f"409 says why: {body}")
        for _ in range(3):
            for i in ids:
                if get_task(i)["status"] == "Running":
                    patch_task(i, {"status": "Success"})
            if running_pending(ids) == {"Success": 6}:
                break
            wait_for(lambda: running_pending(ids).get("Pending", 0) == 0, 15, "the last to start")
        check(running_pending(ids) == {"Success": 6}, f"every task ended: {running_pending(ids)}")
        sampler.check_clean()
    check(expect(api("GET", f"/rules/{name}"), 200, "GET")["tasks_using"] == [],
          "no task that has not ended uses it")
    expect(api("DELETE", f"/rules/{name}", headers=ACTOR), 204, "DELETE unused rule")
    check(get_task(ids[0])["rules"] == [{"ref": name}], "an ended task keeps its reference")
    events = sql("SELECT event, actor, detail->'rule'->>'max_concurrency' FROM template_events "
                 f"WHERE kind = 'rule' AND name = {q(name)} ORDER BY id")
    check(events == [["created", "t-templates", "1"], ["replaced", "t-templates", "4"],
                     ["replaced", "t-templates", "2"], ["deleted", "t-templates", ""]],
          f"audit of the rule: {events}")


def part_action_templates(rx):
    step("(c) PUT /action-templates/{name}: 201, 200, bad bodies, GET, list")
    kind = new_kind("t-tpl-act")
    start, notify = f"{kind}-start", f"{kind}-notify"
    r = expect(put(f"/action-templates/{start}",
                   {"kind": "Webhook", "params": {"url": rx.url("/tpl-start"), "verb": "Put",
                                                  "headers": {"X-From": "template"}}}),
               201, "PUT start template")
    check(r["kind"] == "Webhook" and r["params"]["verb"] == "Put" and r["tasks_using"] == [],
          f"stored: {r}")
    expect(put(f"/action-templates/{notify}",
               {"params": {"url": rx.url("/notify-v1"), "body": {"a": 1, "b": 1}}}),
           201, "PUT notify template")
    body = check_error(put(f"/action-templates/{kind}-bad",
                           {"kind": "Email", "params": {"verb": "Fly"}}), 400, "bad template")
    fields = detail_fields(body)
    for f in ("kind", "params.url", "params.verb"):
        check(f in fields, f"bad template: {f} should be named: {fields}")
    lst = expect(api("GET", "/action-templates?page_size=1000"), 200, "GET /action-templates")
    check({start, notify} <= {x["name"] for x in lst}, f"list: {[x['name'] for x in lst]}")

    step("(c) unknown ref 400 at its path; partial params checked")
    body = check_error(api("POST", "/tasks", [
        task("x", kind=kind, on_success=[webhook(rx.url("/x")), {"ref": f"{kind}-nope"}])]),
        400, "unknown action ref")
    check(detail_fields(body) == ["[0].on_success[1].ref"], f"path: {body}")
    body = check_error(api("POST", "/tasks", [
        task("x", kind=kind, on_start={"ref": start, "params": {"url": "ftp://x"}})]),
        400, "bad partial params")
    check(detail_fields(body) == ["[0].on_start.params.url"], f"path: {body}")

    step("(c) a task naming both; the on_success template corrected before the call")
    t, _ = create_map([task("a", kind=kind, timeout=86400,
                            on_start={"ref": start, "params": {"verb": "Post"}},
                            on_success=[{"ref": notify, "params": {"body": {"c": 3}}}])])
    tid = t["a"]["id"]
    acts = t["a"]["actions"]
    check(acts[0]["ref"] == start and acts[0]["params"] == {
        "url": rx.url("/tpl-start"), "verb": "Post", "headers": {"X-From": "template"}},
        f"on_start as the task object shows it: {acts[0]}")
    call = rx.wait_for(lambda calls: [c for c in calls if c.path == "/tpl-start"], 15,
                       "the start call at the template's URL")[0]
    check(call.method == "POST" and call.headers.get("x-from") == "template",
          f"start call: {call.method} {call.headers}")
    wait_status(tid, "Running")
    using = expect(api("GET", f"/action-templates/{notify}"), 200, "GET")["tasks_using"]
    check(using == [tid], f"tasks_using: {using}")
    check_error(api("DELETE", f"/action-templates/{notify}"), 409, "DELETE used template")
    expect(put(f"/action-templates/{notify}",
               {"params": {"url": rx.url("/notify-v2"), "body": {"a": 2}, "verb": "Patch"}}),
           200, "PUT corrected template")
    patch_task(tid, {"status": "Success"})
    call = rx.wait_for(lambda calls: [c for c in calls if c.path.startswith("/notify")], 15,
                       "the on_success call")[0]
    check(call.path == "/notify-v2" and call.method == "PATCH" and call.json() == {"c": 3},
          f"on_success made with the corrected template and the task's body: "
          f"{call.method} {call.path} {call.body!r}")

    step("(c) DELETE once the task ended: 204; the task keeps its actions' params")
    expect(api("DELETE", f"/action-templates/{notify}", headers=ACTOR), 204, "DELETE")
    expect(api("DELETE", f"/action-templates/{start}", headers=ACTOR), 204, "DELETE")
    check_error(api("GET", f"/action-templates/{notify}"), 404, "gone")
    acts = get_task(tid)["actions"]
    check("ref" not in acts[1] and acts[1]["params"] == {
        "url": rx.url("/notify-v2"), "verb": "Patch", "body": {"c": 3}},
        f"the ended task's action keeps what it was called with: {acts[1]}")
    events = sql("SELECT event, actor FROM template_events "
                 f"WHERE kind = 'action' AND name = {q(notify)} ORDER BY id")
    check(events == [["created", "t-templates"], ["replaced", "t-templates"],
                     ["deleted", "t-templates"]], f"audit of the template: {events}")


if __name__ == "__main__":
    run(part_rule_endpoints, part_live_rule, part_action_templates)

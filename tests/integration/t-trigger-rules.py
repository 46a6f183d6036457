"""t-trigger-rules: trigger rules, the Skipped status and task outputs through
the real stack (API.md, "Trigger rules and outputs").

A branching pipeline: export -> upload (all_success), cleanup (one_failed of
export and upload), report (all_done). When export succeeds (with an output
set by PATCH), upload and report run and cleanup ends Skipped; when export
fails, upload ends Skipped (no action fires for it), cleanup and report run.
/blockers explains a waiting task's rule; many parents ending at once on the
worker and the API decide their child exactly once; bad rules and outputs are
400 at their field paths.
"""

import threading

from trlib import (api, check, create_map, dep, get_task, new_kind, step, task, wait_status,
                   webhook)
from workerlib import Executor, Hooks, run


def pipeline(hooks, kind, export_rule=None):
    def t(lid, deps=(), rule=None):
        x = task(lid, kind=kind, on_start=webhook(hooks.url("/start")),
                 on_success=[webhook(hooks.url("/success"))],
                 on_failure=[webhook(hooks.url("/failure"))],
                 dependencies=[dep(d) for d in deps])
        if rule:
            x["trigger_rule"] = rule
        return x
    tasks, _ = create_map([t("export"), t("upload", ["export"], "all_success"),
                           t("cleanup", ["export", "upload"], "one_failed"),
                           t("report", ["export", "upload", "cleanup"], "all_done")])
    return {lid: x["id"] for lid, x in tasks.items()}


def part_export_succeeds(rx):
    step("export succeeds with an output: upload and report run, cleanup is Skipped")
    with Hooks() as hooks, Executor(hooks, "/start") as ex:
        ex.outcome = lambda tid: None  # ended below
        ids = pipeline(hooks, new_kind("t-trig"))
        check(get_task(ids["upload"])["trigger_rule"] == "all_success", "trigger_rule shown")
        code, _, body, _ = api("GET", f"/tasks/{ids['cleanup']}/blockers")
        check(code == 200 and {"type": "trigger_rule", "rule": "one_failed",
                               "waiting_for": [ids["export"], ids["upload"]]} in body["blockers"],
              f"cleanup's blockers name its rule and open parents: {body}")
        ex.wait_started(ids["export"])
        call = ex.start_calls[ids["export"]][0]
        out = {"file": "s3://bucket/export-1.csv", "rows": 42}
        code, _, body, _ = api("PATCH", ex.handle_path(call), {"status": "Success", "output": out})
        check(code == 200 and body["output"] == out, f"PATCH output: {code} {body}")
        ex.wait_started(ids["upload"])
        ex.end(ids["upload"], "Success")
        wait_status(ids["cleanup"], "Skipped", 15)
        ex.wait_started(ids["report"])
        ex.end(ids["report"], "Success")
        wait_status(ids["report"], "Success", 15)
        cleanup = get_task(ids["cleanup"])
        check("one_failed" in cleanup["failure_reason"] and ids["upload"] in cleanup["failure_reason"],
              f"the reason names the rule and the deciding parent: {cleanup['failure_reason']}")
        check(ids["cleanup"] not in ex.start_calls, "cleanup never started")
        check(not hooks.received("/success", ids["cleanup"])
              and not hooks.received("/failure", ids["cleanup"]), "no action fires for Skipped")
        check(get_task(ids["export"])["output"] == out, "the output is kept")


def part_export_fails(rx):
    step("export fails: upload is Skipped, cleanup and report run")
    with Hooks() as hooks, Executor(hooks, "/start") as ex:
        ids = pipeline(hooks, new_kind("t-trig"))
        ex.outcome = lambda tid: "Failure" if tid == ids["export"] else "Success"
        wait_status(ids["upload"], "Skipped", 15)
        wait_status(ids["cleanup"], "Success", 15)
        wait_status(ids["report"], "Success", 15)
        check(ids["upload"] not in ex.start_calls, "upload never started")
        hooks.wait_calls("/failure", 1, ids["export"])
        check(not hooks.received("/failure", ids["upload"]), "no on_failure for a Skipped task")
        code, _, _, _ = api("DELETE", f"/tasks/{ids['upload']}")
        check(code == 409, f"a Skipped task is terminal: cancel is 409, got {code}")


def part_fan_in_at_once(rx):
    step("30 parents ending at the same time decide each child exactly once")
    kind = new_kind("t-trig-fan")
    n = 30
    with Hooks() as hooks, Executor(hooks, "/start") as ex:
        ex.outcome = lambda tid: None
        parents = [task(f"p{i}", kind=kind, on_start=webhook(hooks.url("/start")))
                   for i in range(n)]
        kids = []
        for rule in ("all_success", "one_success", "all_done", "none_failed", "one_failed",
                     "all_failed"):
            kids.append(dict(task(rule, kind=kind, on_start=webhook(hooks.url("/start")),
                                  dependencies=[dep(f"p{i}") for i in range(n)]),
                             trigger_rule=rule))
        tasks, _ = create_map(parents + kids)
        pids = [tasks[f"p{i}"]["id"] for i in range(n)]
        for p in pids:
            ex.wait_started(p, timeout=20)
        for p in pids:
            wait_status(p, "Running", 15)
        # All at once, the last one failing.
        threads = [threading.Thread(target=ex.end,
                                    args=(p, "Failure" if i == n - 1 else "Success"))
                   for i, p in enumerate(pids)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        expect = {"all_success": "Skipped", "one_success": "Running", "all_done": "Running",
                  "none_failed": "Skipped", "one_failed": "Running", "all_failed": "Skipped"}
        for rule, status in expect.items():
            tid = tasks[rule]["id"]
            if status == "Running":
                ex.wait_started(tid, timeout=20)
                ex.end(tid, "Success")
                wait_status(tid, "Success", 15)
                check(len(ex.start_calls[tid]) == 1, f"{rule} started once")
            else:
                wait_status(tid, "Skipped", 15)
                check(tid not in ex.start_calls, f"{rule} never started")


def part_validation(rx):
    step("bad trigger_rule and output: 400 at their field paths")
    code, _, body, _ = api("POST", "/tasks", [task("a", trigger_rule="sometimes")])
    check(code == 400 and any(f["field"] == "[0].trigger_rule" for f in body["fields"]),
          f"unknown rule: {code} {body}")
    code, _, body, _ = api("POST", "/tasks", [task("a", trigger_rule="ONE_SUCCESS")])
    check(code == 201 and body[0]["trigger_rule"] == "one_success", f"any case: {code} {body}")
    tid = body[0]["id"]
    code, _, body, _ = api("PATCH", f"/tasks/{tid}", {"output": "x" * 70000})
    check(code == 400 and any(f["field"] == "output" for f in body["fields"]),
          f"output too big: {code} {body}")


run(part_export_succeeds, part_export_fails, part_fan_in_at_once, part_validation)

"""t-dependencies: task DAGs (API.md, "Create a batch" and "Propagation").

Shapes (single, multiple, any order, diamond, chain, fan-out, fan-in) give
Waiting vs runnable statuses and the `dependencies` of GET; finishing parents
through PATCH moves children Waiting -> Pending; a failed required parent
fails its child and the failure cascades; a parent that is not required counts
as finished whatever its outcome.

The worker starts every runnable task (the receiver answers 200), so a parent
is PATCHed once it is Running; a freed child may already be Claimed or Running.
"""

from trlib import (STARTABLE, api, check, create_map, dep, expect, finish, get_task, new_kind, run,
                   step, task, wait_status)

FAILED_REQUIRED = "Required parent task {} failed"


def status_of(tid):
    return get_task(tid)["status"]


def check_waiting(tasks, *local_ids):
    for lid in local_ids:
        s = status_of(tasks[lid]["id"])
        check(s == "Waiting", f"{lid}: expected Waiting (unfinished parents), got {s}")


def check_startable(tasks, *local_ids, timeout=10.0):
    """The task has become runnable: Pending, or already taken by the worker."""
    for lid in local_ids:
        wait_status(tasks[lid]["id"], STARTABLE, timeout,
                    f"{lid} to become Pending (or Claimed/Running)")


def check_deps(tasks, lid, expected):
    """expected: [(parent local id, requires_success)]; compared in any order."""
    want = sorted((tasks[p]["id"], r) for p, r in expected)
    for where, deps in (("created", tasks[lid]["dependencies"]),
                        ("GET", get_task(tasks[lid]["id"])["dependencies"])):
        got = sorted((d["id"], d["requires_success"]) for d in deps)
        check(got == want, f"{lid} dependencies ({where}): expected {want}, got {got}")


def step_single_and_order(rx):
    step("single dependency: the parent is runnable, the child Waiting")
    kind = new_kind("t-deps-single")
    t, _ = create_map([task("a", kind=kind), task("b", kind=kind, dependencies=[dep("a")])])
    check(t["a"]["status"] in STARTABLE, f"a: expected runnable, got {t['a']['status']}")
    check(t["b"]["status"] == "Waiting", f"b: expected Waiting, got {t['b']['status']}")
    check_deps(t, "b", [("a", True)])
    check_deps(t, "a", [])

    step("dependencies may name tasks listed after: order does not matter")
    t, _ = create_map([task("c", kind=kind, dependencies=[dep("a"), dep("b", False)]),
                       task("b", kind=kind, dependencies=[dep("a")]),
                       task("a", kind=kind)])
    check([x for x in t] == ["c", "b", "a"], f"answer order: expected c, b, a, got {list(t)}")
    check_waiting(t, "b", "c")
    check_deps(t, "c", [("a", True), ("b", False)])
    check_deps(t, "b", [("a", True)])
    finish(t["a"]["id"])
    check_startable(t, "b")
    check_waiting(t, "c")
    finish(t["b"]["id"])
    check_startable(t, "c")


def step_diamond(rx):
    step("diamond a -> (b, c) -> d: d waits for both branches")
    kind = new_kind("t-deps-diamond")
    t, _ = create_map([task("d", kind=kind, dependencies=[dep("b"), dep("c")]),
                       task("a", kind=kind),
                       task("b", kind=kind, dependencies=[dep("a")]),
                       task("c", kind=kind, dependencies=[dep("a")])])
    check_waiting(t, "b", "c", "d")
    check_deps(t, "d", [("b", True), ("c", True)])
    finish(t["a"]["id"])
    check_startable(t, "b", "c")
    check_waiting(t, "d")
    finish(t["b"]["id"])
    check_waiting(t, "d")
    finish(t["c"]["id"])
    check_startable(t, "d")


def step_chain(rx):
    step("linear chain of 5: each link is freed by the one before")
    kind = new_kind("t-deps-chain")
    names = [f"n{i}" for i in range(5)]
    t, _ = create_map([task(n, kind=kind, dependencies=[dep(names[i - 1])] if i else [])
                       for i, n in enumerate(names)])
    check_waiting(t, *names[1:])
    for i in range(4):
        finish(t[names[i]]["id"])
        check_startable(t, names[i + 1])
        check_waiting(t, *names[i + 2:])
    finish(t[names[4]]["id"])
    for n in names:
        check(status_of(t[n]["id"]) == "Success", f"{n}: expected Success at the end")


def step_fan_out_fan_in(rx):
    step("fan-out: finishing one parent frees its 5 children")
    kind = new_kind("t-deps-fanout")
    kids = [f"k{i}" for i in range(5)]
    t, _ = create_map([task("root", kind=kind)] +
                      [task(k, kind=kind, dependencies=[dep("root")]) for k in kids])
    check_waiting(t, *kids)
    finish(t["root"]["id"])
    check_startable(t, *kids)

    step("fan-in: a child of 5 parents waits for the last one")
    kind = new_kind("t-deps-fanin")
    parents = [f"p{i}" for i in range(5)]
    t, _ = create_map([task("sink", kind=kind, dependencies=[dep(p) for p in parents])] +
                      [task(p, kind=kind) for p in parents])
    check_deps(t, "sink", [(p, True) for p in parents])
    for p in parents[:4]:
        finish(t[p]["id"])
        check_waiting(t, "sink")
    finish(t[parents[4]]["id"])
    check_startable(t, "sink")


def step_mixed_requires_success(rx):
    step("mixed: a failed parent that is not required counts as finished")
    kind = new_kind("t-deps-mixed")
    t, _ = create_map([task("req", kind=kind), task("opt", kind=kind),
                       task("child", kind=kind, dependencies=[dep("req"), dep("opt", False)])])
    check_deps(t, "child", [("req", True), ("opt", False)])
    finish(t["opt"]["id"], "Failure", "optional step broke")
    check_waiting(t, "child")
    finish(t["req"]["id"])
    check_startable(t, "child")

    step("a non-required parent alone: its failure frees the child")
    t, _ = create_map([task("p", kind=kind), task("c", kind=kind, dependencies=[dep("p", False)])])
    finish(t["p"]["id"], "Failure", "broke")
    check_startable(t, "c")

    step("mixed: a failed required parent fails the child even when others succeed")
    t, _ = create_map([task("req", kind=kind), task("opt", kind=kind),
                       task("child", kind=kind, dependencies=[dep("req"), dep("opt", False)])])
    finish(t["opt"]["id"])
    check_waiting(t, "child")
    finish(t["req"]["id"], "Failure", "required step broke")
    c = wait_status(t["child"]["id"], "Failure", 10)
    want = FAILED_REQUIRED.format(t["req"]["id"])
    check(c["failure_reason"] == want,
          f"child failure_reason: expected {want!r}, got {c['failure_reason']!r}")


def step_failure_cascade(rx):
    step("a failed required parent fails the whole chain below it, each naming its parent")
    kind = new_kind("t-deps-cascade")
    names = ["a", "b", "c", "d"]
    tasks = [task(n, kind=kind, dependencies=[dep(names[i - 1])] if i else [])
             for i, n in enumerate(names)]
    tasks.append(task("side", kind=kind, dependencies=[dep("b", False)]))
    t, _ = create_map(tasks)
    finish(t["a"]["id"], "Failure", "boom")
    a = get_task(t["a"]["id"])
    check(a["failure_reason"] == "boom", f"a failure_reason: expected 'boom', got {a['failure_reason']!r}")
    for parent, child in (("a", "b"), ("b", "c"), ("c", "d")):
        c = wait_status(t[child]["id"], "Failure", 10, f"{child} to fail with its parent")
        want = FAILED_REQUIRED.format(t[parent]["id"])
        check(c["failure_reason"] == want,
              f"{child} failure_reason: expected {want!r}, got {c['failure_reason']!r}")
        check(c["ended_at"] is not None, f"{child}: ended_at should be set")
        check(c["started_at"] is None, f"{child} never started: started_at should be null")
    step("a child not requiring the failed (cascaded) parent counts it as finished")
    check_startable(t, "side")


def step_links_to_deduped(rx):
    step("a dependency on a task skipped by dedupe links to the existing task, even an ended one")
    kind = new_kind("t-deps-dedupe")
    t, _ = create_map([task("ok", kind=kind, metadata={"key": "ok"}),
                       task("bad", kind=kind, metadata={"key": "bad"})])
    finish(t["ok"]["id"])
    finish(t["bad"]["id"], "Failure", "broken")
    ok_id, bad_id = t["ok"]["id"], t["bad"]["id"]
    child_kind = new_kind("t-deps-dedupe-child")
    tasks = [task("ok", kind=kind, metadata={"key": "ok"},
                  dedupe_strategy=[{"kind": kind, "status": "Success", "fields": ["key"]}]),
             task("bad", kind=kind, metadata={"key": "bad"},
                  dedupe_strategy=[{"kind": kind, "status": "Failure", "fields": ["key"]}]),
             task("after-ok", kind=child_kind, dependencies=[dep("ok")]),
             task("after-bad", kind=child_kind, dependencies=[dep("bad")]),
             task("after-bad-opt", kind=child_kind, dependencies=[dep("bad", False)]),
             task("after-both", kind=child_kind, dependencies=[dep("ok"), dep("after-ok")])]
    body = expect(api("POST", "/tasks", tasks), 201, "POST /tasks depending on deduped tasks")
    c = {x["local_id"]: x for x in body}
    check(list(c) == ["after-ok", "after-bad", "after-bad-opt", "after-both"],
          f"expected only the four children, got {list(c)}")
    check_deps(dict(c, ok={"id": ok_id}), "after-ok", [("ok", True)])
    check_deps(dict(c, bad={"id": bad_id}), "after-bad-opt", [("bad", False)])
    check_startable(c, "after-ok", "after-bad-opt")
    check_waiting(c, "after-both")
    bad = wait_status(c["after-bad"]["id"], "Failure", 10)
    want = FAILED_REQUIRED.format(bad_id)
    check(bad["failure_reason"] == want,
          f"after-bad failure_reason: expected {want!r}, got {bad['failure_reason']!r}")


if __name__ == "__main__":
    run(step_single_and_order, step_diamond, step_chain, step_fan_out_fan_in,
        step_mixed_requires_success, step_failure_cascade, step_links_to_deduped)

"""t-worker-propagation: outcomes flowing through task DAGs, driven by the
worker (API.md, "Propagation", "Pause and resume").

An executor ends every task when its on_start call arrives (Success, or
Failure for chosen ones). Children start only after all their parents have
ended; a failed required parent fails its child ("Required parent task <uuid>
failed"), fires the child's on_failure and cascades; a parent that is not
required counts as finished whatever its outcome. A paused child keeps
counting its parents and starts once resumed.
"""

from trlib import api, check, create_map, dep, get_task, new_kind, step, task, wait_status, webhook
from workerlib import Executor, Hooks, parse_ts, run, wait_outbox_settled

FAILED = "Required parent task {} failed"


class Dag:
    """One batch run by the executor: tasks started at hooks' /start, each
    ending with the outcome given for its local id (default Success)."""

    def __init__(self, hooks, ex, kind, spec, fail=(), held=()):
        self.hooks, self.ex = hooks, ex
        tasks = []
        for lid, deps in spec:
            # The executor's plan for the task travels in its metadata: known
            # before its on_start can arrive (a plan set after the POST
            # answered could come after the executor read it).
            plan = "Failure" if lid in fail else "hold" if lid in held else "Success"
            tasks.append(task(lid, kind=kind, on_start=webhook(hooks.url("/start")),
                              on_failure=[webhook(hooks.url("/failure"))],
                              on_success=[webhook(hooks.url("/success"))],
                              dependencies=deps, metadata={"plan": plan}))
        self.t, _ = create_map(tasks)
        self.id = {lid: x["id"] for lid, x in self.t.items()}
        self.lid = {x["id"]: lid for lid, x in self.t.items()}

    def wait_final(self, lid, status, timeout=15.0):
        return wait_status(self.id[lid], status, timeout)

    def started_after_parents(self, child, parents):
        """child's first on_start came after the executor ended every parent
        (sent its PATCH), and the stored times agree: the child started
        (started_at) after every parent's ended_at."""
        self.ex.wait_started(self.id[child])
        at = self.ex.first_start[self.id[child]]
        started = get_task(self.id[child])["started_at"]
        for p in parents:
            pid = self.id[p]
            check(pid in self.ex.ended,
                  f"{child} started while its parent {p} had not ended "
                  f"(parent status {get_task(pid)['status']})")
            check(self.ex.ended[pid][1] <= at,
                  f"{child}'s on_start came {self.ex.ended[pid][1] - at:.3f}s before its parent "
                  f"{p} was ended")
            ended = get_task(pid)["ended_at"]
            check(started and ended and parse_ts(ended) <= parse_ts(started),
                  f"{child} started_at {started} is not after its parent {p}'s ended_at {ended}")

    def never_started(self, lid):
        check(self.id[lid] not in self.ex.start_calls,
              f"{lid} should never have been started, its on_start was called")

    def end_calls(self, lid, path):
        return self.hooks.received(path, self.id[lid])


def make_executor(hooks):
    """An executor that ends each task as its metadata's "plan" says:
    Success, Failure, or hold (None: the test ends it itself)."""
    ex = Executor(hooks, "/start", delay=0.02)

    def outcome(tid):
        plan = (get_task(tid).get("metadata") or {}).get("plan", "Success")
        return None if plan == "hold" else plan
    ex.outcome = outcome
    return ex


def step_chain(hooks, ex, kind):
    step("chain a -> b -> c -> d: each starts only after the one before ended")
    d = Dag(hooks, ex, kind, [("d", [dep("c")]), ("c", [dep("b")]), ("b", [dep("a")]),
                              ("a", [])])
    for lid in "abcd":
        d.wait_final(lid, "Success")
    for parent, child in (("a", "b"), ("b", "c"), ("c", "d")):
        d.started_after_parents(child, [parent])
    order = [d.lid[x] for x in ex.started() if x in d.lid]
    check(order == list("abcd"), f"chain start order {order}, expected a, b, c, d")
    for lid in "abcd":
        check(len(d.end_calls(lid, "/success")) == 1, f"{lid}: on_success should fire once")


def step_diamond(hooks, ex, kind):
    step("diamond a -> (b, c) -> d: d starts after both branches ended")
    d = Dag(hooks, ex, kind, [("a", []), ("b", [dep("a")]), ("c", [dep("a")]),
                              ("d", [dep("b"), dep("c")])])
    for lid in "abcd":
        d.wait_final(lid, "Success")
    d.started_after_parents("b", ["a"])
    d.started_after_parents("c", ["a"])
    d.started_after_parents("d", ["b", "c"])


def step_fan_in(hooks, ex, kind):
    step("fan-in: failed parents that are not required count as finished")
    d = Dag(hooks, ex, kind,
            [("p1", []), ("p2", []), ("p3", []), ("p4", []),
             ("child", [dep("p1", True), dep("p2", False), dep("p3", False), dep("p4", True)])],
            fail=("p2", "p3"))
    d.wait_final("p2", "Failure")
    d.wait_final("p3", "Failure")
    d.wait_final("child", "Success")
    d.started_after_parents("child", ["p1", "p2", "p3", "p4"])
    for lid in ("p2", "p3"):
        calls = d.end_calls(lid, "/failure")
        check(len(calls) == 1 and calls[0].headers.get("x-task-status") == "Failure",
              f"{lid}: its on_failure should fire once with X-Task-Status Failure: {calls}")


def step_fan_out(hooks, ex, kind):
    step("fan-out with mixed requires_success: a failed root fails the required children, "
         "cascading; the others start")
    d = Dag(hooks, ex, kind,
            [("root", []),
             ("req1", [dep("root", True)]), ("opt", [dep("root", False)]),
             ("req2", [dep("root", True)]),
             ("grand", [dep("req1", True)]), ("grand-opt", [dep("req1", False)]),
             ("great", [dep("grand", True)]), ("after-opt", [dep("opt", True)])],
            fail=("root",))
    root = d.wait_final("root", "Failure")
    check(root["failure_reason"] == "executor says it failed",
          f"root failure_reason {root['failure_reason']!r}")
    for child, parent in (("req1", "root"), ("req2", "root"), ("grand", "req1"),
                          ("great", "grand")):
        t = d.wait_final(child, "Failure")
        want = FAILED.format(d.id[parent])
        check(t["failure_reason"] == want,
              f"{child}: failure_reason {t['failure_reason']!r}, expected {want!r}")
        check(t["started_at"] is None, f"{child} never started, started_at {t['started_at']}")
        d.never_started(child)
    for lid in ("opt", "after-opt", "grand-opt"):
        d.wait_final(lid, "Success")
    d.started_after_parents("opt", ["root"])
    d.started_after_parents("after-opt", ["opt"])

    step("fan-out: each failed task's on_failure fires once, none of their on_success")
    for lid in ("root", "req1", "req2", "grand", "great"):
        wait_outbox_settled(d.id[lid])
        calls = hooks.wait_calls("/failure", 1, d.id[lid], timeout=10,
                                 what=f"the on_failure call of {lid}")
        check(len(calls) == 1, f"{lid}: on_failure fired {len(calls)} times")
        h = calls[0].headers
        check(h.get("x-task-trigger") == "end" and h.get("x-task-status") == "Failure",
              f"{lid}: on_failure headers trigger {h.get('x-task-trigger')!r}, "
              f"status {h.get('x-task-status')!r}")
        check(not d.end_calls(lid, "/success"), f"{lid}: on_success should not fire")
    for lid in ("opt", "after-opt", "grand-opt"):
        wait_outbox_settled(d.id[lid])
        check(len(d.end_calls(lid, "/success")) == 1, f"{lid}: on_success should fire once")
        check(not d.end_calls(lid, "/failure"), f"{lid}: on_failure should not fire")


def step_paused_child(hooks, ex, kind):
    step("a paused child keeps counting its parents, and starts once resumed")
    # p1 and p2 are held: the test ends them itself, after the pause.
    d = Dag(hooks, ex, kind, [("p1", []), ("p2", []), ("child", [dep("p1"), dep("p2", False)])],
            held=("p1", "p2"))
    c = d.id["child"]
    check(get_task(c)["status"] == "Waiting", "child should be Waiting before the pause")
    resp = api("POST", f"/tasks/{c}/pause")
    check(resp[0] == 200 and resp[2]["status"] == "Paused",
          f"pause of the Waiting child: HTTP {resp[0]} {resp[3][:300]!r}")
    for lid in ("p1", "p2"):
        ex.wait_started(d.id[lid])
        wait_status(d.id[lid], "Running", 10)
    ex.end(d.id["p1"], "Success")
    ex.end(d.id["p2"], "Failure")
    for lid, st in (("p1", "Success"), ("p2", "Failure")):
        d.wait_final(lid, st)

    step("paused child: still Paused after its parents ended, never started")
    wait_outbox_settled(d.id["p2"])
    t = get_task(c)
    check(t["status"] == "Paused", f"child should stay Paused, got {t['status']}")
    d.never_started("child")

    step("paused child: resume -> Pending (its parents are done), then the worker starts it")
    resp = api("POST", f"/tasks/{c}/resume")
    check(resp[0] == 200, f"resume: HTTP {resp[0]} {resp[3][:300]!r}")
    check(resp[2]["status"] in ("Pending", "Claimed", "Running"),
          f"resume should give Pending (parents done), got {resp[2]['status']}")
    d.wait_final("child", "Success")
    d.started_after_parents("child", ["p1", "p2"])

    step("a paused child whose parents are not done goes back to Waiting on resume")
    d = Dag(hooks, ex, kind, [("p", []), ("child", [dep("p")])], held=("p",))
    c = d.id["child"]
    resp = api("POST", f"/tasks/{c}/pause")
    check(resp[0] == 200, f"pause: HTTP {resp[0]}")
    resp = api("POST", f"/tasks/{c}/resume")
    check(resp[0] == 200 and resp[2]["status"] == "Waiting",
          f"resume with an unfinished parent: expected Waiting, got HTTP {resp[0]} "
          f"{resp[3][:300]!r}")
    ex.wait_started(d.id["p"])
    wait_status(d.id["p"], "Running", 10)
    ex.end(d.id["p"], "Success")
    d.wait_final("child", "Success")
    d.started_after_parents("child", ["p"])


def with_executor(fn):
    """A part of the test: fn(hooks, ex, kind) with its own receiver and executor."""
    def part(rx):
        with Hooks() as hooks, make_executor(hooks) as ex:
            fn(hooks, ex, new_kind("t-worker-prop"))
            ex.check_clean()
            check(not ex.late_starts, f"on_start calls after the task ended: {ex.late_starts}")
    part.__name__ = fn.__name__.replace("step_", "part_")
    return part


if __name__ == "__main__":
    run(*[with_executor(f) for f in (step_chain, step_diamond, step_fan_in, step_fan_out,
                                     step_paused_child)])

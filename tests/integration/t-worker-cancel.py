"""t-worker-cancel: cancel webhooks (API.md, "Cancel", "Webhooks sent by the
worker").

Canceling a task that had started (Claimed or Running) fires its declared
on_cancel actions and the one its on_start answer registered (a 2xx answer
whose body is an action object, even one arriving after the cancel), each
with X-Task-Trigger: cancel and X-Task-Status: Canceled; a child requiring
it fails ("was canceled"). An answer that is not a valid action registers
nothing. A start call that fails after its task was canceled is not retried.
A task canceled before it started (Pending, Waiting) fires no cancel webhook.
"""

from trlib import (api, check, create_map, dep, expect, get_task, held, new_kind, start_holder,
                   step, task, wait_for, wait_status, webhook)
from workerlib import Hooks, action_ids, deliveries, idem_key, run, wait_outbox_settled


def registered(hooks, path):
    """The action an on_start answer registers as a cancel action."""
    return {"kind": "Webhook", "params": {"url": hooks.url(path), "verb": "Post"}}


def cancel_task(hooks, lid, kind, start_path):
    return task(lid, kind=kind, on_start=webhook(hooks.url(start_path)),
                on_cancel=[webhook(hooks.url("/declared-cancel"), verb="Put",
                                   headers={"X-Why": "stop"})],
                on_success=[webhook(hooks.url("/success"))],
                on_failure=[webhook(hooks.url("/failure"))])


def check_cancel_calls(hooks, tid, what):
    """The declared and the registered cancel actions fired once each, with
    the cancel headers and keys; no end webhook fired."""
    for path in ("/declared-cancel", "/registered-cancel"):
        hooks.wait_calls(path, 1, tid, timeout=10, what=f"{path} for {what}")
    full = get_task(tid)
    cancel_ids = action_ids(full, "Cancel")
    urls = [a["params"]["url"] for a in full["actions"] if a["trigger"] == "Cancel"]
    check(len(cancel_ids) == 2 and urls[1] == hooks.url("/registered-cancel"),
          f"{what}: GET should list the declared and the registered cancel action, got "
          f"{[a for a in full['actions'] if a['trigger'] == 'Cancel']}")
    for path, action_id, method in (("/declared-cancel", cancel_ids[0], "PUT"),
                                    ("/registered-cancel", cancel_ids[1], "POST")):
        calls = hooks.wait_calls(path, 1, tid, timeout=10, what=f"{path} for {what}")
        c = calls[0]
        h = c.headers
        check(c.method == method, f"{what}: {path} method {c.method}, expected {method}")
        check(h.get("x-task-trigger") == "cancel",
              f"{what}: {path} X-Task-Trigger {h.get('x-task-trigger')!r}, expected 'cancel'")
        check(h.get("x-task-status") == "Canceled",
              f"{what}: {path} X-Task-Status {h.get('x-task-status')!r}, expected 'Canceled'")
        check(h.get("x-task-id") == tid and h.get("x-batch-id") == full["batch_id"],
              f"{what}: {path} X-Task-Id/X-Batch-Id {h.get('x-task-id')}/{h.get('x-batch-id')}")
        want = idem_key(tid, "cancel", action_id)
        check(h.get("idempotency-key") == want,
              f"{what}: {path} Idempotency-Key {h.get('idempotency-key')!r}, expected {want}")
        if path == "/declared-cancel":
            check(h.get("x-why") == "stop", f"{what}: declared on_cancel lost its header")
    wait_outbox_settled(tid)
    for path in ("/declared-cancel", "/registered-cancel"):
        n = len(hooks.received(path, tid))
        check(n == 1, f"{what}: {path} should be called once, got {n}")
    for path in ("/success", "/failure"):
        check(not hooks.received(path, tid), f"{what}: {path} should not be called")


def part_cancel_running(rx):
    step("a Running task whose on_start answer registered a cancel action")
    with Hooks() as hooks:
        hooks.fixed("/start-reg", 200, registered(hooks, "/registered-cancel"))
        kind = new_kind("t-worker-cancel")
        t, _ = create_map([cancel_task(hooks, "running", kind, "/start-reg"),
                           task("child", kind=kind, on_start=webhook(hooks.url("/start")),
                                dependencies=[dep("running")],
                                on_failure=[webhook(hooks.url("/child-failure"))],
                                on_cancel=[webhook(hooks.url("/child-cancel"))])])
        tid = t["running"]["id"]
        wait_status(tid, "Running", 10)

        step("DELETE the Running task: Canceled")
        body = expect(api("DELETE", f"/tasks/{tid}"), 200, "DELETE of the Running task")
        check(body["status"] == "Canceled", f"DELETE answered status {body['status']}")

        step("its declared on_cancel and the registered cancel action both fire")
        check_cancel_calls(hooks, tid, "the Running task")

        step("the child requiring it fails ('was canceled'); its on_failure fires, not its "
             "on_cancel")
        cid = t["child"]["id"]
        child = wait_status(cid, "Failure", 10)
        want = f"Required parent task {tid} was canceled"
        check(child["failure_reason"] == want,
              f"child failure_reason {child['failure_reason']!r}, expected {want!r}")
        calls = hooks.wait_calls("/child-failure", 1, cid, timeout=10)
        check(calls[0].headers.get("x-task-status") == "Failure",
              f"child on_failure X-Task-Status {calls[0].headers.get('x-task-status')!r}")
        wait_outbox_settled(cid)
        check(not hooks.received("/child-cancel", cid),
              "the child never started: its on_cancel should not fire")


def part_start_answer_not_an_action(rx):
    step("on_start answers that are not a valid action register nothing")
    kind = new_kind("t-worker-cancel")
    answers = {"/start-json": {"status": "accepted"},
               "/start-bad-url": {"kind": "Webhook", "params": {"url": "not a url"}},
               "/start-text": "OK"}
    with Hooks() as hooks:
        for path, body in answers.items():
            hooks.fixed(path, 200, body)
        t, _ = create_map([cancel_task(hooks, path.strip("/"), kind, path) for path in answers])
        for lid, x in t.items():
            wait_status(x["id"], "Running", 10)
            full = get_task(x["id"])
            cancels = [a for a in full["actions"] if a["trigger"] == "Cancel"]
            check(len(cancels) == 1, f"{lid}: only the declared cancel action expected, got "
                  f"{cancels}")
            expect(api("DELETE", f"/tasks/{x['id']}"), 200, f"DELETE {lid}")
            hooks.wait_calls("/declared-cancel", 1, x["id"], timeout=10)
            wait_outbox_settled(x["id"])
            check(len(hooks.received(None, x["id"])) == 2,
                  f"{lid}: on_start and the declared on_cancel only, got "
                  f"{hooks.received(None, x['id'])}")


def part_cancel_claimed(rx):
    step("a Claimed task (its on_start is still in flight) is canceled")
    with Hooks() as hooks:
        hooks.fixed("/start-slow", 200, registered(hooks, "/registered-cancel"), delay=1.5)
        t, _ = create_map([cancel_task(hooks, "claimed", new_kind("t-worker-cancel"),
                                       "/start-slow")])
        tid = t["claimed"]["id"]
        hooks.wait_calls("/start-slow", 1, tid, timeout=10)
        s = get_task(tid)["status"]
        check(s == "Claimed", f"while on_start is in flight the task should be Claimed, got {s}")
        body = expect(api("DELETE", f"/tasks/{tid}"), 200, "DELETE of the Claimed task")
        check(body["status"] == "Canceled", f"DELETE answered status {body['status']}")

        step("the late 2xx answer does not revive it; both cancel actions fire")
        check_cancel_calls(hooks, tid, "the Claimed task")
        check(get_task(tid)["status"] == "Canceled", "the task should stay Canceled")


def part_cancel_during_failing_start(rx):
    step("a Claimed task whose on_start is answered 500 after the cancel")
    with Hooks() as hooks:
        hooks.fixed("/start-500", 500, b"", delay=1.0)
        t, _ = create_map([cancel_task(hooks, "failing", new_kind("t-worker-cancel"),
                                       "/start-500")])
        tid = t["failing"]["id"]
        hooks.wait_calls("/start-500", 1, tid, timeout=10)
        body = expect(api("DELETE", f"/tasks/{tid}"), 200, "DELETE of the Claimed task")
        check(body["status"] == "Canceled", f"DELETE answered status {body['status']}")

        step("the declared on_cancel fires")
        calls = hooks.wait_calls("/declared-cancel", 1, tid, timeout=10)
        check(calls[0].headers.get("x-task-status") == "Canceled",
              f"on_cancel X-Task-Status {calls[0].headers.get('x-task-status')!r}")

        step("the failed on_start of the canceled task is not queued for a retry")

        def start_row():
            rows = [r for r in deliveries(tid) if r["trigger"] == "Start"]
            return rows if rows and rows[0]["state"] != "inflight" else None
        rows = wait_for(start_row, 10, "the on_start attempt to end")
        check(rows[0]["state"] != "queued",
              f"the start call of a Canceled task was queued again after its 500 "
              f"(a retry would call on_start of a canceled task): {rows}")
        check(len(hooks.received("/start-500", tid)) == 1, "on_start called again")
        check(get_task(tid)["status"] == "Canceled", "the task should stay Canceled")


def part_cancel_not_started(rx):
    step("Pending (held by a rule) and Waiting tasks: canceled, no cancel webhook")
    kind = new_kind("t-worker-cancel-held")
    with Hooks() as hooks:
        start_holder(kind)
        t, _ = create_map([
            held("pending", kind, on_start=webhook(hooks.url("/start")),
                 on_cancel=[webhook(hooks.url("/declared-cancel"))]),
            task("waiting", kind=kind, on_start=webhook(hooks.url("/start")),
                 dependencies=[dep("pending")],
                 on_cancel=[webhook(hooks.url("/declared-cancel"))])])
        # The Waiting one first: canceling its parent would fail it.
        for lid, status in (("waiting", "Waiting"), ("pending", "Pending")):
            tid = t[lid]["id"]
            s = get_task(tid)["status"]
            check(s == status, f"{lid}: expected {status} before the cancel, got {s}")
            body = expect(api("DELETE", f"/tasks/{tid}"), 200, f"DELETE of the {status} task")
            check(body["status"] == "Canceled", f"{lid}: DELETE answered {body['status']}")
        for lid in ("pending", "waiting"):
            tid = t[lid]["id"]
            rows = wait_outbox_settled(tid)
            check(not [r for r in rows if r["trigger"] == "Cancel"],
                  f"{lid}: no cancel call should be queued, got {rows}")
            check(not deliveries(tid), f"{lid}: never started, no calls at all: {rows}")
            check(not hooks.received(None, tid), f"{lid}: the receiver got calls: "
                  f"{hooks.received(None, tid)}")


if __name__ == "__main__":
    run(part_cancel_running, part_start_answer_not_an_action, part_cancel_claimed,
        part_cancel_during_failing_start, part_cancel_not_started)

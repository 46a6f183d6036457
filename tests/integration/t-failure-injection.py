"""t-failure-injection: a database error in the middle of a batch leaves nothing
behind (API.md: "one transaction creates all of it or nothing").

A trigger installed for the test raises on the insert of a task named 'boom';
a 100-task batch whose 50th task is 'boom' must fail as a whole with a JSON
5xx error, leaving no task, action, link, delivery, batch or idempotency key,
and the service must go on serving. The trigger is always dropped.
"""

import uuid

from trlib import (api, check, check_error, create, dep, expect, new_kind, q, run, short, sql,
                   sql_count, step, task)

INSTALL = """
CREATE OR REPLACE FUNCTION test_boom() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.name = 'boom' THEN RAISE EXCEPTION 'injected'; END IF;
    RETURN NEW;
END$$;
DROP TRIGGER IF EXISTS test_boom ON tasks;
CREATE TRIGGER test_boom BEFORE INSERT ON tasks FOR EACH ROW EXECUTE FUNCTION test_boom();
"""
REMOVE = "DROP TRIGGER IF EXISTS test_boom ON tasks; DROP FUNCTION IF EXISTS test_boom();"


def batch_of_100(rx, kind):
    """100 tasks in a chain-and-fan shape (so links and actions would be
    written too); the 50th is named 'boom'."""
    tasks = []
    for i in range(100):
        deps = [dep(f"t{i - 1}")] if i % 10 else []
        if i >= 10 and i % 10 == 0:
            deps = [dep(f"t{i - 10}", False)]
        tasks.append(task(f"t{i}", kind=kind, name="boom" if i == 49 else f"{kind} {i}",
                          metadata={"i": i},
                          on_start={"kind": "Webhook",
                                    "params": {"url": rx.url(f"/start/{kind}")}},
                          on_success=[{"kind": "Webhook", "params": {"url": rx.url(f"/ok/{kind}")}}],
                          dependencies=deps))
    return tasks


def counts(kind, key):
    """What the failed batch could have left behind."""
    like = q(f"%{kind}%")
    return {
        "tasks": sql_count(f"SELECT count(*) FROM tasks WHERE kind = {q(kind)} OR name = 'boom'"),
        "actions": sql_count("SELECT count(*) FROM actions a "
                             f"WHERE tr_action_own_params(a)->>'url' LIKE {like}"),
        "links": sql_count("SELECT count(*) FROM task_links l JOIN tasks t ON t.id = l.child_id "
                           f"WHERE t.kind = {q(kind)}"),
        "deliveries": sql_count("SELECT count(*) FROM deliveries d JOIN actions a "
                                f"ON a.id = d.action_id WHERE tr_action_own_params(a)->>'url' LIKE {like}"),
        "idempotency keys": sql_count(f"SELECT count(*) FROM idempotency_keys WHERE key = {q(key)}"),
        "batches": sql_count("SELECT count(*) FROM batches"),
    }


def main(rx):
    kind = new_kind("t-inject")
    key = f"inject-{uuid.uuid4()}"
    step("set-up: the trigger that fails the insert of a task named 'boom'")
    sql(INSTALL)
    try:
        before = counts(kind, key)
        step("a 100-task batch whose 50th task is 'boom' fails with a JSON 5xx")
        tasks = batch_of_100(rx, kind)
        resp = api("POST", "/tasks", tasks, headers={"Idempotency-Key": key})
        code = resp[0]
        check(500 <= code <= 599, f"POST /tasks with an injected database error: expected 5xx, "
              f"got {code}: {short(resp[3])}")
        check_error(resp, code, "POST /tasks with an injected database error")
        check(resp[1].get("x-request-id"), "the 5xx answer has no X-Request-Id")

        step("nothing of the batch was written")
        after = counts(kind, key)
        for what, n in after.items():
            check(n == before[what], f"{what}: {before[what]} before the failed batch, {n} after")
        print(f"   ok: {after}")

        step("the service still serves: /health, and a batch without 'boom'")
        expect(api("GET", "/health"), 200, "GET /health after the failure")
        ok_kind = new_kind("t-inject-ok")
        body, _ = create([task("fine", kind=ok_kind), task("fine2", kind=ok_kind)])
        check(len(body) == 2, "a normal batch after the failure")
    finally:
        step("remove the trigger")
        sql(REMOVE)

    step("the same batch and Idempotency-Key now succeed (the failed try kept no key)")
    tasks[49]["name"] = f"{kind} 49"
    resp = api("POST", "/tasks", tasks, headers={"Idempotency-Key": key})
    body = expect(resp, 201, "POST /tasks retried without the trigger")
    check(len(body) == 100, f"expected 100 tasks, got {len(body)}")
    check(sql_count(f"SELECT count(*) FROM tasks WHERE kind = {q(kind)}") == 100,
          "the retried batch should have stored its 100 tasks")
    check(sql_count("SELECT count(*) FROM task_links l JOIN tasks t ON t.id = l.child_id "
                    f"WHERE t.kind = {q(kind)}") == 99,
          "the retried batch should have stored its 99 links")


if __name__ == "__main__":
    run(main)

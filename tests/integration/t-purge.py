"""t-purge: the purge of soft-deleted tasks and of batches past the retention
(API.md Part 2, "Soft delete and retention (#20)"), done by a worker.

A worker of its own runs with short settings (TASKRUNNER_PURGE_DELETED_AFTER
one day, TASKRUNNER_RETENTION nine days, chunks of one task, paced 10 ms);
the tasks to purge are made old by moving their times back in the database,
so nothing of the other tests is old enough to go. Checked: a soft-deleted
batch and a batch past the retention go with every row of theirs (history,
deliveries, links, actions, idempotency key, batch), the shared action params
only when no other task uses them, never a task that a task that has not
ended depends on (it goes once that one ended); taskrunner_tasks_purged_total
counts them and the worker logs the counts.
"""

import re
import uuid

from trlib import (api, check, create_map, expect, finish, get_task, new_kind, q, sql, sql_count,
                   step, task, wait_for, wait_status, webhook)
from workerlib import ExtraWorker, run

SETTINGS = {"TASKRUNNER_PURGE_DELETED_AFTER": "86400", "TASKRUNNER_RETENTION": "777600",
            "TASKRUNNER_PURGE_CHUNK": "1", "TASKRUNNER_PURGE_PAUSE_MS": "10",
            "TASKRUNNER_PURGE_INTERVAL_MS": "100"}


def purged_total():
    _, _, _, raw = api("GET", "/metrics")
    m = re.search(rb"^taskrunner_tasks_purged_total (\d+)", raw, re.M)
    return int(m.group(1)) if m else 0


def rows_of(ids):
    """What is left of the tasks ids, table by table."""
    lst = ", ".join(q(i) for i in ids)
    return {
        "tasks": sql_count(f"SELECT count(*) FROM tasks WHERE id IN ({lst})"),
        "task_events": sql_count(f"SELECT count(*) FROM task_events WHERE task_id IN ({lst})"),
        "deliveries": sql_count(f"SELECT count(*) FROM deliveries WHERE task_id IN ({lst})"),
        "actions": sql_count(f"SELECT count(*) FROM actions WHERE task_id IN ({lst})"),
        "task_links": sql_count(f"SELECT count(*) FROM task_links WHERE parent_id IN ({lst}) "
                                f"OR child_id IN ({lst})"),
    }


def part_purge(rx):
    step("a soft-deleted batch, a batch past the retention, a parent a running task needs")
    kind = new_kind("t-purge")
    shared = webhook(rx.url(f"/{kind}/shared-done"))
    only = webhook(rx.url(f"/{kind}/only-done"))
    d, dbid = create_map([task("d1", kind=kind, on_success=[shared, only]),
                          task("d2", kind=kind, dependencies=[{"id": "d1"}])])
    key = f"purge-{uuid.uuid4()}"
    r, rbid = create_map([task("r1", kind=kind, on_success=[only])],
                         headers={"Idempotency-Key": key})
    p, pbid = create_map([task("p", kind=kind)])
    c, cbid = create_map([task("c", kind=kind, timeout=86400, on_success=[shared])])
    for t in (d["d1"], d["d2"], r["r1"], p["p"]):
        finish(t["id"])
    wait_status(c["c"]["id"], "Running")
    # A task of another batch that depends on p (as a dedupe strategy links them).
    sql(f"INSERT INTO task_links (parent_id, child_id) VALUES ({q(p['p']['id'])}, "
        f"{q(c['c']['id'])})")
    expect(api("POST", f"/batches/{dbid}/delete"), 200, "delete batch d")
    expect(api("POST", f"/batches/{pbid}/delete"), 200, "delete batch p")
    gone = [d["d1"]["id"], d["d2"]["id"], r["r1"]["id"]]
    wait_for(lambda: rows_of(gone)["deliveries"] >= 3 and sql_count(
        "SELECT count(*) FROM deliveries WHERE state NOT IN ('done') AND task_id IN ("
        + ", ".join(q(i) for i in gone) + ")") == 0, 15, "their calls made")
    before = rows_of(gone)
    check(all(n > 0 for k, n in before.items() if k != "task_links") and before["task_links"] == 1,
          f"rows to purge: {before}")
    check(sql_count(f"SELECT count(*) FROM idempotency_keys WHERE key = {q(key)}") == 1,
          "the idempotency key is stored")
    # Old enough: deleted two days ago; batch r created, and ended, ten days ago.
    sql(f"UPDATE tasks SET deleted_at = now() - interval '2 days' "
        f"WHERE batch_id IN ({q(dbid)}, {q(pbid)})")
    sql(f"UPDATE tasks SET ended_at = now() - interval '10 days' WHERE batch_id = {q(rbid)}")
    sql(f"UPDATE batches SET created_at = now() - interval '10 days' WHERE id = {q(rbid)}")
    total_before = purged_total()

    step("a worker with short purge settings: they go, with every row of theirs")
    with ExtraWorker("t-purge-worker", SETTINGS) as w:
        wait_for(lambda: rows_of(gone)["tasks"] == 0, 20, "the tasks purged")
        left = rows_of(gone)
        check(all(n == 0 for n in left.values()), f"nothing of them is left: {left}")
        check(sql_count(f"SELECT count(*) FROM batches WHERE id IN ({q(dbid)}, {q(rbid)})") == 0,
              "their batches are gone")
        check(sql_count(f"SELECT count(*) FROM idempotency_keys WHERE key = {q(key)}") == 0,
              "the idempotency key is gone")
        check(api("GET", f"/tasks/{gone[0]}")[0] == 404, "GET /tasks/{id} of a purged task: 404")
        check(sql_count("SELECT count(*) FROM action_params "
                        f"WHERE params->>'url' = {q(only['params']['url'])}") == 0,
              "params no other task uses are gone")
        check(sql_count("SELECT count(*) FROM action_params "
                        f"WHERE params->>'url' = {q(shared['params']['url'])}") == 1,
              "params another task still uses stay")
        check(get_task(p["p"]["id"])["deleted_at"] is not None,
              "p stays while a task that has not ended depends on it")

        step("once that task ended, p goes too; counted and logged")
        finish(c["c"]["id"])
        wait_for(lambda: rows_of([p["p"]["id"]])["tasks"] == 0, 20, "p purged")
        check(sql_count(f"SELECT count(*) FROM batches WHERE id = {q(pbid)}") == 0,
              "p's batch is gone")
        check(get_task(c["c"]["id"])["dependencies"] == [], "c's link to p went with p")
        check(sql_count("SELECT count(*) FROM action_params "
                        f"WHERE params->>'url' = {q(shared['params']['url'])}") == 1,
              "c's params stay")
        wait_for(lambda: purged_total() >= total_before + 4, 10,
                 "taskrunner_tasks_purged_total to count the 4 tasks")
        wait_for(lambda: "purged 1 tasks" in w.log(), 10, "the purge's log line")


if __name__ == "__main__":
    run(part_purge)

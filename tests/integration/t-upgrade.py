"""t-upgrade: a database made by the first SQL layout (numbered migrations
holding the functions, commit FIRST_LAYOUT) upgrades in place to the current
one (sql/migrations + sql/functions) with nothing lost.

In a database of its own on the stack's PostgreSQL: the first layout's
scripts/migrate and sql/ (taken from git history) make the schema; tasks are
created through its functions (a chain, one task ended); the current
scripts/migrate upgrades it. Then: every task reads back as it was (status,
dependencies, actions, history), the schema is exactly that of a database
made fresh by the current layout (pg_dump -s of both), and the tasks run: a
real worker started on the upgraded database calls the waiting task's
on_start, and its end propagates to its child.
"""

import json
import os
import shutil
import subprocess
import tempfile

from trlib import check, env, q, run, step, wait_for
from workerlib import ExtraWorker

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The last commit whose sql/ had the first layout (0001..0007 with functions).
FIRST_LAYOUT = "0c1452a"

BATCH = "7a5b0000-0000-4000-8000-000000000001"
A, B, C = ("7a5b0000-0000-4000-8000-00000000000a", "7a5b0000-0000-4000-8000-00000000000b",
           "7a5b0000-0000-4000-8000-00000000000c")


def psql_for(db, superuser=False):
    """TR_PSQL (or TR_PSQL_SUPER) pointed at database db."""
    cmd = env("TR_PSQL_SUPER" if superuser else "TR_PSQL")
    check(" -d taskrunner " in cmd, f"unexpected psql prefix {cmd!r}")
    return cmd.replace(" -d taskrunner ", f" -d {db} ")


def sql_in(db, query):
    cmd = psql_for(db).split() + ["-At", "-F", "|", "-c", query]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    check(proc.returncode == 0, f"psql on {db} failed for {query!r}: {proc.stderr.strip()}")
    return [line.split("|") for line in proc.stdout.splitlines() if line != ""]


def migrate(db, script, sql_dir):
    environ = dict(os.environ, TR_PSQL=psql_for(db), TR_SQL_DIR=sql_dir)
    proc = subprocess.run([script], capture_output=True, text=True, timeout=300, env=environ)
    check(proc.returncode == 0, f"{script} on {db} failed: {proc.stdout}{proc.stderr}")
    return proc.stdout + proc.stderr


def schema(db):
    """The schema of db as pg_dump prints it, without what differs by run."""
    dump = os.path.join(env("TR_PGBIN"), "pg_dump")
    cmd = psql_for(db, superuser=True).split()
    i = cmd.index(next(c for c in cmd if c.endswith("/psql")))
    host = cmd[cmd.index("-h") + 1]
    port = cmd[cmd.index("-p") + 1]
    proc = subprocess.run(cmd[:i] + [dump, "-s", "-h", host, "-p", port, "-U", "postgres", db],
                          capture_output=True, text=True, timeout=120)
    check(proc.returncode == 0, f"pg_dump {db} failed: {proc.stderr}")
    return [line for line in proc.stdout.splitlines()
            if line and not line.startswith("--") and not line.startswith("\\")
            and "restrict" not in line]


def document(rx):
    def action(n, trigger, condition=None):
        a = {"id": f"7a5b0000-0000-4000-8001-{n:012d}", "kind": "Webhook", "trigger": trigger,
             "params": {"url": rx.url(f"/upgrade/{n}"), "verb": "Post"}}
        if condition:
            a["condition"] = condition
        return a

    def one(tid, local, deps, actions):
        return {"id": tid, "local_id": local, "name": f"upgrade {local}", "kind": "upgrade",
                "priority": 0, "timeout": 60, "metadata": {"local": local},
                "deps": [{"id": d, "requires_success": True} for d in deps],
                "actions": actions}

    return [one(A, "a", [], [action(1, "Start"), action(2, "End", "Success")]),
            one(B, "b", [A], [action(3, "Start"), action(4, "End", "Success")]),
            one(C, "c", [B], [action(5, "Start")])]


def part_upgrade_in_place(rx):
    if subprocess.run(["git", "-C", REPO, "cat-file", "-e", f"{FIRST_LAYOUT}^{{commit}}"],
                      capture_output=True).returncode != 0:
        check(False, f"commit {FIRST_LAYOUT} (the first SQL layout) is not in this clone's "
                     "history: the upgrade cannot be tested without it")
    db = f"tr_upgrade_{os.getpid()}"
    old = tempfile.mkdtemp(prefix="tr-first-layout-")
    super_sql = psql_for("taskrunner", superuser=True).split()
    try:
        step("the first layout's migrate script and sql/, from git history")
        archive = subprocess.run(["git", "-C", REPO, "archive", FIRST_LAYOUT, "sql",
                                  "scripts/migrate", "scripts/lib.sh"],
                                 capture_output=True, timeout=60)
        check(archive.returncode == 0, f"git archive failed: {archive.stderr!r}")
        subprocess.run(["tar", "-x", "-C", old], input=archive.stdout, check=True)
        check(os.path.exists(os.path.join(old, "sql", "0002_task_functions.sql")),
              "the archived sql/ is not the first layout")

        step(f"database {db} made by the first layout, with a chain a -> b -> c")
        subprocess.run(super_sql + ["-c", f"CREATE DATABASE {db} OWNER taskrunner"],
                       check=True, capture_output=True, timeout=60)
        migrate(db, os.path.join(old, "scripts", "migrate"), os.path.join(old, "sql"))
        rows = sql_in(db, "SELECT code FROM tr_create_batch("
                          f"{q(BATCH)}, 'upgrader', 'key-1', {q(json.dumps(document(rx)))}, 'me')")
        check(rows == [["201"]], f"create on the first layout answered {rows}")
        # a is started and ends by its executor, the old way: b becomes Pending.
        sql_in(db, f"UPDATE tasks SET status = 'Running', started_at = now() WHERE id = {q(A)}")
        rows = sql_in(db, f"SELECT code FROM tr_patch_task({q(A)}, 'Success', NULL, NULL, false, "
                          "NULL, NULL, 'executor')")
        check(rows == [["200"]], f"PATCH on the first layout answered {rows}")
        before = {r[0]: r[1:] for r in sql_in(
            db, "SELECT id, status, open_parents, (SELECT count(*) FROM task_events e "
                "WHERE e.task_id = t.id), (SELECT count(*) FROM actions a WHERE a.task_id = t.id)"
                " FROM tasks t")}
        check(before[A][0] == "Success" and before[B][0] == "Pending" and
              before[C][0] == "Waiting", f"first layout states: {before}")
        end_calls = sql_in(db, f"SELECT count(*) FROM deliveries WHERE task_id = {q(A)}")

        step("the current scripts/migrate upgrades it in place")
        out = migrate(db, os.path.join(REPO, "scripts", "migrate"), os.path.join(REPO, "sql"))
        check("applied 0008" in out and "functions applied" in out, f"migrate said: {out}")
        out = migrate(db, os.path.join(REPO, "scripts", "migrate"), os.path.join(REPO, "sql"))
        check("up to date" in out, f"a second migrate should have nothing to do: {out}")

        step("every task reads back as it was")
        after = {r[0]: r[1:] for r in sql_in(
            db, "SELECT id, status, open_parents, (SELECT count(*) FROM task_events e "
                "WHERE e.task_id = t.id), (SELECT count(*) FROM actions a WHERE a.task_id = t.id)"
                " FROM tasks t")}
        check(after == before, f"tasks changed by the upgrade: {before} -> {after}")
        check(sql_in(db, f"SELECT count(*) FROM deliveries WHERE task_id = {q(A)}") == end_calls,
              "deliveries changed by the upgrade")
        body = json.loads(sql_in(db, f"SELECT body FROM tr_get_task({q(B)})")[0][0])
        check(body["status"] == "Pending" and body["dependencies"] ==
              [{"id": A, "requires_success": True}] and len(body["actions"]) == 2
              and body["requester"] == "upgrader", f"task b after the upgrade: {body}")
        # A key stored before keys remembered their request replays as before.
        rows = sql_in(db, "SELECT batch_id FROM tr_create_batch("
                          f"'7a5b0000-0000-4000-8000-0000000000ff', 'upgrader', 'key-1', "
                          f"'{'0' * 64}', {q(json.dumps(document(rx)))}, 'me')")
        check(rows == [[BATCH]], f"the stored Idempotency-Key was not honoured: {rows}")

        step("its schema is exactly that of a database made fresh")
        fresh = f"{db}_fresh"
        subprocess.run(super_sql + ["-c", f"CREATE DATABASE {fresh} OWNER taskrunner"],
                       check=True, capture_output=True, timeout=60)
        try:
            migrate(fresh, os.path.join(REPO, "scripts", "migrate"), os.path.join(REPO, "sql"))
            s_old, s_new = schema(db), schema(fresh)
            diff = [x for x in s_old if x not in s_new] + [x for x in s_new if x not in s_old]
            check(s_old == s_new, f"schemas differ: {diff[:20]}")
        finally:
            subprocess.run(super_sql + ["-c", f"DROP DATABASE IF EXISTS {fresh}"],
                           capture_output=True, timeout=60)

        step("the tasks run: a worker on the upgraded database starts b, and b's end starts c")
        db_url = env("TASKRUNNER_DATABASE_URL").replace("dbname=taskrunner", f"dbname={db}")
        with ExtraWorker("worker-upgrade", {"TASKRUNNER_DATABASE_URL": db_url}):
            wait_for(lambda: any(c.path == "/upgrade/3" for c in rx.calls), 15.0,
                     "the on_start call of b")
            wait_for(lambda: sql_in(db, f"SELECT status FROM tasks WHERE id = {q(B)}")
                     == [["Running"]], 15.0, "b Running")
            rows = sql_in(db, f"SELECT code FROM tr_patch_task({q(B)}, 'Success', NULL, NULL, "
                              "false, NULL, NULL, NULL, NULL, 'executor')")
            check(rows == [["200"]], f"PATCH b answered {rows}")
            wait_for(lambda: any(c.path == "/upgrade/4" for c in rx.calls), 15.0,
                     "the on_success call of b")
            wait_for(lambda: any(c.path == "/upgrade/5" for c in rx.calls), 15.0,
                     "the on_start call of c")
        events = sql_in(db, f"SELECT event, from_status, to_status FROM task_events "
                            f"WHERE task_id = {q(B)} AND event = 'status' ORDER BY id")
        check(["status", "Waiting", "Pending"] in events and ["status", "Claimed", "Running"]
              in events and ["status", "Running", "Success"] in events,
              f"b's history across the upgrade: {events}")
    finally:
        subprocess.run(super_sql + ["-c", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)"],
                       capture_output=True, timeout=60)
        shutil.rmtree(old, ignore_errors=True)


if __name__ == "__main__":
    run(part_upgrade_in_place)

"""t-db-busy: lock contention is reported as what it is, and the service's own
lock orders never deadlock (issue 24; API.md "Conventions": 503 with
Retry-After).

(a) A deadlock that outlives the responder's retries: a trigger installed for
    the test raises SQLSTATE 40P01 on the insert of a batch of a marker
    requester, every time. POST /tasks answers 503 with the error "database
    busy, retry" (not "database unavailable") and Retry-After, and the
    responder logs it once, with the SQLSTATE.
(b) The same in the worker: a trigger raises 40P01 when a task of a marker
    kind is claimed; the worker's log line names the SQLSTATE, never
    "database unavailable", and the task starts once the trigger is gone.
(c) Dedupe keys: two batches whose dedupe keys come in opposite orders, sent
    at the same time, round after round: every answer is 2xx and PostgreSQL
    reports no deadlock (each cost a second, deadlock_timeout, before).
The triggers are always dropped.
"""

import os
import threading
import time
import uuid

from trlib import (api, check, check_error, env, new_kind, q, run, short, sql, step, task,
                   wait_for, wait_status)

MARKER = f"t-db-busy-{uuid.uuid4().hex[:8]}"

INSTALL_API = f"""
CREATE OR REPLACE FUNCTION test_db_busy() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = '40P01', MESSAGE = 'injected deadlock for {MARKER}';
END$$;
DROP TRIGGER IF EXISTS test_db_busy ON batches;
CREATE TRIGGER test_db_busy BEFORE INSERT ON batches FOR EACH ROW
    WHEN (NEW.requester = {q(MARKER)}) EXECUTE FUNCTION test_db_busy();
"""
REMOVE_API = "DROP TRIGGER IF EXISTS test_db_busy ON batches; DROP FUNCTION IF EXISTS test_db_busy();"

INSTALL_WORKER = """
CREATE OR REPLACE FUNCTION test_claim_busy() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = '40P01', MESSAGE = 'injected deadlock on claim';
END$$;
DROP TRIGGER IF EXISTS test_claim_busy ON tasks;
CREATE TRIGGER test_claim_busy BEFORE UPDATE ON tasks FOR EACH ROW
    WHEN (NEW.kind = {kind} AND NEW.status = 'Claimed') EXECUTE FUNCTION test_claim_busy();
"""
REMOVE_WORKER = ("DROP TRIGGER IF EXISTS test_claim_busy ON tasks; "
                 "DROP FUNCTION IF EXISTS test_claim_busy();")


def log_path(name):
    return os.path.join(env("TR_VAR"), "log", name)


def log_size(name):
    try:
        return os.path.getsize(log_path(name))
    except OSError:
        return 0


def log_lines(name, offset):
    try:
        with open(log_path(name), "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace").splitlines()
    except OSError:
        return []


def part_api_busy(rx):
    step("(a) POST /tasks whose batch insert deadlocks on every try: 503 \"database busy, "
         "retry\" with Retry-After, logged once with the SQLSTATE")
    kind = new_kind("t-db-busy")
    sql(INSTALL_API)
    try:
        offset = log_size("fcgi.log")
        resp = api("POST", "/tasks", [task("a", kind=kind, on_start={
            "kind": "Webhook", "params": {"url": rx.url("/busy")}})],
            headers={"X-Requester": MARKER})
        code, headers, body, raw = resp
        check_error(resp, 503, "POST /tasks under injected lock contention")
        check(body.get("error") == "database busy, retry",
              f"the error should be \"database busy, retry\", got {short(raw)}")
        check(headers.get("retry-after", "").isdigit(),
              f"a 503 needs a Retry-After in seconds, got {headers.get('retry-after')!r}")
        rid = headers.get("x-request-id")
        check(rid, "the 503 has no X-Request-Id")
        # The responder logs after it answered: wait for its line.
        wait_for(lambda: any(rid in line for line in log_lines("fcgi.log", offset)), 10,
                 f"the responder's log line of request {rid}")
        mine = [line for line in log_lines("fcgi.log", offset) if rid in line]
        print(f"   {code} {short(raw)}; Retry-After {headers.get('retry-after')}; log: {mine}")
        check(len(mine) == 1, f"exactly one log line for request {rid}, got {len(mine)}: {mine}")
        check("40P01" in mine[0] and "database busy" in mine[0],
              f"the log line should say \"database busy\" and the SQLSTATE 40P01: {mine[0]}")
        check(sql(f"SELECT count(*) FROM tasks WHERE kind = {q(kind)}") == [["0"]],
              "nothing of the refused batch may be stored")
    finally:
        sql(REMOVE_API)

    step("(a) the same request without the contention is created")
    resp = api("POST", "/tasks", [task("a", kind=kind)], headers={"X-Requester": MARKER})
    check(resp[0] == 201, f"POST /tasks after the trigger is gone: {resp[0]} {short(resp[3])}")


def part_worker_busy(rx):
    step("(b) the worker's claim deadlocks on every try: its log line names SQLSTATE 40P01")
    kind = new_kind("t-db-busy-claim")
    offset = log_size("worker.log")
    sql(INSTALL_WORKER.format(kind=q(kind)))
    try:
        created = api("POST", "/tasks", [task("c", kind=kind, on_start={
            "kind": "Webhook", "params": {"url": rx.url("/claimed")}})])
        check(created[0] == 201, f"POST /tasks: {created[0]} {short(created[3])}")
        tid = created[2][0]["id"]

        def claim_failed():
            return [line for line in log_lines("worker.log", offset) if "claim failed" in line]
        wait_for(lambda: claim_failed(), 15, "the worker's \"claim failed\" log line")
        lines = claim_failed()
        print(f"   {lines[0]}")
        check(all("40P01" in line and "database busy" in line for line in lines),
              f"each claim failure should say \"database busy\" and 40P01: {lines[:3]}")
        unavailable = [line for line in log_lines("worker.log", offset)
                       if "database unavailable" in line]
        check(not unavailable, f"lock contention reported as unavailability: {unavailable[:3]}")
    finally:
        sql(REMOVE_WORKER)
    step("(b) with the trigger gone, the task starts")
    wait_status(tid, ("Running", "Claimed"), timeout=15, what="the task once claims succeed")
    rx.wait_for(lambda calls: any(c.path.startswith("/claimed") for c in calls), 10,
                "its on_start call")


def dedupe_batch(kind, keys, url):
    """Tasks deduped per key among Pending tasks of kind. A rule counting
    Pending tasks of the kind holds them Pending (each counts itself), so
    that the worker's starts cannot change what dedupe sees; the run's
    clean-up cancels them."""
    held = {"type": "Concurrency", "max_concurrency": 1,
            "matcher": {"kind": kind, "status": "Pending", "fields": []}}
    return [task(f"d{k}", kind=kind, metadata={"k": k}, rules=[held],
                 on_start={"kind": "Webhook", "params": {"url": url}},
                 dedupe_strategy=[{"kind": kind, "status": "Pending", "fields": ["k"]}])
            for k in keys]


def part_dedupe_order(rx):
    rounds, n_keys = 8, 24
    step(f"(c) {rounds} rounds of two concurrent batches whose {n_keys} dedupe keys come in "
         "opposite orders: every answer 2xx, no deadlock")
    pg_offset = log_size("postgresql.log")
    url = rx.url("/dedupe")
    worst = 0.0
    for r in range(rounds):
        kind = new_kind(f"t-db-busy-dedupe{r}")
        keys = list(range(n_keys))
        bodies = [dedupe_batch(kind, keys, url), dedupe_batch(kind, keys[::-1], url)]
        results = [None, None]
        barrier = threading.Barrier(2)

        def send(i):
            barrier.wait(5)
            t0 = time.monotonic()
            resp = api("POST", "/tasks", bodies[i])
            results[i] = (resp[0], time.monotonic() - t0, short(resp[3]))
        threads = [threading.Thread(target=send, args=(i,)) for i in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        for res in results:
            check(res is not None and res[0] in (201, 204),
                  f"round {r}: a concurrent dedupe batch answered {res}")
            worst = max(worst, res[1])
        stored = int(sql(f"SELECT count(*) FROM tasks WHERE kind = {q(kind)}")[0][0])
        check(stored == n_keys, f"round {r}: dedupe should leave one task per key: {stored} "
              f"stored for {n_keys} keys")
    deadlocks = [line for line in log_lines("postgresql.log", pg_offset)
                 if "deadlock detected" in line]
    print(f"   slowest POST {worst * 1000:.0f} ms; deadlocks in postgresql.log: {len(deadlocks)}")
    check(not deadlocks, f"PostgreSQL reported deadlocks: {deadlocks[:2]}")


if __name__ == "__main__":
    run(part_api_busy, part_worker_busy, part_dedupe_order)

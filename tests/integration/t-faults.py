"""t-faults: crashes and outages lose no accepted task (docs/security.md,
"Faults").

(a) kill -9 of a responder during a stream of creations from 4 client
    threads (each batch: 3 tasks, 2 actions each, one dependency; an
    Idempotency-Key per batch, retried on 502/503/504 and broken
    connections): every task answered 201 is stored; nothing is half-stored
    (every stored batch of the test has all its tasks, actions and links);
    no batch is stored twice; multiwatch has the responder back and the
    service answers within a second.
(b) PostgreSQL stopped (pg_ctl -m fast) for a few seconds and started again
    during a stream of creations and webhook work (an executor ending every
    task through its handle): while it is down the API answers 503 JSON with
    Retry-After (/health too); afterwards the same responders and worker
    (same pids: nothing restarted) serve again, every task reaches Success,
    none lost, none stored twice.
(c) a webhook target that accepts the connection and never answers: with
    an extra worker whose call timeout is 1 s (the stack's worker paused),
    every attempt ends after the timeout, the task fails saying so after its
    attempts, and other tasks created meanwhile start at once.
"""

import os
import signal
import socket
import threading
import time
import urllib.parse
import uuid

from seclib import check_json_error, paused_stack_worker, pg_ctl
from trlib import (api, check, env, get_task, held_rule, new_kind, q, sql, sql_count,
                   start_holder, step, task, wait_for, webhook)
from workerlib import ExtraWorker, Hooks, _children, _cmdline, run, stack_worker_pid

RETRY_CODES = (502, 503, 504)


# ---------------------------------------------------------------------------
# A stream of creations
# ---------------------------------------------------------------------------

class Stream:
    """Client threads creating batches (make_batch(n) -> tasks) until stopped.
    Each batch has its own Idempotency-Key and is retried (same key) on
    502/503/504 and broken connections until 201, for at most `patience` s."""

    def __init__(self, make_batch, threads, patience=90.0, pause=0.03):
        self.make_batch = make_batch
        self.patience = patience
        self.pause = pause      # between one client's batches: a stream, not a flood
        self.prefix = f"fault-{uuid.uuid4().hex}"
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()
        self.created = {}      # key -> (batch id, [task ids])
        self.failed = []       # (key, last status) of batches never created
        self.codes = {}        # status (or "conn") -> count
        self.sample_503 = None
        self.n = 0
        self.threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(threads)]

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def stop(self):
        self.stop_flag.set()
        for t in self.threads:
            t.join(timeout=self.patience + 30)

    def answered(self, code=None):
        """How many answers so far (of one status only, when code is given)."""
        with self.lock:
            return self.codes.get(code, 0) if code is not None else sum(self.codes.values())

    def wait_answers(self, more, code=None, timeout=30.0):
        """Waits until `more` answers (of status code) came after this call."""
        start = self.answered(code)
        wait_for(lambda: self.answered(code) >= start + more, timeout,
                 f"{more} more answers{'' if code is None else f' {code}'} from the stream",
                 interval=0.02)

    def _count(self, code):
        with self.lock:
            self.codes[code] = self.codes.get(code, 0) + 1

    def _loop(self):
        while not self.stop_flag.is_set():
            with self.lock:
                self.n += 1
                i = self.n
            key = f"{self.prefix}-{i}"
            tasks = self.make_batch(i)
            deadline = time.monotonic() + self.patience
            last = None
            while time.monotonic() < deadline:
                try:
                    resp = api("POST", "/tasks", tasks, headers={"Idempotency-Key": key})
                except Exception as e:  # a responder died mid-request
                    self._count("conn")
                    last = repr(e)
                    time.sleep(0.05)
                    continue
                self._count(resp[0])
                last = resp[0]
                if resp[0] == 201:
                    with self.lock:
                        self.created[key] = (resp[1]["x-batch-id"], [t["id"] for t in resp[2]])
                    break
                if resp[0] in RETRY_CODES:
                    if resp[0] == 503 and self.sample_503 is None:
                        self.sample_503 = resp
                    time.sleep(0.1)
                    continue
                break
            else:
                last = f"{last} (gave up)"
            if key not in self.created:
                with self.lock:
                    self.failed.append((key, last))
            self.stop_flag.wait(self.pause)


def check_stored(stream, kind, per_batch, actions_per_task, links_per_batch, what):
    """Every 201 answer stored; nothing half-stored; nothing stored twice."""
    check(not stream.failed, f"{what}: batches never created: {stream.failed[:5]}")
    answered = {tid for _, ids in stream.created.values() for tid in ids}
    stored = {r[0] for r in sql(f"SELECT id FROM tasks WHERE kind = {q(kind)} "
                                "AND local_id <> 'holder'")}
    missing = answered - stored
    check(not missing, f"{what}: {len(missing)} tasks answered 201 are not stored: "
          f"{sorted(missing)[:5]}")
    batches = sql(f"SELECT batch_id, count(*) FROM tasks WHERE kind = {q(kind)} "
                  "AND local_id <> 'holder' GROUP BY batch_id")
    partial = [b for b in batches if int(b[1]) != per_batch]
    check(not partial, f"{what}: half-stored batches (task counts): {partial[:5]}")
    check(len(batches) == len(stream.created),
          f"{what}: {len(batches)} batches stored for {len(stream.created)} created: "
          f"a batch stored twice or one nobody was told about")
    bad_actions = sql(f"SELECT t.id, count(a.id) FROM tasks t LEFT JOIN actions a "
                      f"ON a.task_id = t.id WHERE t.kind = {q(kind)} AND t.local_id <> 'holder' "
                      f"GROUP BY t.id HAVING count(a.id) <> {actions_per_task}")
    check(not bad_actions, f"{what}: tasks without all their actions: {bad_actions[:5]}")
    links = sql_count(f"SELECT count(*) FROM task_links l JOIN tasks t ON t.id = l.child_id "
                      f"WHERE t.kind = {q(kind)}")
    check(links == links_per_batch * len(batches),
          f"{what}: {links} dependency links for {len(batches)} batches")
    keys = sql_count(f"SELECT count(*) FROM idempotency_keys WHERE key LIKE "
                     f"{q(stream.prefix + '-%')}")
    check(keys == len(stream.created), f"{what}: {keys} idempotency keys stored for "
          f"{len(stream.created)} batches")
    return len(batches), len(answered)


# ---------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------

def multiwatch_pid():
    with open(env("TR_FCGI_PIDFILE")) as f:
        return int(f.read().strip())


def responder_pids():
    return sorted(p for p in _children(multiwatch_pid()) if "taskrunner-fcgi" in _cmdline(p))


def expected_responders():
    return int(env("TASKRUNNER_RESPONDERS"))


def part_kill_responder(rx):
    step("kill -9 of a responder (twice) during a stream of creations from 4 clients")
    kind = new_kind("t-faults-kill")
    holder = start_holder(kind)  # keeps the created tasks Pending: no webhook work here

    def batch(i):
        return [task("a", kind=kind, rules=[held_rule(kind)],
                     on_success=[webhook(rx.url("/end"))]),
                task("b", kind=kind, rules=[held_rule(kind)],
                     on_success=[webhook(rx.url("/end"))]),
                task("c", kind=kind, rules=[held_rule(kind)], dependencies=[{"id": "a"}],
                     on_success=[webhook(rx.url("/end"))])]
    restore_times = []
    # No pause between a client's batches: requests are in flight at the kill.
    with Stream(batch, threads=4, pause=0) as stream:
        stream.wait_answers(8)  # creations under way
        for _ in range(2):
            before = responder_pids()
            check(len(before) == expected_responders(),
                  f"expected {expected_responders()} responders, found {before}")
            victim = before[0]
            os.kill(victim, signal.SIGKILL)
            killed = time.monotonic()

            def restored():
                now = responder_pids()
                return (len(now) == expected_responders() and victim not in now
                        and api("GET", "/ready")[0] == 200)
            wait_for(restored, 5.0, "the responders to be complete again", interval=0.01)
            restore_times.append(time.monotonic() - killed)
            stream.wait_answers(8)  # served again before the next kill
        stream.wait_answers(4)
    print(f"   killed 2 responders; back (all responders running, /ready 200) after "
          f"{', '.join(f'{t * 1000:.0f} ms' for t in restore_times)}")
    print(f"   answers (retried: 502, broken connections): {stream.codes}")
    check(all(t <= 1.0 for t in restore_times),
          f"capacity should be restored within a second: {restore_times}")
    n_batches, n_tasks = check_stored(stream, kind, 3, 2, 1, "after the kills")
    print(f"   {n_batches} batches, {n_tasks} tasks answered 201: all stored whole, none twice")
    check(get_task(holder)["status"] == "Running", "the holder should still run")
    cancel_all(stream)


def cancel_all(stream):
    """Cancels what the stream created (held tasks would crowd the worker's queue)."""
    for bid, _ in stream.created.values():
        api("DELETE", f"/batches/{bid}")


# ---------------------------------------------------------------------------
# PostgreSQL down and up again
# ---------------------------------------------------------------------------

class PatchingExecutor:
    """Answers on_start 200 and then ends the task Success through its handle,
    retrying 5xx and broken connections (the database may be down)."""

    def __init__(self, hooks, path):
        self.hooks = hooks
        self.lock = threading.Lock()
        self.starts = {}   # task id -> number of on_start calls
        self.ended = set()
        self.errors = []
        hooks.answer(path, self._answer)
        hooks.after(path, self._after)

    def _answer(self, call):
        tid = call.headers.get("x-task-id", "")
        with self.lock:
            self.starts[tid] = self.starts.get(tid, 0) + 1
        return (200, b"")

    def _after(self, call):
        threading.Thread(target=self._end, args=(call,), daemon=True).start()

    def _end(self, call):
        tid = call.headers.get("x-task-id", "")
        h = urllib.parse.urlsplit(call.query["handle"][0])
        path = h.path + (f"?{h.query}" if h.query else "")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                code = api("PATCH", path, {"status": "Success"})[0]
            except Exception:
                code = "conn"
            if code in (200, 409):  # 409: it ended already (an on_start made again)
                with self.lock:
                    self.ended.add(tid)
                return
            if code not in RETRY_CODES and code != "conn":
                with self.lock:
                    self.errors.append(f"PATCH {tid}: {code}")
                return
            time.sleep(0.2)
        with self.lock:
            self.errors.append(f"PATCH {tid}: gave up")


def part_postgres_restart(rx):
    step("PostgreSQL stopped and started again during creations and webhook work")
    kind = new_kind("t-faults-pg")
    with Hooks() as hooks:
        ex = PatchingExecutor(hooks, "/pg/start")

        def batch(i):
            return [task("a", kind=kind, on_start=webhook(hooks.url("/pg/start")),
                         on_success=[webhook(hooks.url("/pg/end"))]),
                    task("b", kind=kind, on_start=webhook(hooks.url("/pg/start")),
                         on_success=[webhook(hooks.url("/pg/end"))], dependencies=[{"id": "a"}])]
        fcgi_before, worker_before = responder_pids(), stack_worker_pid()
        down_answers = []
        with Stream(batch, threads=4, patience=120, pause=0.1) as stream:
            stream.wait_answers(8, 201)  # creations and webhook work under way
            wait_for(lambda: len(ex.ended) >= 1, 30, "a started task reported by its executor")
            pg_ctl("stop")
            stopped = time.monotonic()
            print("   postgresql stopped")
            stream.wait_answers(1, 503)  # the stream meets the outage
            health = api("GET", "/health")
            down_answers.append(health)
            stream.wait_answers(3, 503)
            # The outage lasts a few seconds while clients keep retrying: the
            # scenario's length, not a wait for a state.
            time.sleep(max(0.0, stopped + 3.0 - time.monotonic()))
            health2 = api("GET", "/tasks?page_size=1")
            down_answers.append(health2)
            pg_ctl("start")
            started = time.monotonic()
            print(f"   postgresql started again after {started - stopped:.1f}s")
            wait_for(lambda: api("GET", "/ready")[0] == 200, 20, "/ready after the restart",
                     interval=0.1)
            print(f"   /ready 200 {time.monotonic() - started:.2f}s after the start")
            stream.wait_answers(8, 201)  # creating again after the restart
        print(f"   answers: {stream.codes}")
        for resp, what in zip(down_answers, ("GET /health", "GET /tasks")):
            check_json_error(resp, 503, f"{what} while the database is down")
            check(resp[1].get("retry-after", "").isdigit(),
                  f"{what} while down: 503 needs Retry-After: {resp[1]}")
        check(stream.codes.get(503, 0) > 0 and stream.sample_503 is not None,
              f"creations while the database was down should get 503: {stream.codes}")
        check_json_error(stream.sample_503, 503, "POST /tasks while the database is down")
        check(stream.sample_503[1].get("retry-after", "").isdigit(),
              "POST /tasks while down: 503 needs Retry-After")
        check(responder_pids() == fcgi_before and stack_worker_pid() == worker_before,
              f"nothing may restart: responders {fcgi_before} -> {responder_pids()}, worker "
              f"{worker_before} -> {stack_worker_pid()}")

        n_batches, n_tasks = check_stored(stream, kind, 2, 2, 1, "after the restart")
        ids = [tid for _, tids in stream.created.values() for tid in tids]

        def all_done():
            rows = sql(f"SELECT status, count(*) FROM tasks WHERE kind = {q(kind)} GROUP BY 1")
            done = dict((r[0], int(r[1])) for r in rows)
            return done if done.get("Success", 0) == len(ids) else None
        try:
            done = wait_for(all_done, 90, "every task to reach Success", interval=0.5)
        except Exception:
            rows = sql(f"SELECT status, count(*) FROM tasks WHERE kind = {q(kind)} GROUP BY 1")
            raise AssertionError(f"not every task reached Success: {rows}; executor errors "
                                 f"{ex.errors[:5]}") from None
        check(not ex.errors, f"executor errors: {ex.errors[:5]}")
        again = {t: n for t, n in ex.starts.items() if n > 1}
        print(f"   {n_batches} batches, {n_tasks} tasks: all stored once and {done}; on_start "
              f"calls made again after the outage (same Idempotency-Key): {len(again)}")


# ---------------------------------------------------------------------------
# A webhook target that never answers
# ---------------------------------------------------------------------------

class BlackHole:
    """Accepts connections on 127.0.0.1 and never answers; records when each
    was accepted and when the other side closed it."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns = []  # [accepted at, closed at or None]
        self.lock = threading.Lock()
        self.closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closing:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            rec = [time.monotonic(), None]
            with self.lock:
                self.conns.append(rec)
            threading.Thread(target=self._hold, args=(c, rec), daemon=True).start()

    def _hold(self, c, rec):
        with c:
            try:
                while c.recv(65536):
                    pass  # read the request, never answer
            except OSError:
                pass
            rec[1] = time.monotonic()

    def close(self):
        self.closing = True
        self.sock.close()


def part_black_hole(rx):
    step("a webhook target that accepts and never answers: each attempt ends at the call "
         "timeout (1 s, extra worker), other tasks start meanwhile")
    kind = new_kind("t-faults-hole")
    hole = BlackHole()
    timeout_s, attempts = 1.0, 3
    try:
        with Hooks() as hooks, paused_stack_worker(), \
                ExtraWorker("worker-faults", {"TASKRUNNER_WEBHOOK_TIMEOUT_MS": "1000",
                                              "TASKRUNNER_RETRY_ATTEMPTS": str(attempts),
                                              "TASKRUNNER_RETRY_BASE_MS": "200",
                                              "TASKRUNNER_RETRY_FACTOR": "2"}):
            created = time.monotonic()
            resp = api("POST", "/tasks", [task("hang", kind=kind, on_start=webhook(
                f"http://127.0.0.1:{hole.port}/never"))])
            check(resp[0] == 201, f"POST the hanging task: {resp[0]}")
            hang = resp[2][0]["id"]
            wait_for(lambda: hole.conns, 10, "the call to the black hole")
            # While the call hangs, other tasks start at once.
            lat = []
            for i in range(5):
                t0 = time.monotonic()
                r = api("POST", "/tasks", [task(f"ok{i}", kind=kind + "-ok",
                                                on_start=webhook(hooks.url("/ok")))])
                tid = r[2][0]["id"]
                hooks.wait_calls("/ok", 1, tid, timeout=5)
                lat.append(time.monotonic() - t0)
                api("PATCH", f"/tasks/{tid}", {"status": "Success"})
            print(f"   other tasks started while the call hung, after "
                  f"{', '.join(f'{x * 1000:.0f}' for x in lat)} ms")
            check(max(lat) < 1.0, f"other tasks should start at once: {lat}")
            t = wait_for(lambda: (lambda x: x if x["status"] == "Failure" else None)(
                get_task(hang)), 20, "the hanging task to fail")
            took = time.monotonic() - created
            wait_for(lambda: len(hole.conns) >= attempts and all(c[1] for c in hole.conns), 5,
                     "the worker to close every connection")
            with hole.lock:
                conns = [tuple(c) for c in hole.conns]
            held = [c[1] - c[0] for c in conns]
            print(f"   {len(conns)} attempts, each held {', '.join(f'{h:.2f}' for h in held)} s; "
                  f"failed after {took:.1f}s: {t['failure_reason']}")
            check(len(conns) == attempts, f"{attempts} attempts expected, saw {len(conns)}")
            check(all(timeout_s - 0.1 <= h <= timeout_s + 0.6 for h in held),
                  f"each attempt should end at the 1 s timeout: {held}")
            check("no answer within 1000 ms" in (t["failure_reason"] or ""),
                  f"failure_reason should name the timeout: {t['failure_reason']!r}")
            check(took < attempts * (timeout_s + 0.6) + 0.2 + 0.4 + 3,
                  f"the task took {took:.1f}s to fail: not bounded by timeout and retries")
    finally:
        hole.close()


if __name__ == "__main__":
    run(part_kill_responder, part_postgres_restart, part_black_hole)

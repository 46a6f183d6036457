"""t-no-replay: nginx never sends a request again to another responder after
the one that had it died (found by the soak: a PUT progress count applied
twice).

nginx passes a request it deems idempotent (GET, HEAD, and also PUT and
DELETE) to the upstream again when the connection fails mid-request. A
responder killed after its statement went to the database, before it
answered, has applied it: a PUT /tasks/{id} (an increment) sent again counts
twice, a DELETE sent again answers 409 for a cancel that took place.

The test holds the task's row locked (a psql session), sends PUT
{"new_success": 7}, waits until a database session waits on that lock (the
responder's statement), kills every responder (kill -9; multiwatch makes new
ones), then releases the lock. The client's answer may be 502 (nginx did not
send it again) or a 202, but the task counts the 7 at most once.
"""

import shlex
import subprocess
import threading

from trlib import api, check, create, env, q, sql_count, step, task, wait_for, wait_status
from workerlib import _children, _cmdline, run


def responders():
    with open(env("TR_FCGI_PIDFILE")) as f:
        mw = int(f.read().strip())
    return [p for p in _children(mw) if "taskrunner-fcgi" in _cmdline(p)]


def part_put_not_replayed(rx):
    step("a PUT whose responder dies after sending its statement is not sent again")
    body, _ = create([task("counted", kind="t-no-replay", timeout=300)])
    tid = body[0]["id"]
    wait_status(tid, "Running", 30)
    locker = subprocess.Popen(shlex.split(env("TR_PSQL")) + ["-At"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, bufsize=1)
    answer = {}
    try:
        locker.stdin.write(f"BEGIN; SELECT 'locked' FROM tasks WHERE id = {q(tid)} FOR UPDATE;\n")
        locker.stdin.flush()
        check(locker.stdout.readline().strip() == "locked", "the row lock was not taken")

        def put():
            try:
                answer["code"] = api("PUT", f"/tasks/{tid}", {"new_success": 7})[0]
            except Exception as e:  # a cut connection is an answer too
                answer["code"] = repr(e)
        t = threading.Thread(target=put, daemon=True)
        t.start()
        waiting = ("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                   "AND datname = current_database()")
        wait_for(lambda: sql_count(waiting) >= 1, 15, "the PUT to wait for the row lock")
        for pid in responders():
            subprocess.run(["kill", "-9", str(pid)], check=False)
        # If nginx sends the PUT again, the new responder's statement waits
        # for the lock too: give it the time to get there (or the answer to
        # come), then let every waiting statement run.
        t.join(timeout=5)
        wait_for(lambda: responders(), 15, "multiwatch to start responders again")
    finally:
        locker.stdin.write("COMMIT;\n")
        locker.stdin.close()
        locker.wait(timeout=30)
    t.join(timeout=30)
    wait_for(lambda: sql_count(waiting) == 0, 30, "no statement waiting for a lock")
    got = sql_count(f"SELECT success FROM tasks WHERE id = {q(tid)}")
    check(got in (0, 7), f"PUT new_success 7 (answer {answer.get('code')}) counted as {got}: "
          "the request was sent to the database twice")
    print(f"answer {answer.get('code')}, counted {got}", flush=True)
    api("DELETE", f"/tasks/{tid}")


run(part_put_not_replayed)

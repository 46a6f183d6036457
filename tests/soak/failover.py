#!/usr/bin/env python3
"""failover: the database failover drill (make failover-test).

A primary and a streaming standby (PostgreSQL of the system, the standby
made with pg_basebackup, synchronous_standby_names on the primary: a commit
is acknowledged once it is on both), in private dirs under /tmp. A stack
(scripts/stack, var/failover) uses them through one libpq multi-host URI
(TASKRUNNER_STACK_DATABASE_URL: host a then b, target_session_attrs=
read-write). Under load (client threads creating batches with an
Idempotency-Key each; the executor reporting progress and outcomes), the
primary is killed (kill -9 of the postmaster and its processes) and the
standby promoted (pg_ctl promote). The responders and the workers must
reconnect by themselves (no process of the stack is restarted), clients get
503 + Retry-After meanwhile, never a wrong answer, and after the system
settles the invariant checker finds every acknowledged task, status change
and webhook call. Prints the timeline: kill, first 503, promotion, first
success after it.

Ports: --http/--https/--pg1/--pg2 (FAILOVER_*_PORT) or free loopback ports.
--load-seconds: load before the kill and after the promotion (each).
"""

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import soaklib  # noqa: E402
from soaklib import REPO, Checker, Client, ExecRx, Faulty, Stack, log  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pgbin():
    vers = sorted(os.listdir("/usr/lib/postgresql"), key=lambda v: [int(x) for x in v.split(".")])
    return f"/usr/lib/postgresql/{vers[-1]}/bin"


class Node:
    """One PostgreSQL server in a private dir, run as the service user."""

    def __init__(self, name, root, port, user):
        self.name, self.port, self.user = name, port, user
        self.data = os.path.join(root, name)
        self.log = os.path.join(root, f"{name}.log")
        self.sock = root

    def run(self, *cmd, check=True, timeout=120):
        full = (["/usr/sbin/runuser", "-u", self.user, "--"] if os.geteuid() == 0 else []) + list(cmd)
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/", "LANG": "C.UTF-8"}
        proc = subprocess.run(full, env=env, cwd="/", capture_output=True, text=True,
                              timeout=timeout)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)}: {proc.stdout} {proc.stderr}")
        return proc

    def write_node_conf(self, sync_names):
        with open(os.path.join(self.data, "node.conf"), "w") as f:
            f.write(f"port = {self.port}\n"
                    f"synchronous_standby_names = '{sync_names}'\n")
        if os.geteuid() == 0:
            shutil.chown(os.path.join(self.data, "node.conf"), self.user, self.user)

    def ctl(self, *args, check=True):
        return self.run(f"{pgbin()}/pg_ctl", "-D", self.data, "-l", self.log, *args, check=check)

    def psql(self, query, db="postgres"):
        return self.run(f"{pgbin()}/psql", "-h", "127.0.0.1", "-p", str(self.port), "-U",
                        "postgres", "-d", db, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c",
                        query).stdout.strip()

    def pid(self):
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as f:
                return int(f.readline())
        except (OSError, ValueError):
            return None

    def kill9(self):
        """kill -9 of the postmaster and every process of it: the host died."""
        pid = self.pid()
        kids = soaklib.children(pid)
        os.kill(pid, 9)
        for k in kids:
            try:
                os.kill(k, 9)
            except ProcessLookupError:
                pass


def make_pair(root, p1, p2, user, nodes):
    primary = Node("primary", root, p1, user)
    standby = Node("standby", root, p2, user)
    nodes += [primary, standby]  # stopped by the caller whatever happens
    primary.run(f"{pgbin()}/initdb", "-D", primary.data, "-U", "postgres", "--auth=trust",
                "-E", "UTF8", "--no-locale")
    with open(os.path.join(primary.data, "postgresql.conf"), "a") as f:
        f.write("listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{root}'\n"
                "wal_level = replica\nmax_wal_senders = 5\nhot_standby = on\n"
                "max_connections = 200\nsynchronous_commit = on\n"
                "timezone = 'UTC'\nlog_timezone = 'UTC'\n"
                "include_if_exists = 'node.conf'\n")
    with open(os.path.join(primary.data, "pg_hba.conf"), "a") as f:
        f.write("host replication all 127.0.0.1/32 trust\n")
    primary.write_node_conf("")  # synchronous once the standby follows
    primary.ctl("-w", "-t", "60", "start")
    primary.psql("CREATE ROLE taskrunner LOGIN")
    primary.psql("CREATE DATABASE taskrunner OWNER taskrunner")
    # The standby: a base backup of the primary that follows it (-R), named
    # standby1 (the primary waits for it on every commit), with no standby
    # of its own to wait for once promoted.
    primary.run(f"{pgbin()}/pg_basebackup", "-d",
                f"host=127.0.0.1 port={p1} user=postgres application_name=standby1",
                "-D", standby.data, "-R", "-X", "stream", "-c", "fast")
    standby.write_node_conf("")
    standby.ctl("-w", "-t", "60", "start")
    primary.write_node_conf("standby1")
    primary.ctl("reload")
    deadline = time.monotonic() + 60
    while primary.psql("SELECT sync_state FROM pg_stat_replication "
                       "WHERE application_name = 'standby1'") != "sync":
        if time.monotonic() > deadline:
            raise RuntimeError("the standby never became the synchronous standby")
        time.sleep(0.2)
    return primary, standby


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--var", default=os.path.join(REPO, "var", "failover"))
    ap.add_argument("--bin", default=os.environ.get("FAILOVER_BIN", os.path.join(REPO, "build")))
    for name in ("http", "https", "pg1", "pg2"):
        ap.add_argument(f"--{name}", type=int,
                        default=int(os.environ.get(f"FAILOVER_{name.upper()}_PORT", 0)))
    ap.add_argument("--load-seconds", type=float, default=15)
    ap.add_argument("--clients", type=int, default=4)
    args = ap.parse_args()
    http, https, p1, p2 = (args.http or free_port(), args.https or free_port(),
                           args.pg1 or free_port(), args.pg2 or free_port())
    user = "taskrunner" if os.geteuid() == 0 else None
    if user:
        subprocess.run(["id", user], capture_output=True, check=False).returncode == 0 or \
            subprocess.run(["useradd", "--system", "--user-group", "--no-create-home",
                            "--shell", "/usr/sbin/nologin", user], check=True)
    root = tempfile.mkdtemp(prefix="tr-failover-")
    if user:
        shutil.chown(root, user, user)
    os.chmod(root, 0o755)
    log(f"failover: primary :{p1}, standby :{p2} in {root}; stack http :{http}")
    primary = standby = None
    stack = None
    violations = []
    timeline = {}
    rc = 1
    nodes = []
    try:
        primary, standby = make_pair(root, p1, p2, user or os.environ.get("USER", "root"), nodes)
        url = (f"postgresql://taskrunner@127.0.0.1:{p1},127.0.0.1:{p2}/taskrunner"
               "?target_session_attrs=read-write&connect_timeout=2")
        stack = Stack(args.var, http, https, free_port(), os.path.abspath(args.bin), extra={
            "TASKRUNNER_STACK_DATABASE_URL": url,
            "TASKRUNNER_RETRY_BASE_MS": "200", "TASKRUNNER_RETRY_CAP_MS": "2000"})
        stack.start()
        log(f"failover: stack up on {stack.url}, database {url}")
        pids_before = sorted(stack.responders() + stack.workers())
        client = Client([stack.url], requester="failover", patience=120)
        client.record_events = True
        accepted = {}
        gave_up = []
        stop = threading.Event()
        lock = threading.Lock()

        def creator():
            while not stop.is_set():
                key = str(uuid.uuid4())
                tasks = [{"id": f"t{i}", "name": f"failover {i}", "kind": "failover",
                          "on_start": {"kind": "Webhook", "params": {
                              "url": exec_rx.url("/start"), "body": {"work": 0.1, "puts": 1}}},
                          "on_success": [{"kind": "Webhook",
                                          "params": {"url": end_rx.url("/end")}}]}
                         for i in range(3)]
                tasks[2]["dependencies"] = [{"id": "t0"}]
                code, rh, body, _ = client.call("POST", "/tasks", tasks,
                                                headers={"Idempotency-Key": key}, retry_409=True)
                with lock:
                    if code == 201:
                        accepted[key] = (rh.get("x-batch-id"), [t["id"] for t in body])
                    else:
                        gave_up.append((key, code))
                stop.wait(0.15)

        with ExecRx(client, threads=12, p500=0, plate=0, pslow=0) as exec_rx, \
                Faulty(p500=0, plate=0, pslow=0) as end_rx:
            threads = [threading.Thread(target=creator, daemon=True) for _ in range(args.clients)]
            for t in threads:
                t.start()
            time.sleep(args.load_seconds)
            n_before = len(accepted)
            timeline["kill"] = time.time()
            primary.kill9()
            log("failover: primary killed (kill -9)")
            time.sleep(1.0)  # what a failure detector (Patroni's loop) takes, at least
            timeline["promote"] = time.time()
            standby.run(f"{pgbin()}/pg_ctl", "-D", standby.data, "-w", "-t", "60", "promote")
            timeline["promoted"] = time.time()
            log("failover: standby promoted")
            time.sleep(args.load_seconds)
            stop.set()
            for t in threads:
                t.join(timeout=150)
            log(f"failover: load stopped ({len(accepted)} batches accepted, {n_before} before "
                "the kill); settling")
            left = soaklib.wait_settled(stack, timeout=120)
            if left:
                violations.append(f"not settled after 120 s: {left}")
            time.sleep(2.5)
            with client.lock:
                events = list(client.events)
            after_kill = [(t, c) for t, c in events if t >= timeline["kill"]]
            fail = [(t, c) for t, c in after_kill if c == 503 or c == "conn" or c in (502, 504)]
            ok_after = [(t, c) for t, c in events if t >= timeline["promoted"] and c in (200, 201, 202)]
            timeline["first_503"] = next((t for t, c in after_kill if c == 503), None)
            timeline["first_error"] = fail[0][0] if fail else None
            timeline["first_success_after_promotion"] = ok_after[0][0] if ok_after else None
            timeline["first_201_after_promotion"] = next(
                (t for t, c in events if t >= timeline["promoted"] and c == 201), None)
            last_fail = fail[-1][0] if fail else None
            timeline["last_error"] = last_fail
            wrong = [c for t, c in after_kill if isinstance(c, int) and c >= 500
                     and c not in (502, 503, 504)]
            if wrong:
                violations.append(f"answers other than 503 while failing over: {wrong[:5]}")
            if timeline["first_success_after_promotion"] is None:
                violations.append("no success after the promotion")
            elif timeline["first_success_after_promotion"] - timeline["promoted"] > 10:
                violations.append("the service took more than 10 s to use the new primary")
            if sorted(stack.responders() + stack.workers()) != pids_before:
                violations.append("a responder or worker was restarted: they should reconnect "
                                  "by themselves")
            chk = Checker(stack, client)
            chk.accepted(accepted)
            chk.terminal()
            chk.webhooks([exec_rx, end_rx])
            chk.progress(exec_rx)
            chk.acked(exec_rx)
            chk.metrics()
            violations += chk.violations
            if gave_up:
                violations.append(f"creations never accepted: {gave_up[:3]}")
            violations += client.bad[:5]
            violations += [f"sanitizer report: {s}" for s in stack.sanitizer_reports()]
            print("\n=== failover timeline (seconds after the kill -9 of the primary) ===")
            t0 = timeline["kill"]
            for k in ("first_error", "first_503", "promote", "promoted",
                      "first_success_after_promotion", "first_201_after_promotion", "last_error"):
                v = timeline.get(k)
                print(f"{k}: {'-' if v is None else f'{v - t0:+.3f} s'}")
            codes = {c for _, c in after_kill}
            print(f"answers after the kill: "
                  f"{dict((str(k), sum(1 for _, c in after_kill if c == k)) for k in codes)}")
            print(f"figures: {chk.figures}")
            print(f"violations: {len(violations)}")
            for v in violations:
                print(f"  VIOLATION: {v}")
            rc = 1 if violations else 0
    finally:
        if stack is not None:
            stack.stop()
        for node in nodes:
            if node.pid() and os.path.exists(f"/proc/{node.pid()}"):
                node.ctl("-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(root, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())

"""t-metrics: GET /metrics (API.md, "Health and metrics"; docs/observability.md).

- 200 task creations spread over the responders (8 client threads through
  nginx, one task per POST): taskrunner_tasks_created_total grows by exactly
  200 at once, and taskrunner_http_requests_total{route="/tasks",code="201"}
  by exactly 200 within a flush period: totals of every process, whichever
  responder answers the scrape;
- kill -9 of a responder (multiwatch replaces it): no counter of the scrape
  drops, and counting goes on exactly;
- a real scrape after a workload passes `promtool check metrics` (Debian's
  prometheus package; skipped with a reason when it is not installed) and the
  checks of this file: every metric of API.md, HELP and TYPE, histograms with
  ascending cumulative buckets up to +Inf equal to _count;
- the task counters agree with the tasks table: created = all tasks, the sum
  of completed = terminal tasks, the gauge = tasks per status; the kind label
  stays bounded (TASKRUNNER_METRICS_MAX_KINDS, "other" beyond).
"""

import os
import re
import shutil
import signal
import subprocess
import threading
import time

from trlib import (api, check, create, create_map, env, expect, new_kind, run, short, sql,
                   sql_count, step, task, wait_for, wait_status, webhook)

CLIENTS = 8
PER_CLIENT = 25  # 8 x 25 = 200 creations
# Every metric API.md lists, with its type.
REQUIRED = {
    "taskrunner_tasks_created_total": "counter",
    "taskrunner_tasks_completed_total": "counter",
    "taskrunner_task_status_transitions_total": "counter",
    "taskrunner_tasks_blocked_by_rule_total": "counter",
    "taskrunner_dependency_propagations_total": "counter",
    "taskrunner_webhook_calls_total": "counter",
    "taskrunner_webhook_duration_seconds": "histogram",
    "taskrunner_dead_letters_total": "counter",
    "taskrunner_http_requests_total": "counter",
    "taskrunner_http_request_duration_seconds": "histogram",
    "taskrunner_worker_loop_duration_seconds": "histogram",
    "taskrunner_tasks": "gauge",
}
FLUSH_S = int(os.environ.get("TASKRUNNER_METRICS_FLUSH_MS") or 1000) / 1000
MAX_KINDS = int(os.environ.get("TASKRUNNER_METRICS_MAX_KINDS") or 50)

# ---------------------------------------------------------------------------
# Reading the exposition
# ---------------------------------------------------------------------------

SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?')


def unescape(v):
    return re.sub(r'\\(.)', lambda m: "\n" if m.group(1) == "n" else m.group(1), v)


class Scrape:
    """One GET /metrics: text, {name: type}, {name: help} and the samples
    {(name, ((label, value), ...)): float} (labels sorted)."""

    def __init__(self, text):
        self.text = text
        self.types, self.helps, self.samples = {}, {}, {}
        for line in text.splitlines():
            if line.startswith("# TYPE "):
                _, _, name, typ = line.split(" ", 3)
                self.types[name] = typ
            elif line.startswith("# HELP "):
                _, _, name, text_ = line.split(" ", 3)
                self.helps[name] = text_
            elif line and not line.startswith("#"):
                m = SAMPLE_RE.match(line)
                check(m, f"unreadable sample line: {line!r}")
                labels = tuple(sorted((k, unescape(v))
                                      for k, v in LABEL_RE.findall(m.group(3) or "")))
                key = (m.group(1), labels)
                check(key not in self.samples, f"sample given twice: {line!r}")
                self.samples[key] = float(m.group(4))

    def value(self, name, **labels):
        return self.samples.get((name, tuple(sorted(labels.items()))), 0.0)

    def series(self, name):
        """{labels dict as a sorted tuple: value} of every sample called name."""
        return {lab: v for (n, lab), v in self.samples.items() if n == name}

    def total(self, name):
        return sum(self.series(name).values())


def scrape(what="GET /metrics"):
    """A scrape; a 502/504 right after a responder died is tried again."""
    for _ in range(50):
        code, headers, _, raw = api("GET", "/metrics")
        if code not in (502, 504):
            break
        time.sleep(0.1)
    check(code == 200, f"{what}: HTTP {code}: {short(raw)}")
    ctype = headers.get("content-type", "")
    check(ctype.startswith("text/plain") and "version=0.0.4" in ctype,
          f"{what}: Content-Type should be text/plain; version=0.0.4, got {ctype!r}")
    return Scrape(raw.decode())


def counter_families(s):
    """The sample names of counters and histograms (what must never drop)."""
    names = set()
    for fam, typ in s.types.items():
        if typ == "counter":
            names.add(fam)
        elif typ == "histogram":
            names |= {fam + "_bucket", fam + "_sum", fam + "_count"}
    return names


# ---------------------------------------------------------------------------
# Parts
# ---------------------------------------------------------------------------


def held_by_itself(kind):
    """A rule that never lets a task of kind start: it counts itself (Pending)."""
    return {"type": "Concurrency", "max_concurrency": 1,
            "matcher": {"kind": kind, "status": "Pending", "fields": []}}


def responders():
    with open(env("TR_FCGI_PIDFILE"), encoding="utf-8") as f:
        watcher = int(f.read().strip())
    out = subprocess.run(["pgrep", "-P", str(watcher)], capture_output=True, text=True).stdout
    return watcher, sorted(int(p) for p in out.split())


def step_spread_creations(rx):
    _, kids = responders()
    step(f"{CLIENTS} clients x {PER_CLIENT} POST /tasks through nginx to "
         f"{len(kids)} responders {kids}")
    check(len(kids) >= 2, f"the test stack should run several responders, it has {kids}")
    kind = new_kind("t-metrics-spread")
    time.sleep(FLUSH_S * 1.5)  # what earlier tests made is in the totals by now
    before = scrape("scrape before")
    created0 = before.value("taskrunner_tasks_created_total")
    posts0 = before.value("taskrunner_http_requests_total", route="/tasks", code="201")
    errors = []

    def client(n):
        try:
            for i in range(PER_CLIENT):
                # Held, so that the worker has nothing to do with them. A careful
                # client: an answer lost to a failure (503, 502) is asked again
                # with the same Idempotency-Key, so each task is created once.
                body = [task(f"c{n}-{i}", kind=kind, rules=[held_by_itself(kind)])]
                hdr = {"Idempotency-Key": f"{kind}-{n}-{i}"}
                for _ in range(20):
                    resp = api("POST", "/tasks", body, headers=hdr)
                    if resp[0] not in (502, 503, 504):
                        break
                    time.sleep(0.1)
                got = expect(resp, 201, f"client {n}: POST /tasks")
                check(len(got) == 1, f"client {n}: one task per POST")
        except Exception as e:  # reported below, with the others
            errors.append(f"client {n}: {e}")

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check(not errors, f"creations failed: {errors}")

    after = scrape("scrape after")
    created = after.value("taskrunner_tasks_created_total") - created0
    check(created == CLIENTS * PER_CLIENT,
          f"taskrunner_tasks_created_total grew by {created:g}, expected exactly "
          f"{CLIENTS * PER_CLIENT}")
    check(after.value("taskrunner_tasks_created_total") == sql_count("SELECT count(*) FROM tasks"),
          "taskrunner_tasks_created_total should equal the number of tasks")

    step("the responders' own counts reach the totals within a flush: exactly 200 more 201s")

    def posts():
        return scrape().value("taskrunner_http_requests_total", route="/tasks", code="201") - posts0

    wait_for(lambda: posts() >= CLIENTS * PER_CLIENT, FLUSH_S * 5 + 2,
             "the POST /tasks 201 count to grow by 200")
    got = posts()
    check(got == CLIENTS * PER_CLIENT,
          f"taskrunner_http_requests_total{{route=\"/tasks\",code=\"201\"}} grew by {got:g}, "
          f"expected exactly {CLIENTS * PER_CLIENT}")
    shards = sql("SELECT count(DISTINCT shard) FROM metric_counters "
                 "WHERE name = 'taskrunner_http_requests_total' "
                 "AND labels = '{\"route\": \"/tasks\", \"code\": \"201\"}'")
    print(f"   POST /tasks counts came from {shards[0][0]} shard(s) (one per flushing "
          f"responder, unless two pids share a shard)")


def step_kill_responder(rx):
    watcher, kids = responders()
    victim = kids[0]
    try:
        os.kill(victim, 0)
    except PermissionError:
        print(f"SKIP: kill -9 of a responder: not allowed to signal pid {victim}")
        return
    step(f"kill -9 of responder {victim} (multiwatch {watcher}): no counter drops")
    time.sleep(FLUSH_S * 1.5)  # let the victim flush, so that the scrape below holds its share
    before = scrape("scrape before the kill")
    os.kill(victim, signal.SIGKILL)

    def replaced():
        _, now = responders()
        return now if victim not in now and len(now) == len(kids) else None

    now = wait_for(replaced, 10, f"multiwatch to replace responder {victim}")
    print(f"   responders now {now}")
    time.sleep(FLUSH_S * 1.5)
    after = scrape("scrape after the kill")
    dropped = []
    for name in counter_families(before):
        for labels, v in before.series(name).items():
            w = after.samples.get((name, labels), 0.0)
            if w < v:
                dropped.append(f"{name}{dict(labels)}: {v:g} -> {w:g}")
    check(not dropped, f"counters dropped after a responder was killed: {dropped}")

    step("counting goes on exactly: 10 more creations, 10 more in the total")
    created0 = after.value("taskrunner_tasks_created_total")
    kind = new_kind("t-metrics-after-kill")
    for i in range(10):
        create([task(f"k{i}", kind=kind, rules=[held_by_itself(kind)])])
    got = scrape().value("taskrunner_tasks_created_total") - created0
    check(got == 10, f"taskrunner_tasks_created_total grew by {got:g} after 10 creations")


def workload(rx):
    """A bit of everything: tasks that succeed and fail, a dependency, a pause."""
    kind = new_kind("t-metrics-work")
    t, bid = create_map([task("ok", kind=kind, on_success=[webhook(rx.url("/end"))]),
                         task("bad", kind=kind),
                         task("child", kind=kind, dependencies=[{"id": "bad",
                                                                 "requires_success": True}]),
                         task("later", kind=kind, dependencies=[{"id": "ok",
                                                                 "requires_success": True}])],
                        headers={"X-Requester": "t-metrics \"quoted\"\\requester"})
    for name, status in (("ok", "Success"), ("bad", "Failure")):
        tid = t[name]["id"]
        wait_status(tid, "Running")
        body = {"status": status}
        if status == "Failure":
            body["failure_reason"] = "broken"
        expect(api("PATCH", f"/tasks/{tid}", body), 200, f"PATCH {status}")
    wait_status(t["later"]["id"], "Running")
    expect(api("DELETE", f"/tasks/{t['later']['id']}"), 200, "cancel")
    api("GET", f"/tasks/{t['ok']['id']}/nothing-here")  # an unknown route: route="unknown"
    api("POST", f"/tasks/{t['ok']['id']}/history")  # 405: counted under its path's pattern
    rx.wait_for(lambda calls: [c for c in calls if c.path == "/end"], 10, "the end webhook")
    time.sleep(FLUSH_S * 1.5)


def step_exposition(rx):
    step("a workload, then a scrape: every metric of API.md, well formed")
    workload(rx)
    s = scrape()
    for name, typ in REQUIRED.items():
        check(s.types.get(name) == typ, f"{name}: TYPE should be {typ}, got {s.types.get(name)}")
        check(s.helps.get(name), f"{name}: no HELP line")
    for fam, typ in s.types.items():
        check(fam in s.helps, f"{fam}: TYPE without HELP")
        if typ == "counter":
            check(fam.endswith("_total"), f"counter {fam} should end in _total")
        if typ != "histogram":
            continue
        counts = s.series(fam + "_count")
        # (firing delays need a schedule that fired: t-schedules checks them)
        check(counts or fam in ("taskrunner_webhook_duration_seconds",
                                "taskrunner_schedule_firing_delay_seconds"),
              f"histogram {fam} has no series after a workload")
        for labels, count in counts.items():
            buckets = sorted(((float(dict(lab)["le"]), v)
                              for lab, v in s.series(fam + "_bucket").items()
                              if tuple(x for x in lab if x[0] != "le") == labels),
                             key=lambda b: b[0])
            check(buckets and buckets[-1][0] == float("inf") and buckets[-1][1] == count,
                  f"{fam}{dict(labels)}: the +Inf bucket must equal _count {count:g}: {buckets}")
            values = [v for _, v in buckets]
            check(values == sorted(values), f"{fam}{dict(labels)}: buckets not cumulative")
            check((fam + "_sum", labels) in s.samples, f"{fam}{dict(labels)}: no _sum")

    step("the workload shows: routes by pattern, webhook calls, transitions, propagation")
    check(s.value("taskrunner_http_requests_total", route="/tasks/:id", code="200") > 0,
          "no GET /tasks/:id 200 counted")
    check(s.value("taskrunner_http_requests_total", route="unknown", code="404") > 0,
          "an unknown route should count as route=\"unknown\"")
    check(s.value("taskrunner_http_requests_total", route="/tasks/:id/history", code="405") > 0,
          "a wrong method should count under the pattern of its path")
    check(s.value("taskrunner_webhook_calls_total", trigger="Start", outcome="success") > 0,
          "no successful on_start call counted")
    check(s.value("taskrunner_webhook_calls_total", trigger="End", outcome="success") > 0,
          "no successful end call counted")
    check(s.value("taskrunner_task_status_transitions_total", **{"from": "Claimed",
                                                                   "to": "Running"}) > 0,
          "no Claimed -> Running transition counted")
    check(s.value("taskrunner_dependency_propagations_total", parent_outcome="Failure") > 0
          and s.value("taskrunner_dependency_propagations_total", parent_outcome="Success") > 0,
          "propagations from a failed and a succeeded parent should be counted")
    check(s.value("taskrunner_worker_loop_duration_seconds_count") > 0,
          "the worker's loop is not timed")

    step("promtool check metrics on the real scrape")
    promtool = shutil.which("promtool")
    if not promtool:
        print("SKIP: promtool check metrics: promtool is not installed "
              "(Debian package prometheus; scripts/deps installs it)")
        return
    proc = subprocess.run([promtool, "check", "metrics"], input=s.text, capture_output=True,
                          text=True, timeout=60)
    check(proc.returncode == 0 and not proc.stdout.strip() and not proc.stderr.strip(),
          f"promtool check metrics failed ({proc.returncode}): "
          f"{proc.stdout.strip()} {proc.stderr.strip()}")
    print(f"   promtool: clean ({len(s.samples)} samples)")


def table_counts():
    return {st: int(n) for st, n in sql("SELECT status, count(*) FROM tasks GROUP BY status")}


def step_agrees_with_tasks(rx):
    step("the kind label stays bounded: 60 new kinds completed, at most "
         f"{MAX_KINDS} named, the rest \"other\"")
    base = new_kind("t-metrics-kinds")[:60]
    _, bid = create([task(f"k{i}", kind=f"{base}-{i}", rules=[held_by_itself(f"{base}-{i}")])
                     for i in range(60)])
    expect(api("DELETE", f"/batches/{bid}"), 200, "cancel the batch")
    s = scrape()
    kinds = {dict(lab)["kind"] for lab in s.series("taskrunner_tasks_completed_total")}
    check(len(kinds) <= MAX_KINDS + 1, f"{len(kinds)} kind label values, at most "
                                       f"{MAX_KINDS} + \"other\" expected")
    check("other" in kinds, f"\"other\" should appear beyond {MAX_KINDS} kinds: {sorted(kinds)}")

    step("the task counters agree with the tasks table (read while nothing moves)")

    def consistent():
        first = table_counts()
        sc = scrape()
        return (first, sc) if table_counts() == first else None

    rows, s = wait_for(consistent, 20, "a moment when no task changes status", interval=0.2)
    for status in ("Waiting", "Pending", "Claimed", "Running", "Success", "Failure", "Canceled",
                   "Paused"):
        check(s.value("taskrunner_tasks", status=status) == rows.get(status, 0),
              f"taskrunner_tasks{{status=\"{status}\"}} is "
              f"{s.value('taskrunner_tasks', status=status):g}, the table has "
              f"{rows.get(status, 0)}")
    # Skipped is terminal too (trigger rules): it counts as completed.
    terminal = sum(rows.get(st, 0) for st in ("Success", "Failure", "Canceled", "Skipped"))
    completed = s.total("taskrunner_tasks_completed_total")
    check(completed == terminal, f"the sum of taskrunner_tasks_completed_total ({completed:g}) "
                                 f"should equal the terminal tasks ({terminal})")
    check(s.value("taskrunner_tasks_created_total") == sum(rows.values()),
          f"taskrunner_tasks_created_total ({s.value('taskrunner_tasks_created_total'):g}) "
          f"should equal the number of tasks ({sum(rows.values())})")
    for outcome in ("Success", "Failure", "Canceled"):
        into = sum(v for lab, v in s.series("taskrunner_task_status_transitions_total").items()
                   if dict(lab)["to"] == outcome)
        check(into == rows.get(outcome, 0),
              f"transitions into {outcome} ({into:g}) should equal the {outcome} tasks "
              f"({rows.get(outcome, 0)})")


if __name__ == "__main__":
    run(step_spread_creations, step_kill_responder, step_exposition, step_agrees_with_tasks)

"""t-schedules: cron schedules and scheduled starts through the real stack
(API.md, "Scheduled start and cron schedules (F5)").

- the API: create (201 with next_fire_times), validation with field paths
  (cron, timezone, tasks[0].on_start.params.url, overlap, catchup) answered
  together, 409 on a duplicate name, GET by id and by name, the paged list
  by name, PATCH (not the name), pause, resume, DELETE (204, batches stay);
- firing: a schedule of every 2 seconds fires within one second of each
  slot, one batch per slot with schedule_id and scheduled_for (GET
  /batches/{id}), actor schedule:<name> in the tasks' history, its history
  lists the firings; overlap skip (no firing while its batch runs),
  cancel_previous (the running batch is canceled first), allow;
- trigger: 201 with the batch, like POST /tasks;
- catch-up after a pause: latest fires once for the missed slots, none
  fires nothing, all fires each missed slot;
- a template that became invalid fails its firings visibly (history and
  taskrunner_schedule_firings_total{outcome="failed"}), the worker lives on;
- scheduled_at: a task scheduled 2 s ahead is not started before (blocker
  not_before), and its on_start comes within one second after.
"""
import time
import urllib.parse
from datetime import datetime, timezone

from trlib import api, check, check_error, detail_fields, expect, new_kind, sql, sql_count, \
    step, task, wait_for, webhook, q
from workerlib import Hooks, run


def parse_ts(text):
    """An API timestamp as an aware datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def sched_tasks(hooks, kind, path="/start"):
    return [task("a", kind=kind, on_start=webhook(hooks.url(path)))]


def create_schedule(body, what="POST /schedules"):
    return expect(api("POST", "/schedules", body), 201, what)


def history(key, page_size=100):
    return expect(api("GET", f"/schedules/{urllib.parse.quote(key)}/history?page_size={page_size}"),
                  200, "GET history")


def events(key, event):
    return [e for e in history(key) if e["event"] == event]


def metric(name, labels):
    text = api("GET", "/metrics")[3].decode()
    for line in text.splitlines():
        if line.startswith(name + " ") and not labels:
            return float(line.rsplit(" ", 1)[1])
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def end_batch(batch_id):
    for t in expect(api("GET", f"/tasks?batch_id={batch_id}"), 200, "list"):
        if t["status"] not in ("Success", "Failure", "Canceled"):
            api("DELETE", f"/tasks/{t['id']}")


def part_api(rx):
    kind = new_kind("t-schedules-api")
    with Hooks() as hooks:
        name = f"api-{kind}"
        step("validation: every problem, with its field path")
        resp = api("POST", "/schedules", {
            "name": name, "cron": "*/99 * * *", "timezone": "Mars/Olympus",
            "overlap": "sometimes", "catchup": "most",
            "tasks": [{"id": "a", "kind": kind, "on_start": webhook("ftp://x")}]})
        fields = detail_fields(check_error(resp, 400, "bad schedule"))
        for f in ("cron", "timezone", "overlap", "catchup", "tasks[0].name",
                  "tasks[0].on_start.params.url"):
            check(f in fields, f"a problem for {f} is expected: {fields}")
        fields = detail_fields(check_error(api("POST", "/schedules", {"cron": "* * * * *"}), 400,
                                           "missing fields"))
        check({"name", "tasks"} <= set(fields), f"name and tasks are required: {fields}")
        check_error(api("POST", "/schedules", {"name": "0b8a1c0e-8d7e-4c55-9a56-3c6f1c4f8f00",
                                               "cron": "* * * * *",
                                               "tasks": sched_tasks(hooks, kind)}),
                    400, "a UUID as name")

        step("create: 201 with next_fire_times")
        s = create_schedule({"name": name, "cron": "0 0 2 * * *", "timezone": "Europe/Paris",
                             "tasks": sched_tasks(hooks, kind), "paused": True})
        for k in ("id", "name", "cron", "timezone", "overlap", "catchup", "paused",
                  "next_fire_times", "last_fired_at", "last_batch_id", "created_at"):
            check(k in s, f"schedule object lacks {k}: {s}")
        check(s["overlap"] == "skip" and s["catchup"] == "latest" and s["paused"] is True,
              f"defaults: {s}")
        times = [parse_ts(t) for t in s["next_fire_times"]]
        check(len(times) == 5 and all(b > a for a, b in zip(times, times[1:])),
              f"five increasing next fire times: {s['next_fire_times']}")
        check(all(t.astimezone(timezone.utc).hour in (0, 1) for t in times),
              f"02:00 in Paris is 00:00 or 01:00 UTC: {s['next_fire_times']}")
        check_error(api("POST", "/schedules", {"name": name, "cron": "* * * * *",
                                               "tasks": sched_tasks(hooks, kind)}),
                    409, "duplicate name")

        step("GET by id and by name; the list by name")
        by_id = expect(api("GET", f"/schedules/{s['id']}"), 200, "GET by id")
        by_name = expect(api("GET", f"/schedules/{name}"), 200, "GET by name")
        check(by_id["id"] == by_name["id"] == s["id"], "same schedule")
        listed = expect(api("GET", "/schedules?page_size=100"), 200, "list")
        names = [x["name"] for x in listed]
        check(name in names and names == sorted(names), f"list by name: {names}")
        check_error(api("GET", "/schedules/no-such-schedule"), 404, "unknown name")

        step("PATCH: any field but the name")
        p = expect(api("PATCH", f"/schedules/{name}", {"cron": "*/5 * * * * *",
                                                       "timezone": "UTC", "overlap": "allow"}),
                   200, "PATCH")
        check(p["cron"] == "*/5 * * * * *" and p["overlap"] == "allow", f"patched: {p}")
        check_error(api("PATCH", f"/schedules/{name}", {"name": "other"}), 400, "rename")
        check_error(api("PATCH", f"/schedules/{name}", {"cron": "* * *"}), 400, "bad cron")

        step("resume, pause again (409 when already so), DELETE 204")
        expect(api("POST", f"/schedules/{name}/resume"), 200, "resume")
        check_error(api("POST", f"/schedules/{name}/resume"), 409, "resume twice")
        expect(api("POST", f"/schedules/{name}/pause"), 200, "pause")
        status = api("DELETE", f"/schedules/{name}")[0]
        check(status == 204, f"DELETE: {status}")
        check_error(api("GET", f"/schedules/{name}"), 404, "deleted")


def part_firing_on_time(rx):
    kind = new_kind("t-schedules-fire")
    with Hooks() as hooks:
        name = f"every2-{kind}"
        step("a schedule of every 2 seconds, overlap allow")
        s = create_schedule({"name": name, "cron": "*/2 * * * * *", "overlap": "allow",
                             "tasks": sched_tasks(hooks, kind)})
        hooks.wait_calls("/start", 3, timeout=15)
        api("POST", f"/schedules/{name}/pause")
        fired = [e for e in history(name) if e["event"] == "fired"]
        check(len(fired) >= 3, f"at least 3 firings: {fired}")
        step("one batch per slot, on time, with schedule_id and scheduled_for")
        slots = [e["slot"] for e in fired]
        check(len(slots) == len(set(slots)), f"a slot fired twice: {slots}")
        n = sql_count(f"SELECT count(*) FROM batches WHERE schedule_id = {q(s['id'])}")
        check(n == len(fired), f"{n} batches for {len(fired)} firings")
        for e in fired:
            delay = (parse_ts(e["at"]) - parse_ts(e["slot"])).total_seconds()
            check(0 <= delay < 1.0, f"fired {delay:.3f} s after its slot: {e}")
            b = expect(api("GET", f"/batches/{e['batch_id']}"), 200, "GET batch")
            check(b["schedule_id"] == s["id"] and b["scheduled_for"] == e["slot"],
                  f"batch records schedule and slot: {b}")
        print("   delays:", ", ".join(f"{(parse_ts(e['at']) - parse_ts(e['slot'])).total_seconds() * 1000:.0f} ms"
                                      for e in fired))
        step("the firing delay histogram counts them")
        wait_for(lambda: metric("taskrunner_schedule_firing_delay_seconds_count", {}) >= 3
                 or None, 10, "firing delays in /metrics")
        step("the batch's actor is schedule:<name>")
        t = expect(api("GET", f"/tasks?batch_id={fired[0]['batch_id']}"), 200, "list")[0]
        h = expect(api("GET", f"/tasks/{t['id']}/history"), 200, "task history")
        check(h[0]["actor"] == f"schedule:{name}", f"creation actor: {h[0]}")
        step("trigger: 201 with the batch, like POST /tasks")
        status, headers, _, raw = api("POST", f"/schedules/{name}/trigger")
        check(status == 201, f"trigger: {status} {raw[:300]}")
        check(headers.get("x-batch-id"), "X-Batch-ID on trigger")
        check(events(name, "triggered"), "trigger in the history")
        api("DELETE", f"/schedules/{name}")


def part_overlap(rx):
    kind = new_kind("t-schedules-overlap")
    with Hooks() as hooks:
        name = f"skip-{kind}"
        step("overlap skip: no firing while the batch of an earlier one runs")
        create_schedule({"name": name, "cron": "* * * * * *", "tasks": sched_tasks(hooks, kind)})
        wait_for(lambda: len(events(name, "skipped")) >= 2, 10, "two skipped slots")
        api("POST", f"/schedules/{name}/pause")
        fired = events(name, "fired")
        check(len(fired) == 1, f"one firing only while its batch runs: {fired}")
        check(all(e["detail"]["reason"] == "overlap" for e in events(name, "skipped")),
              "skipped by overlap")
        step("cancel_previous: the running batch is canceled, then a new one")
        expect(api("PATCH", f"/schedules/{name}", {"overlap": "cancel_previous",
                                                   "paused": False}), 200, "PATCH")
        wait_for(lambda: events(name, "canceled_previous"), 10, "a canceled previous batch")
        api("POST", f"/schedules/{name}/pause")
        first = fired[0]["batch_id"]
        b = expect(api("GET", f"/batches/{first}"), 200, "first batch")
        check(b["by_status"].get("Canceled") == 1, f"the first batch was canceled: {b}")
        api("DELETE", f"/schedules/{name}")


def part_catchup(rx):
    kind = new_kind("t-schedules-catchup")
    with Hooks() as hooks:
        for policy, want in (("latest", 1), ("none", 0), ("all", None)):
            name = f"catchup-{policy}-{kind}"
            step(f"catchup {policy}: slots missed while paused")
            s = create_schedule({"name": name, "cron": "* * * * * *", "overlap": "allow",
                                 "catchup": policy, "paused": True,
                                 "tasks": sched_tasks(hooks, kind)})
            # Five slots pass while paused, then the slot due is made old
            # (as after a downtime), and the schedule resumed.
            time.sleep(3)
            sql(f"UPDATE schedules SET next_fire_at = date_trunc('second', now()) - interval "
                f"'90 seconds' WHERE id = {q(s['id'])}")
            expect(api("POST", f"/schedules/{name}/resume"), 200, "resume")
            time.sleep(2.5)
            api("POST", f"/schedules/{name}/pause")
            fired = events(name, "fired")
            old = [e for e in fired
                   if (parse_ts(e["at"]) - parse_ts(e["slot"])).total_seconds() > 5]
            if want is None:
                check(len(old) >= 85, f"all: each missed slot fires: {len(old)}")
            else:
                check(len(old) == 0, f"{policy}: no old slot fires by itself: {old[:3]}")
                caught = [e for e in fired if (parse_ts(e["at"]) - parse_ts(e["slot"])).total_seconds() > 1]
                check(len(caught) <= want, f"{policy}: at most {want} late firing: {caught}")
                check(any(e["event"] == "skipped" and e["detail"].get("reason") == "catchup"
                          for e in history(name)), f"{policy}: skipped slots recorded")
            slots = [e["slot"] for e in fired]
            check(len(slots) == len(set(slots)), f"a slot fired twice: {slots}")
            api("DELETE", f"/schedules/{name}")


def part_invalid_template(rx):
    kind = new_kind("t-schedules-invalid")
    with Hooks() as hooks:
        name = f"broken-{kind}"
        step("a template that no longer passes fails its firings, visibly")
        before = metric("taskrunner_schedule_firings_total", {"outcome": "failed"})
        s = create_schedule({"name": name, "cron": "* * * * * *", "paused": True,
                             "tasks": sched_tasks(hooks, kind)})
        sql(f"UPDATE schedules SET template = '[{{\"id\": \"a\", \"kind\": \"x\"}}]'"
            f" WHERE id = {q(s['id'])}")
        expect(api("POST", f"/schedules/{name}/resume"), 200, "resume")
        wait_for(lambda: events(name, "failed"), 10, "a failed firing")
        api("POST", f"/schedules/{name}/pause")
        f = events(name, "failed")[0]
        fields = [x["field"] for x in f["detail"]["fields"]]
        check("tasks[0].name" in fields, f"the problems are in the history: {f}")
        wait_for(lambda: metric("taskrunner_schedule_firings_total", {"outcome": "failed"})
                 > before, 10, "the failed firing counted")
        check_error(api("POST", f"/schedules/{name}/trigger"), 409, "trigger of a broken one")
        api("DELETE", f"/schedules/{name}")


def part_scheduled_at(rx):
    kind = new_kind("t-schedules-at")
    with Hooks() as hooks:
        step("a task scheduled 2 s ahead starts within one second after")
        at = datetime.fromtimestamp(int(time.time()) + 3, timezone.utc)
        text = at.strftime("%Y-%m-%dT%H:%M:%S+00:00")
        body = expect(api("POST", "/tasks", [task("a", kind=kind, scheduled_at=text,
                                                 on_start=webhook(hooks.url("/at")))]),
                      201, "POST /tasks")
        t = body[0]
        check(parse_ts(t["scheduled_at"]) == at, f"scheduled_at shown: {t['scheduled_at']}")
        b = expect(api("GET", f"/tasks/{t['id']}/blockers"), 200, "blockers")
        check(any(x["type"] == "not_before" for x in b["blockers"]), f"not_before: {b}")
        hooks.wait_calls("/at", 1, timeout=10)
        got = sql(f"SELECT extract(epoch FROM d.created_at - {q(text)}::timestamptz) FROM "
                  f"deliveries d WHERE d.task_id = {q(t['id'])} AND d.trigger = 'Start'")
        d = float(got[0][0])
        check(0 <= d < 1.0, f"on_start made {d:.3f} s after scheduled_at")
        print(f"   on_start {d * 1000:.0f} ms after scheduled_at")
        step("bad scheduled_at: 400 with its path")
        fields = detail_fields(check_error(api("POST", "/tasks", [task("a", kind=kind,
                                                                       scheduled_at="tomorrow")]),
                                           400, "bad scheduled_at"))
        check("[0].scheduled_at" in fields, f"field path: {fields}")


if __name__ == "__main__":
    run(part_api, part_firing_on_time, part_overlap, part_catchup, part_invalid_template,
        part_scheduled_at)

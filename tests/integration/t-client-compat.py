"""t-client-compat: the original service's official client works unchanged
(API.md, "Compatibility with the original's clients").

Sdk below makes every call the Rust SDK of tinyest-org/task_runner makes
(sdk/src/lib.rs: same method, path, query and body, with the SDK's
serializations: Option fields left out when None, enums by variant name,
chrono timestamps in RFC 3339) and reads every answer into the SDK's types
as strictly as serde does (clientshapes.py). Each SDK function is called in
every way its users would (a task with rules, a 404, a refused batch, every
filter...), and the list of functions with their results is printed at the
end. A function whose answer the client could not read fails the test.

Then the contract's compatibility points the SDK's calls do not show:
PATCH priority before the start only (409 after, in the history), the
`requester` header, expected_count on PATCH, the timeout filter, the
all-zero PUT heartbeat, the batch list's filters and paging, the DAG's links.
"""

import json
import time
import urllib.parse
import uuid
from datetime import datetime, timedelta, timezone

import clientshapes as cs
from trlib import (api, check, check_error, env, expect, new_kind, q, run, short, sql_value,
                   step, wait_for, wait_status)

RESULTS = {}  # SDK function -> list of "ok ..." / "FAILED ..." lines


class ApiError(Exception):
    """The SDK's Error::Api: status, message and details as its user sees them."""

    def __init__(self, status, message, details):
        super().__init__(f"HTTP {status}: {message} {details}")
        self.status, self.message, self.details = status, message, details


def reads_as(fn, schema, value, what):
    """Reads value into schema as serde would; a failure is the SDK's
    Error::Deserialize, recorded against fn and raised."""
    try:
        cs.read(schema, value)
    except cs.ShapeError as e:
        RESULTS.setdefault(fn, []).append(f"FAILED {what}: Deserialize: {e}")
        check(False, f"{fn} ({what}): the client cannot read the answer: {e}: "
              f"{short(value)}")


def ok(fn, what):
    RESULTS.setdefault(fn, []).append(f"ok {what}")


def api_error(fn, resp, what):
    """make_api_error: the error body read as ApiErrorBody; when it cannot
    be read the user gets only "HTTP <status>" (a failure here)."""
    status, _, body, _ = resp
    reads_as(fn, cs.ApiErrorBody, body, what)
    return ApiError(status, body.get("error") or "Unknown error", body.get("details"))


def query(*structs):
    """serde_urlencoded of the SDK's filter and pagination structs: fields
    that are None are skipped (skip_serializing_if), the rest as text."""
    pairs = []
    for s in structs:
        for k, v in s.items():
            if v is not None:
                pairs.append((k, v))
    return ("?" + urllib.parse.urlencode(pairs)) if pairs else ""


def chrono(dt):
    """A DateTime<Utc> as chrono serializes it (RFC 3339, "Z", fraction when any)."""
    text = dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    if dt.microsecond:
        text += f".{dt.microsecond:06d}"
    return text + "Z"


class Sdk:
    """The SDK's Client and TaskHandle, call for call."""

    # ------------------------------------------------------------ Client
    def health(self, what="GET /health"):
        resp = api("GET", "/health")
        if resp[0] // 100 != 2:
            raise api_error("health", resp, what)
        reads_as("health", cs.HealthResponse, resp[2], what)
        ok("health", what)
        return resp[2]

    def ready(self, what="GET /ready"):
        resp = api("GET", "/ready")
        if resp[0] // 100 != 2:
            raise api_error("ready", resp, what)
        reads_as("ready", cs.ReadyResponse, resp[2], what)
        ok("ready", what)
        return resp[2]

    def create_tasks(self, tasks, what):
        resp = api("POST", "/task", tasks)
        status, headers, body, _ = resp
        batch_id = headers.get("x-batch-id")
        try:
            batch_id = str(uuid.UUID(batch_id))
        except (TypeError, ValueError):
            batch_id = str(uuid.UUID(int=0))  # Uuid::nil, as the SDK does
        if status == 204:
            ok("create_tasks", what)
            return batch_id, []
        if status // 100 != 2:
            raise api_error("create_tasks", resp, what)
        reads_as("create_tasks", cs.vec(cs.BasicTaskDto), body, what)
        ok("create_tasks", what)
        return batch_id, body

    def get_task(self, task_id, what):
        resp = api("GET", f"/task/{task_id}")
        if resp[0] == 404:
            ok("get_task", what)
            return None
        if resp[0] // 100 != 2:
            raise api_error("get_task", resp, what)
        reads_as("get_task", cs.TaskDto, resp[2], what)
        ok("get_task", what)
        return resp[2]

    def list_tasks(self, filt, page, what):
        resp = api("GET", "/task" + query(filt, page))
        if resp[0] // 100 != 2:
            raise api_error("list_tasks", resp, what)
        reads_as("list_tasks", cs.vec(cs.BasicTaskDto), resp[2], what)
        ok("list_tasks", what)
        return resp[2]

    def update_task(self, task_id, update, what, fn="update_task"):
        resp = api("PATCH", f"/task/{task_id}", update)
        if resp[0] // 100 != 2:
            raise api_error(fn, resp, what)
        ok(fn, what)

    def succeed_task(self, task_id, what):
        self.update_task(task_id, {"status": "Success"}, what, "succeed_task")

    def fail_task(self, task_id, reason, what):
        self.update_task(task_id, {"status": "Failure", "failure_reason": reason}, what,
                         "fail_task")

    def batch_update(self, task_id, new_success, new_failures, what):
        resp = api("PUT", f"/task/{task_id}",
                   {"new_success": new_success, "new_failures": new_failures})
        if resp[0] // 100 != 2:
            raise api_error("batch_update", resp, what)
        ok("batch_update", what)

    def cancel_task(self, task_id, what):
        resp = api("DELETE", f"/task/{task_id}")
        if resp[0] // 100 != 2:
            raise api_error("cancel_task", resp, what)
        ok("cancel_task", what)

    def pause_task(self, task_id, what):
        resp = api("PATCH", f"/task/pause/{task_id}", content_type=None)  # no body
        if resp[0] // 100 != 2:
            raise api_error("pause_task", resp, what)
        ok("pause_task", what)

    def get_dag(self, batch_id, what):
        resp = api("GET", f"/dag/{batch_id}")
        if resp[0] // 100 != 2:
            raise api_error("get_dag", resp, what)
        reads_as("get_dag", cs.DagDto, resp[2], what)
        ok("get_dag", what)
        return resp[2]

    def list_batches(self, filt, page, what):
        resp = api("GET", "/batches" + query(filt, page))
        if resp[0] // 100 != 2:
            raise api_error("list_batches", resp, what)
        reads_as("list_batches", cs.vec(cs.BatchSummaryDto), resp[2], what)
        ok("list_batches", what)
        return resp[2]

    # ------------------------------------------------------------ TaskHandle
    @staticmethod
    def _handle_target(handle_url):
        """The path (and query) of a handle URL, which must point at this API."""
        u = urllib.parse.urlsplit(handle_url)
        base = urllib.parse.urlsplit(env("TASKRUNNER_PUBLIC_URL"))
        check((u.scheme, u.netloc) == (base.scheme, base.netloc),
              f"the handle {handle_url} does not point at the API {base.geturl()}")
        return u.path + (f"?{u.query}" if u.query else "")

    def handle_update(self, handle_url, dto, what, fn="TaskHandle::update"):
        resp = api("PATCH", self._handle_target(handle_url), dto)
        if resp[0] // 100 != 2:
            raise api_error(fn, resp, what)
        ok(fn, what)

    def handle_succeed(self, handle_url, what):
        self.handle_update(handle_url, {"status": "Success"}, what, "TaskHandle::succeed")

    def handle_fail(self, handle_url, reason, what):
        self.handle_update(handle_url, {"status": "Failure", "failure_reason": reason}, what,
                           "TaskHandle::fail")

    def handle_report_progress(self, handle_url, success, failures, what):
        resp = api("PUT", self._handle_target(handle_url),
                   {"new_success": success, "new_failures": failures})
        if resp[0] // 100 != 2:
            raise api_error("TaskHandle::report_progress", resp, what)
        ok("TaskHandle::report_progress", what)


SDK = Sdk()


# What the SDK's builders make (TaskBuilder, webhook, webhook_with_body):
# only the fields set, the params of a WebhookParams.
def webhook(url, verb="Post", body=None):
    params = {"url": url, "verb": verb}
    if body is not None:
        params["body"] = body
    return {"kind": "Webhook", "params": params}


def builder(local_id, name, kind, on_start, **fields):
    t = {"id": local_id, "name": name, "kind": kind, "on_start": on_start}
    t.update({k: v for k, v in fields.items() if v is not None})
    return t


def concurency(kind, max_n, fields, status="Running"):
    return {"type": "Concurency", "max_concurency": max_n,
            "matcher": {"status": status, "kind": kind, "fields": fields}}


def handle_of(rx, task_id, timeout=15.0):
    """The handle URL the worker gave the task's on_start call."""
    def find():
        for c in rx.received("/start"):
            h = c.query.get("handle", [None])[0]
            if h and task_id in h:
                return h
        return None
    return wait_for(find, timeout, f"the on_start call of {task_id}")


# ---------------------------------------------------------------------------
# The SDK's functions
# ---------------------------------------------------------------------------

def step_health(rx):
    step("health and ready read as HealthResponse and ReadyResponse")
    h = SDK.health()
    check(h["pool_size"] >= 1 and 0 <= h["pool_idle"] < h["pool_size"],
          f"pool counts: the answering thread is busy, so idle < size: {h}")
    SDK.ready()


def step_create_and_read(rx):
    kind = new_kind("t-compat")
    step("create_tasks: a DAG made with every TaskBuilder field; the answer reads as Vec<BasicTaskDto>")
    tasks = [
        builder("build", "Build App", kind, webhook(rx.url("/start")), timeout=300,
                metadata={"tenant": 7, "job": "b"}, priority=5, expected_count=100,
                rules=[concurency(kind, 2, ["tenant"])],
                dedupe_strategy=[{"status": "Pending", "kind": kind + "-none", "fields": []}],
                on_success=[webhook(rx.url("/ok"), "Put")],
                on_failure=[webhook(rx.url("/ko"), "Delete", {"why": "failed"})],
                dead_end_barrier=False),
        builder("deploy", "Deploy App", kind,
                webhook(rx.url("/start"), "Post", {"env": "prod"}),
                dependencies=[{"id": "build", "requires_success": True}]),
        builder("notify", "Notify", kind, webhook(rx.url("/start"), "Get"),
                dependencies=[{"id": "deploy", "requires_success": False}]),
    ]
    batch_id, created = SDK.create_tasks(tasks, "a 3-task DAG")
    check(batch_id != str(uuid.UUID(int=0)), "X-Batch-ID should be a UUID")
    check([t["name"] for t in created] == ["Build App", "Deploy App", "Notify"],
          f"created: {short(created)}")
    by_name = {t["name"]: t for t in created}
    build = by_name["Build App"]
    check(build["expected_count"] == 100 and build["priority"] == 5,
          f"expected_count and priority of the created task: {short(build)}")

    step("get_task on a task with a rule reads as TaskDto, rule in the original spelling")
    t = SDK.get_task(build["id"], "a task with a Concurency rule")
    check(t["rules"] == [concurency(kind, 2, ["tenant"])], f"rules: {t['rules']}")
    check({a["trigger"] for a in t["actions"]} == {"Start", "End"}, f"actions: {t['actions']}")
    SDK.get_task(by_name["Deploy App"]["id"], "a Waiting task with dependencies")
    check(SDK.get_task(str(uuid.uuid4()), "an unknown id (404: None)") is None,
          "an unknown task should read as None")

    step("pause_task; create_tasks: all deduplicated gives 204 with X-Batch-ID and no tasks")
    dkind = kind + "-dup"
    _, held = SDK.create_tasks(
        [builder("parent", "parent", dkind, webhook(rx.url("/start"))),
         builder("child", "child", dkind, webhook(rx.url("/start")), metadata={"k": 1},
                 dependencies=[{"id": "parent", "requires_success": True}])],
        "a parent and a Waiting child")
    SDK.pause_task(held[1]["id"], "a Waiting task")
    check(SDK.get_task(held[1]["id"], "a Paused task")["status"] == "Paused", "not paused")
    dup = builder("dup", "Dup", dkind, webhook(rx.url("/start")), metadata={"k": 1},
                  dedupe_strategy=[{"status": "Paused", "kind": dkind, "fields": ["k"]}])
    bid, none = SDK.create_tasks([dup], "every task deduplicated (204)")
    check(none == [] and bid != str(uuid.UUID(int=0)), f"204: batch {bid}, tasks {none}")

    step("create_tasks refused: the user gets the message and every problem (ApiErrorBody)")
    bad = [builder("x", "", kind, webhook("ftp://nope")),
           builder("x", "Again", kind, webhook(rx.url("/start")),
                   dependencies=[{"id": "ghost", "requires_success": True}])]
    try:
        SDK.create_tasks(bad, "an invalid batch (400)")
        check(False, "an invalid batch was accepted")
    except ApiError as e:
        check(e.status == 400 and e.message == "invalid tasks", f"error: {e}")
        check(isinstance(e.details, list) and len(e.details) >= 3
              and any(d.startswith("[0].name: ") for d in e.details)
              and any(d.startswith("[1].dependencies[0].id: ") for d in e.details),
              f"details should name each problem with its path: {e.details}")
        ok("create_tasks", "an invalid batch: message and details read")


def step_lists(rx):
    kind = new_kind("t-compat-list")
    batch_id, created = SDK.create_tasks(
        [builder(f"l{i}", f"list-{kind}-{i}", kind, webhook("http://127.0.0.1:9/never"),
                 timeout=61 + i % 2, metadata={"n": i},
                 rules=[concurency(kind, 1, [])]) for i in range(4)], "4 tasks to list")
    ids = {t["id"] for t in created}
    step("list_tasks with each filter of TaskFilter and PaginationParams")
    cases = [
        ({"kind": kind}, 4),
        ({"name": f"list-{kind}-2"}, 1),
        ({"kind": kind, "timeout": 62}, 2),
        ({"metadata": json.dumps({"n": 3}), "kind": kind}, 1),
        ({"batch_id": batch_id}, 4),
        ({"kind": kind, "status": "Pending"}, None),
    ]
    for filt, want in cases:
        got = SDK.list_tasks(filt, {}, f"filter {filt}")
        check(all(t["id"] in ids for t in got) and (want is None or len(got) == want),
              f"list_tasks {filt}: expected {want} of this test's tasks, got {short(got)}")
    page0 = SDK.list_tasks({"kind": kind}, {"page": 0, "page_size": 3}, "page 0, page_size 3")
    page1 = SDK.list_tasks({"kind": kind}, {"page": 1, "page_size": 3}, "page 1, page_size 3")
    check(len(page0) == 3 and len(page1) == 1 and not {t["id"] for t in page0} & {
        t["id"] for t in page1}, f"pages: {short(page0)} / {short(page1)}")

    step("list_batches with each filter of BatchFilter and paging")
    now = datetime.now(timezone.utc)
    cases = [
        ({"kind": kind}, {}),
        ({"kind": kind, "status": "Pending"}, {}),
        ({"name": f"list-{kind}-1"}, {}),
        ({"kind": kind, "created_after": chrono(now - timedelta(minutes=5)),
          "created_before": chrono(now + timedelta(minutes=5))}, {"page": 0, "page_size": 10}),
    ]
    for filt, page in cases:
        got = SDK.list_batches(filt, page, f"filter {filt} {page}")
        check([b["batch_id"] for b in got] == [batch_id], f"list_batches {filt}: {short(got)}")
        b = got[0]
        check(b["total_tasks"] == 4 and b["kinds"] == [kind]
              and sum(b["status_counts"].values()) == 4, f"summary: {b}")
    got = SDK.list_batches({"kind": kind, "created_before": chrono(now - timedelta(days=1))},
                           {}, "created_before yesterday")
    check(got == [], f"a batch created now is not before yesterday: {short(got)}")
    got = SDK.list_batches({}, {"page": 0, "page_size": 2}, "newest first, no filter")
    check(len(got) == 2 and got[0]["created_at"] >= got[1]["created_at"],
          f"newest first: {short(got)}")

    step("get_dag reads as DagDto")
    dag = SDK.get_dag(batch_id, "a batch without links")
    check({t["id"] for t in dag["tasks"]} == ids and dag["links"] == [], f"dag: {short(dag)}")


def step_lifecycle(rx):
    kind = new_kind("t-compat-life")
    step("update_task, batch_update, succeed_task, fail_task, cancel_task and the TaskHandle calls")
    batch_id, created = SDK.create_tasks(
        [builder(n, n, kind, webhook(rx.url("/start")), expected_count=10)
         for n in ("a", "b", "c", "d", "e")], "5 tasks the worker starts")
    by = {t["name"]: t["id"] for t in created}
    for tid in by.values():
        wait_status(tid, "Running")

    SDK.update_task(by["a"], {"new_success": 3, "new_failures": 1, "metadata": {"step": 1},
                              "expected_count": 20}, "progress, metadata, expected_count")
    SDK.batch_update(by["a"], 2, 0, "counts 2/0")
    SDK.batch_update(by["a"], 0, 0, "counts 0/0 (a heartbeat)")
    t = SDK.get_task(by["a"], "after the updates")
    check((t["success"], t["failures"], t["expected_count"], t["metadata"]) ==
          (5, 1, 20, {"step": 1}), f"after updates: {short(t)}")
    SDK.succeed_task(by["a"], "Running -> Success")
    SDK.fail_task(by["b"], "it broke", "Running -> Failure")
    SDK.cancel_task(by["c"], "Running -> Canceled")
    for fn, tid, status in (("succeed_task", by["a"], "Success"),
                            ("fail_task", by["b"], "Failure"), ("cancel_task", by["c"], "Canceled")):
        check(SDK.get_task(tid, f"after {fn}")["status"] == status, f"{fn}: not {status}")

    step("a 409 reads as ApiErrorBody with the reason")
    try:
        SDK.succeed_task(by["a"], "an ended task (409)")
        check(False, "ending an ended task was accepted")
    except ApiError as e:
        check(e.status == 409 and "Success" in e.message and e.details == [], f"409: {e}")
        ok("succeed_task", "an ended task: 409 read")

    hd, he = handle_of(rx, by["d"]), handle_of(rx, by["e"])
    SDK.handle_report_progress(hd, 4, 1, "progress through the handle")
    SDK.handle_update(hd, {"new_success": 1, "expected_count": 9}, "an update through the handle")
    SDK.handle_succeed(hd, "Success through the handle")
    SDK.handle_fail(he, "executor gave up", "Failure through the handle")
    d, e = SDK.get_task(by["d"], "after the handle"), SDK.get_task(by["e"], "after the handle")
    check((d["status"], d["success"], d["failures"], d["expected_count"]) ==
          ("Success", 5, 1, 9), f"handle d: {short(d)}")
    check(e["status"] == "Failure" and e["failure_reason"] == "executor gave up",
          f"handle e: {short(e)}")
    SDK.get_dag(batch_id, "a batch whose tasks ended")


def step_dag_links(rx):
    kind = new_kind("t-compat-dag")
    step("get_dag: tasks with their local_id and every link")
    batch_id, created = SDK.create_tasks(
        [builder("p", "p", kind, webhook("http://127.0.0.1:9/never"),
                 rules=[concurency(kind, 1, [])]),
         builder("c1", "c1", kind, webhook("http://127.0.0.1:9/never"),
                 dependencies=[{"id": "p", "requires_success": True}]),
         builder("c2", "c2", kind, webhook("http://127.0.0.1:9/never"),
                 dependencies=[{"id": "p", "requires_success": False},
                               {"id": "c1", "requires_success": True}])], "a diamond")
    ids = {t["name"]: t["id"] for t in created}
    dag = SDK.get_dag(batch_id, "a batch with links")
    check([t["local_id"] for t in dag["tasks"]] == ["p", "c1", "c2"], f"tasks: {short(dag)}")
    links = {(l["parent_id"], l["child_id"], l["requires_success"]) for l in dag["links"]}
    want = {(ids["p"], ids["c1"], True), (ids["p"], ids["c2"], False),
            (ids["c1"], ids["c2"], True)}
    check(links == want, f"links: expected {want}, got {links}")
    same = expect(api("GET", f"/batches/{batch_id}/dag"), 200, "GET /batches/{id}/dag")
    # (p may have started in between: the shapes and links are compared.)
    check(same["batch_id"] == dag["batch_id"] == batch_id and same["links"] == dag["links"]
          and [t["id"] for t in same["tasks"]] == [t["id"] for t in dag["tasks"]],
          "GET /batches/{id}/dag and GET /dag/{id} should answer the same")
    check_error(api("GET", f"/dag/{uuid.uuid4()}"), 404, "GET /dag of an unknown batch")
    check_error(api("GET", "/dag/nope"), 400, "GET /dag with a malformed id")


# ---------------------------------------------------------------------------
# The contract's compatibility points beyond the SDK's calls
# ---------------------------------------------------------------------------

def step_priority(rx):
    kind = new_kind("t-compat-prio")
    step("PATCH priority: before the start (audited); 409 once started; not with progress")
    _, created = SDK.create_tasks(
        [builder("w", "w", kind, webhook(rx.url("/start")), priority=1,
                 dependencies=[{"id": "r", "requires_success": True}]),
         builder("r", "r", kind, webhook(rx.url("/start")))], "a Waiting and a started task")
    w, r = created[0]["id"], created[1]["id"]
    t = expect(api("PATCH", f"/tasks/{w}", {"priority": 900, "expected_count": 3},
                   headers={"X-Requester": "prio-changer"}), 200, "PATCH priority (Waiting)")
    check((t["priority"], t["expected_count"], t["status"]) == (900, 3, "Waiting"),
          f"after PATCH priority: {short(t)}")
    hist = expect(api("GET", f"/tasks/{w}/history"), 200, "history")
    ev = [e for e in hist if e["event"] == "updated"]
    check(len(ev) == 1 and ev[0]["actor"] == "prio-changer"
          and ev[0]["detail"].get("priority") == 900
          and ev[0]["detail"].get("previous_priority") == 1, f"history: {short(hist)}")
    wait_status(r, "Running")
    err = check_error(api("PATCH", f"/tasks/{r}", {"priority": 5}), 409, "PATCH priority (Running)")
    check("priority" in err["error"], f"409 should say why: {err}")
    check_error(api("PATCH", f"/tasks/{w}", {"priority": 5, "new_success": 1}), 400,
                "priority with progress")
    check_error(api("PATCH", f"/tasks/{w}", {"priority": 1001}), 400, "priority 1001")
    check_error(api("PATCH", f"/tasks/{w}", {"expected_count": -1}), 400, "expected_count -1")
    check_error(api("POST", "/tasks", [builder("x", "x", kind, webhook(rx.url("/start")),
                                                expected_count="3")]), 400,
                "expected_count as a string")
    t = expect(api("PATCH", f"/tasks/{w}", {"expected_count": 7}), 200, "expected_count alone")
    check(t["expected_count"] == 7 and t["status"] == "Waiting", f"expected_count: {short(t)}")
    api("PATCH", f"/tasks/{r}", {"status": "Success"})
    check_error(api("PATCH", f"/tasks/{r}", {"expected_count": 1}), 409,
                "expected_count on an ended task")


def step_requester_and_heartbeat(rx):
    kind = new_kind("t-compat-req")
    step("the requester header counts as X-Requester when that is absent")
    resp = api("POST", "/task", [builder("a", "a", kind, webhook(rx.url("/start")))],
               headers={"requester": "legacy-svc"})
    t = expect(resp, 201, "POST with requester")[0]
    check(t["requester"] == "legacy-svc", f"requester: {t['requester']}")
    resp = api("POST", "/task", [builder("b", "b", kind, webhook(rx.url("/start")))],
               headers={"requester": "legacy-svc", "X-Requester": "new-svc"})
    check(expect(resp, 201, "POST with both")[0]["requester"] == "new-svc",
          "X-Requester wins over requester")
    bid = resp[1]["x-batch-id"]
    got = expect(api("GET", "/batches?requester=new-svc&page_size=100"), 200, "by requester")
    check(bid in [b["batch_id"] for b in got] and all(b["requester"] == "new-svc" for b in got),
          f"GET /batches?requester=: {short(got)}")

    step("PUT with both counts 0 is a heartbeat: 202, the deadline moves")
    tid = t["id"]
    wait_status(tid, "Running")
    before = sql_value(f"SELECT deadline_at FROM tasks WHERE id = {q(tid)}")
    time.sleep(0.05)
    resp = api("PUT", f"/tasks/{tid}", {"new_success": 0, "new_failures": 0})
    check(resp[0] == 202, f"PUT 0/0: {resp[0]} {short(resp[3])}")
    after = sql_value(f"SELECT deadline_at FROM tasks WHERE id = {q(tid)}")
    check(after > before, f"the heartbeat should move the deadline: {before} -> {after}")
    check_error(api("GET", "/tasks?timeout=0"), 400, "timeout=0")
    check_error(api("GET", "/tasks?timeout=x"), 400, "timeout=x")
    check_error(api("GET", "/batches?created_after=yesterday"), 400, "created_after=yesterday")
    check_error(api("GET", "/batches?status=Nope"), 400, "status=Nope")


def step_report(rx):
    step("the SDK's functions and what each gave")
    functions = ["health", "ready", "create_tasks", "get_task", "list_tasks", "update_task",
                 "succeed_task", "fail_task", "batch_update", "cancel_task", "pause_task",
                 "get_dag", "list_batches", "TaskHandle::succeed", "TaskHandle::fail",
                 "TaskHandle::report_progress", "TaskHandle::update"]
    missing = [f for f in functions if f not in RESULTS]
    for f in functions:
        lines = RESULTS.get(f, ["NOT CALLED"])
        print(f"   {f}: {len(lines)} call(s)")
        for line in lines:
            print(f"      {line}")
    check(not missing, f"SDK functions not called: {missing}")
    failed = [f for f in functions if any(l.startswith("FAILED") for l in RESULTS[f])]
    check(not failed, f"SDK functions that failed: {failed}")


if __name__ == "__main__":
    run(step_health, step_create_and_read, step_lists, step_lifecycle, step_dag_links,
        step_priority, step_requester_and_heartbeat, step_report)

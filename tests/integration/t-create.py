"""t-create: POST /tasks creates batches (API.md, "Create a batch" and "Read").

One task with every field, defaults, many tasks in input order, large
metadata, unicode names, unknown fields, dedupe (204), Idempotency-Key
replays and concurrent creation.
"""

import datetime
import json
import threading
import uuid

from trlib import (STARTABLE, TASK_FIELDS, api, check, check_error, create, dep, detail_fields,
                   expect, get_task, held, is_ts, is_uuid, new_kind, q, run, short, sql, sql_count,
                   start_holder, step, task, wait_for, wait_status, webhook)

ACTION_FIELDS = {"id", "kind", "trigger", "condition", "params"}


def check_timestamps(t, what):
    for key in ("created_at", "last_updated"):
        check(is_ts(t[key]), f"{what}: {key} should be YYYY-MM-DDTHH:MM:SS.ffffffZ, got {t[key]!r}")
    created = datetime.datetime.strptime(t["created_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
    skew = abs((datetime.datetime.utcnow() - created).total_seconds())
    check(skew < 300, f"{what}: created_at {t['created_at']} should be now in UTC "
          f"(off by {skew:.0f} s)")
    check(t["started_at"] is None or is_ts(t["started_at"]),
          f"{what}: started_at should be null or a timestamp, got {t['started_at']!r}")
    check(t["ended_at"] is None, f"{what}: ended_at should be null, got {t['ended_at']!r}")


def step_one_full_task(rx):
    step("one task with every field: 201, X-Batch-ID, the full task object")
    kind = new_kind("t-create-full")
    start = webhook(rx.url("/start"), verb="Post", body={"any": "json", "n": [1, 2]},
                    headers={"X-Custom": "v"})
    t = task("ingest", name="Ingest A", kind=kind, timeout=120, priority=7,
             metadata={"tenant_id": 42, "nested": {"a": [1, 2]}}, on_start=start,
             on_success=[webhook(rx.url("/ok"), verb="Put")],
             on_failure=[{"kind": "Webhook", "trigger": "End",
                          "params": {"url": rx.url("/fail")}}],
             on_cancel=[webhook(rx.url("/cancel"), verb="Delete")],
             rules=[{"type": "Concurrency", "max_concurrency": 1000,
                     "matcher": {"kind": kind, "status": "Running", "fields": ["tenant_id"]}}])
    resp = api("POST", "/tasks", [t], headers={"X-Requester": "billing"})
    body = expect(resp, 201, "POST /tasks (one full task)")
    bid = resp[1].get("x-batch-id")
    check(is_uuid(bid), f"X-Batch-ID should be a lower-case UUID, got {bid!r}")
    check(resp[1].get("content-type", "").startswith("application/json"),
          f"201 Content-Type should be application/json, got {resp[1].get('content-type')!r}")
    check(isinstance(body, list) and len(body) == 1, f"expected a one-task array, got {short(body)}")
    c = body[0]
    check(set(c) == TASK_FIELDS,
          f"task fields: missing {sorted(TASK_FIELDS - set(c))}, extra {sorted(set(c) - TASK_FIELDS)}")
    check(is_uuid(c["id"]), f"id should be a UUID, got {c['id']!r}")
    expected = {"local_id": "ingest", "name": "Ingest A", "kind": kind, "priority": 7,
                "timeout": 120, "metadata": {"tenant_id": 42, "nested": {"a": [1, 2]}},
                "dependencies": [], "success": 0, "failures": 0, "failure_reason": None,
                "batch_id": bid, "requester": "billing"}
    for key, value in expected.items():
        check(c[key] == value, f"{key}: expected {value!r}, got {c[key]!r}")
    check(c["status"] in STARTABLE, f"status of a fresh task: expected one of {STARTABLE}, "
          f"got {c['status']!r}")
    check(c["rules"] == [{"type": "Concurency", "max_concurency": 1000,
                          "matcher": {"kind": kind, "status": "Running",
                                      "fields": ["tenant_id"]}}],
          f"rules: got {c['rules']!r}")
    check_timestamps(c, "created task")

    step("actions: trigger and condition from where each stands, params as given")
    check(len(c["actions"]) == 4, f"expected 4 actions, got {short(c['actions'])}")
    by_place = {}
    for a in c["actions"]:
        check(set(a) == ACTION_FIELDS, f"action fields: got {sorted(a)}")
        check(is_uuid(a["id"]), f"action id should be a UUID, got {a['id']!r}")
        check(a["kind"] == "Webhook", f"action kind: expected Webhook, got {a['kind']!r}")
        by_place[(a["trigger"], a["condition"])] = a["params"]
    want = {("Start", None): ("/start", "Post"), ("End", "Success"): ("/ok", "Put"),
            ("End", "Failure"): ("/fail", "Post"), ("Cancel", None): ("/cancel", "Delete")}
    check(set(by_place) == set(want),
          f"(trigger, condition) of the actions: expected {sorted(want, key=str)}, "
          f"got {sorted(by_place, key=str)}")
    for place, (path, verb) in want.items():
        p = by_place[place]
        check(p.get("url") == rx.url(path), f"{place} url: expected {rx.url(path)}, got {p.get('url')!r}")
        check(p.get("verb") == verb, f"{place} verb: expected {verb}, got {p.get('verb')!r}")
    sp = by_place[("Start", None)]
    check(sp.get("body") == {"any": "json", "n": [1, 2]}, f"on_start body: got {sp.get('body')!r}")
    check(sp.get("headers") == {"X-Custom": "v"}, f"on_start headers: got {sp.get('headers')!r}")

    step("GET /tasks/{id} shows the same task")
    g = get_task(c["id"])
    for key in TASK_FIELDS - {"status", "started_at", "last_updated"}:
        if key == "actions":
            check(sorted(g[key], key=lambda a: a["id"]) == sorted(c[key], key=lambda a: a["id"]),
                  f"GET actions differ from the create answer: {short(g[key])}")
        else:
            check(g[key] == c[key], f"GET {key}: expected {c[key]!r}, got {g[key]!r}")


def step_defaults(rx):
    step("defaults: timeout 60, priority 0, verb Post, requester anonymous")
    kind = new_kind("t-create-def")
    t = {"id": "x", "name": "minimal", "kind": kind,
         "on_start": {"kind": "Webhook", "params": {"url": rx.url("/start")}}}
    body, bid = create([t])
    c = body[0]
    for key, value in {"timeout": 60, "priority": 0, "metadata": None, "rules": [],
                       "dependencies": [], "requester": "anonymous", "local_id": "x",
                       "batch_id": bid}.items():
        check(c[key] == value, f"default {key}: expected {value!r}, got {c[key]!r}")
    check(len(c["actions"]) == 1, f"expected one action, got {short(c['actions'])}")
    a = c["actions"][0]
    check((a["trigger"], a["condition"]) == ("Start", None),
          f"on_start action: expected trigger Start, condition null, got {a['trigger']!r}, "
          f"{a['condition']!r}")
    check(a["params"].get("verb") == "Post", f"default verb: expected Post, got {a['params']!r}")
    check_timestamps(c, "minimal task")

    step("Content-Type application/json with parameters or in capitals is JSON too")
    for ctype in ("application/json; charset=utf-8", "Application/JSON"):
        resp = api("POST", "/tasks", [task("ct", kind=kind)], content_type=ctype)
        expect(resp, 201, f"POST /tasks with Content-Type {ctype!r}")


def step_many(rx):
    step("many tasks: input order, local ids, distinct ids, one batch")
    kind = new_kind("t-create-many")
    local_ids = [f"t{(i * 7) % 20:02d}" for i in range(20)]
    body, bid = create([task(lid, kind=kind, name=f"many {lid}") for lid in local_ids])
    check([t["local_id"] for t in body] == local_ids,
          f"order: expected {local_ids}, got {[t['local_id'] for t in body]}")
    check([t["name"] for t in body] == [f"many {lid}" for lid in local_ids], "names out of order")
    ids = [t["id"] for t in body]
    check(all(is_uuid(i) for i in ids) and len(set(ids)) == 20, f"ids not 20 distinct UUIDs: {ids}")
    check(all(t["batch_id"] == bid for t in body), "tasks of one POST must share its batch_id")
    check(sql_count(f"SELECT count(*) FROM tasks WHERE batch_id = {q(bid)}") == 20,
          "the database should hold the 20 tasks of the batch")


def step_metadata_size(rx):
    step("metadata of ~60 KiB is accepted and read back whole")
    kind = new_kind("t-create-meta")
    meta = {"blob": "x" * 61000, "n": 1}
    body, _ = create([task("big", kind=kind, metadata=meta)])
    check(get_task(body[0]["id"])["metadata"] == meta, "the 60 KiB metadata did not read back equal")

    step("metadata over 64 KiB is 400 at [0].metadata, and nothing is stored")
    kind = new_kind("t-create-meta-big")
    resp = api("POST", "/tasks", [task("huge", kind=kind, metadata={"blob": "x" * 66000})])
    err = check_error(resp, 400, "POST /tasks with 66 KB metadata")
    check("[0].metadata" in detail_fields(err), f"details should name [0].metadata: {short(err)}")
    check(sql_count(f"SELECT count(*) FROM tasks WHERE kind = {q(kind)}") == 0,
          "a refused batch must store nothing")


def step_metadata_as_sent(rx):
    step("metadata and webhook bodies are stored as sent: big integers, unicode keys, nesting")
    kind = new_kind("t-create-exact")
    meta = {"big": 2 ** 64, "huge": 123456789012345678901234567890, "neg": -(2 ** 63) - 1,
            "max": 2 ** 63 - 1, "frac": 0.5, "ключ 键 🔑": {"nested": [1, [2, {"deep": None}]]},
            "empty": {}, "list": [], "t": True, "f": False, "s": "a\"b\\c\n"}
    # Refusing numbers it cannot keep (400 naming the field) would be honest
    # too; storing another value than the one sent is not.
    resp = api("POST", "/tasks", [task("m", kind=kind, metadata=meta)])
    if resp[0] == 400:
        err = check_error(resp, 400, "POST /tasks with big integers in metadata")
        check(any(f.startswith("[0].metadata") for f in detail_fields(err)),
              f"a refused metadata should be named in details: {short(err)}")
    else:
        body = expect(resp, 201, "POST /tasks with big integers and unicode keys in metadata")
        g = get_task(body[0]["id"])
        diff = sorted(k for k in meta if g["metadata"] is None or g["metadata"].get(k) != meta[k])
        check(not diff, f"metadata stored other values than sent (201) for keys {diff}: sent "
              f"{ {k: meta[k] for k in diff} }, read back "
              f"{ {k: (g['metadata'] or {}).get(k) for k in diff} }")


def step_webhook_body_as_sent(rx):
    step("a webhook body is stored as sent: a big integer")
    kind = new_kind("t-create-exact-body")
    start = webhook(rx.url("/start"), body={"n": 2 ** 64, "m": {"k": "v"}})
    resp = api("POST", "/tasks", [task("b", kind=kind, on_start=start)])
    if resp[0] != 400:
        body = expect(resp, 201, "POST /tasks with a big integer in on_start params.body")
        g = get_task(body[0]["id"])
        sent = [a for a in g["actions"] if a["trigger"] == "Start"][0]["params"].get("body")
        check(sent == {"n": 2 ** 64, "m": {"k": "v"}},
              f"on_start params.body stored another value than sent (201): n = "
              f"{(sent or {}).get('n')}, sent {2 ** 64}")


def step_unicode(rx):
    step("unicode names (emoji, CJK, accents) are stored and read back")
    kind = new_kind("t-create-uni")
    names = ["🚀 Ünïcødé 任务 テスト ✓", "🚀" * 255, "任" * 255, "é" * 255]
    body, _ = create([task(f"u{i}", kind=kind, name=n) for i, n in enumerate(names)])
    for i, n in enumerate(names):
        check(body[i]["name"] == n, f"name {i}: created answer has {body[i]['name']!r}")
        check(get_task(body[i]["id"])["name"] == n, f"name {i}: GET does not read back {n[:20]!r}...")

    step("256-character names are 400 at [i].name")
    for n in ("🚀" * 256, "任" * 256, "a" * 256):
        kind = new_kind("t-create-uni-long")
        resp = api("POST", "/tasks", [task("ok", kind=kind), task("long", kind=kind, name=n)])
        err = check_error(resp, 400, f"POST /tasks with a 256-character name {n[:2]!r}...")
        check(detail_fields(err) == ["[1].name"], f"details should name [1].name only: {short(err)}")
        check(sql_count(f"SELECT count(*) FROM tasks WHERE kind = {q(kind)}") == 0,
              "a refused batch must store nothing")


def step_unknown_fields(rx):
    step("unknown fields are ignored and never stored")
    kind = new_kind("t-create-unknown")
    t = task("u", kind=kind, foo=1, extra={"x": 1}, metadata={"k": 1},
             on_start={"kind": "Webhook", "name": "start it", "color": "red",
                       "params": {"url": rx.url("/start"), "unknown_param": 5}},
             on_success=[{"kind": "Webhook", "name": "notify", "params": {"url": rx.url("/ok")}}],
             rules=[{"type": "Concurrency", "max_concurrency": 50, "note": "x",
                     "matcher": {"kind": kind, "status": "Running", "fields": [], "zz": 1}}])
    body, _ = create([t])
    g = get_task(body[0]["id"])
    for name, obj in (("created", body[0]), ("GET", g)):
        check(set(obj) == TASK_FIELDS, f"{name} task has unexpected fields "
              f"{sorted(set(obj) - TASK_FIELDS)}, misses {sorted(TASK_FIELDS - set(obj))}")
        for a in obj["actions"]:
            check(set(a) == ACTION_FIELDS, f"{name} action has fields {sorted(a)}")
            check("unknown_param" not in a["params"], f"{name} action params kept an unknown "
                  f"field: {a['params']}")
        check(obj["rules"] == [{"type": "Concurency", "max_concurency": 50,
                                "matcher": {"kind": kind, "status": "Running", "fields": []}}],
              f"{name} rules kept unknown fields: {obj['rules']}")
    text = json.dumps(g)
    for word in ("foo", "extra", "unknown_param", "color", "notify", "note", "zz"):
        check(f'"{word}"' not in text, f"GET output contains the unknown field {word!r}: {short(text)}")
    stored = sql(f"SELECT count(*) FROM actions WHERE task_id = {q(g['id'])} "
                 f"AND (params ? 'unknown_param' OR params::text LIKE '%notify%')")
    check(stored == [["0"]], "unknown action fields were stored in actions.params")


def step_dedupe(rx):
    step("dedupe: a batch whose every task is skipped answers 204 with X-Batch-ID")
    kind = new_kind("t-create-dedupe")
    orig, _ = create([task("orig", kind=kind, metadata={"tenant": 7}, timeout=86400)])
    orig_id = orig[0]["id"]
    wait_status(orig_id, "Running", 20)
    dedupe = [{"kind": kind, "status": "Running", "fields": ["tenant"]}]
    resp = api("POST", "/tasks", [task("dup", kind=kind, metadata={"tenant": 7},
                                       dedupe_strategy=dedupe)])
    code, headers, _, payload = resp
    check(code == 204, f"all-deduped batch: expected 204, got {code}: {short(payload)}")
    check(is_uuid(headers.get("x-batch-id")), f"204 needs an X-Batch-ID UUID, got {headers}")
    check(payload == b"", f"204 must have an empty body, got {short(payload)}")
    check(sql_count(f"SELECT count(*) FROM tasks WHERE kind = {q(kind)}") == 1,
          "a deduped task must not be stored")

    step("dedupe: a skipped task is left out; a dependency on it links to the existing task")
    other = new_kind("t-create-dedupe-child")
    tasks = [task("dup", kind=kind, metadata={"tenant": 7}, dedupe_strategy=dedupe),
             task("fresh", kind=kind, metadata={"tenant": 8}, dedupe_strategy=dedupe),
             task("child", kind=other, dependencies=[dep("dup")])]
    resp = api("POST", "/tasks", tasks)
    body = expect(resp, 201, "POST /tasks (partly deduped)")
    check([t["local_id"] for t in body] == ["fresh", "child"],
          f"expected tasks fresh, child, got {[t.get('local_id') for t in body]}")
    child = body[1]
    check(child["dependencies"] == [{"id": orig_id, "requires_success": True}],
          f"child dependencies: expected the existing task {orig_id}, got {child['dependencies']}")
    check(child["status"] == "Waiting", f"child of a Running task: expected Waiting, "
          f"got {child['status']}")

    step("Idempotency-Key on an all-deduped batch: the replay is 204 with the same X-Batch-ID")
    key = f"idem-{uuid.uuid4()}"
    dup = [task("dup", kind=kind, metadata={"tenant": 7}, dedupe_strategy=dedupe)]
    first = api("POST", "/tasks", dup, headers={"Idempotency-Key": key})
    again = api("POST", "/tasks", dup, headers={"Idempotency-Key": key})
    check(first[0] == 204 and again[0] == 204, f"expected 204 twice, got {first[0]}, {again[0]}")
    check(first[1].get("x-batch-id") == again[1].get("x-batch-id"),
          f"204 replay X-Batch-ID: {first[1].get('x-batch-id')} then {again[1].get('x-batch-id')}")


def step_dedupe_equality(rx):
    step("dedupe compares the listed fields for equality, not containment")
    kind = new_kind("t-create-dedupe-eq")
    orig, _ = create([task("orig", kind=kind, timeout=86400,
                           metadata={"cfg": {"x": 1, "y": 2}, "tags": ["a", "b"], "n": 1})])
    wait_status(orig[0]["id"], "Running", 20)
    wrong = []
    for meta, field in (({"cfg": {"x": 1}, "n": 1}, "cfg"), ({"tags": ["a"], "n": 1}, "tags"),
                        ({"tags": ["b", "a"], "n": 1}, "tags")):
        dd = [{"kind": kind, "status": "Running", "fields": [field, "n"]}]
        resp = api("POST", "/tasks", [task("new", kind=kind, metadata=meta, dedupe_strategy=dd)])
        if resp[0] != 201:
            wrong.append(f"metadata {json.dumps(meta)} deduped on [{field!r}, 'n'] -> {resp[0]} "
                         f"{short(resp[3], 200)}")
    check(not wrong, f"the existing Running task has metadata {json.dumps(orig[0]['metadata'])}: "
          f"a task whose field values differ is no duplicate, so expected 201 (created), got: "
          + "; ".join(wrong))
    dd = [{"kind": kind, "status": "Running", "fields": ["cfg", "tags"]}]
    resp = api("POST", "/tasks", [task("same", kind=kind, dedupe_strategy=dd,
                                        metadata={"cfg": {"y": 2, "x": 1}, "tags": ["a", "b"]})])
    check(resp[0] == 204, f"equal object and array values: expected 204 (deduped), got {resp[0]}")


def step_idempotency(rx):
    step("Idempotency-Key: the replay returns the same ids and X-Batch-ID, creates nothing")
    kind = new_kind("t-create-idem")
    key = f"idem-{uuid.uuid4()}"
    tasks = [task(f"i{n}", kind=kind) for n in range(3)]
    first = api("POST", "/tasks", tasks, headers={"Idempotency-Key": key})
    body1 = expect(first, 201, "POST /tasks with an Idempotency-Key")
    bid = first[1].get("x-batch-id")
    second = api("POST", "/tasks", tasks, headers={"Idempotency-Key": key})
    body2 = expect(second, 201, "the same POST /tasks replayed with its Idempotency-Key")
    check(second[1].get("x-batch-id") == bid,
          f"replay X-Batch-ID: expected {bid}, got {second[1].get('x-batch-id')}")
    check(isinstance(body2, list) and [t["id"] for t in body2] == [t["id"] for t in body1],
          f"replay ids: expected {[t['id'] for t in body1]}, got {short(body2)}")
    check(sql_count(f"SELECT count(*) FROM tasks WHERE kind = {q(kind)}") == 3,
          "the replay created tasks again")
    check(sql_count(f"SELECT count(*) FROM tasks WHERE batch_id = {q(bid)}") == 3,
          "the batch should hold exactly its 3 tasks")
    check(sql_count(f"SELECT count(*) FROM batches WHERE id = {q(bid)}") == 1,
          "the batch should exist once")

    step("the same Idempotency-Key sent by 6 clients at once: one batch; 201 with the same "
         "answer, or 409 while the first is in flight")
    kind2 = new_kind("t-create-idem-conc")
    key2 = f"idem-{uuid.uuid4()}"
    tasks2 = [task(f"j{n}", kind=kind2) for n in range(5)]
    answers, errors = [], []
    barrier = threading.Barrier(6)

    def send():
        try:
            barrier.wait(10)
            code, headers, body, payload = api("POST", "/tasks", tasks2,
                                               headers={"Idempotency-Key": key2})
            answers.append((code, headers.get("x-batch-id"),
                            [t["id"] for t in body] if isinstance(body, list) else payload))
        except Exception as e:  # reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=send) for _ in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    check(not errors and len(answers) == 6, f"concurrent replays: errors {errors[:2]}, "
          f"{len(answers)} answers")
    ok = [a for a in answers if a[0] == 201]
    check(ok and all(a[0] in (201, 409) for a in answers),
          f"concurrent replays: expected 201 or 409 each, at least one 201, got "
          f"{[(a[0], short(a[2], 200)) for a in answers][:3]}")
    check(len({a[1] for a in ok}) == 1 and len({tuple(a[2]) for a in ok}) == 1,
          f"concurrent replays got different batches or ids: {sorted({a[1] for a in ok})}")
    print(f"   answers: {sorted(a[0] for a in answers)}")
    check(sql_count(f"SELECT count(*) FROM tasks WHERE kind = {q(kind2)}") == 5,
          "concurrent replays should have created the 5 tasks once")

    step("a different Idempotency-Key creates a new batch")
    third = api("POST", "/tasks", tasks, headers={"Idempotency-Key": key + "-b"})
    expect(third, 201, "POST /tasks with another Idempotency-Key")
    check(third[1].get("x-batch-id") != bid, "another key must give another batch")
    check(sql_count(f"SELECT count(*) FROM tasks WHERE kind = {q(kind)}") == 6,
          "another key should have created 3 more tasks")


def step_idempotency_misuse(rx):
    step("an Idempotency-Key reused with another body: 422, nothing created")
    kind = new_kind("t-create-idem-misuse")
    key = f"idem-{uuid.uuid4()}"
    first = api("POST", "/tasks", [task("m0", kind=kind)], headers={"Idempotency-Key": key})
    expect(first, 201, "the first POST with the key")
    before = sql_count("SELECT count(*) FROM batches")
    other = api("POST", "/tasks", [task("m0", kind=kind), task("m1", kind=kind)],
                headers={"Idempotency-Key": key})
    check_error(other, 422, "the key with another body")
    check("different request" in other[2]["error"], f"422 says why: {other[2]}")
    check(sql_count("SELECT count(*) FROM batches") == before, "the 422 created a batch")
    check(sql_count(f"SELECT count(*) FROM tasks WHERE kind = {q(kind)}") == 1,
          "the 422 created tasks")
    again = api("POST", "/task", [task("m0", kind=kind)], headers={"Idempotency-Key": key})
    check(again[0] == 201 and again[1].get("x-batch-id") == first[1].get("x-batch-id"),
          f"the identical request (through the /task alias) still gets the first answer: "
          f"{again[0]} {short(again[3], 200)}")

    step("a second request with the key while the first is still processed: 409")
    kind = new_kind("t-create-idem-inflight")
    start_holder(kind)  # the big batch's tasks wait: no 4,000 start calls
    big = [held(f"b{n}", kind) for n in range(4000)]
    for attempt in range(3):  # the first must still be running when the second arrives
        key = f"idem-{uuid.uuid4()}"
        result = {}

        def first_request():
            result["first"] = api("POST", "/tasks", big, headers={"Idempotency-Key": key})

        th = threading.Thread(target=first_request)
        th.start()
        try:
            # In flight: its transaction holds the key's lock (taken first thing).
            wait_for(lambda: sql_count("SELECT count(*) FROM pg_stat_activity a JOIN pg_locks l "
                                       "ON l.pid = a.pid AND l.locktype = 'advisory' "
                                       "WHERE a.state = 'active' AND a.query LIKE "
                                       "'%tr_create_batch%' AND a.pid <> pg_backend_pid()") > 0
                     or not th.is_alive(), 30, "the big batch to take its key",
                     interval=0.005)
            second = api("POST", "/tasks", [task("s", kind=kind)],
                         headers={"Idempotency-Key": key})
        finally:
            th.join(120)
        if result["first"][0] != 201:  # the second reached the database first
            check(result["first"][0] == 422 and second[0] == 201,
                  f"big batch {result['first'][0]}, second {second[0]}")
            continue
        if second[0] == 409:
            break
        check(second[0] == 422, f"a second request after the first ended must be 422, got "
              f"{second[0]}: {short(second[3], 200)}")
    check_error(second, 409, "the key while its first request is in flight")
    check("still being processed" in second[2]["error"], f"409 says why: {second[2]}")
    replay = api("POST", "/tasks", big, headers={"Idempotency-Key": key})
    check(replay[0] == 201 and replay[1].get("x-batch-id") == result["first"][1]["x-batch-id"],
          "once the first is done, its identical retry gets its answer")
    expect(api("DELETE", f"/batches/{result['first'][1]['x-batch-id']}"), 200, "stop the batch")


def step_concurrent(rx):
    step("concurrent creation: 8 threads x 25 POSTs, all 201, distinct ids, all stored")
    kind = new_kind("t-create-conc")
    results, errors = [], []
    lock = threading.Lock()

    def worker(n):
        try:
            for i in range(25):
                code, headers, body, payload = api("POST", "/tasks", [task(f"c{n}-{i}", kind=kind)])
                with lock:
                    results.append((code, headers.get("x-batch-id"), body, payload))
        except Exception as e:  # reported below, in the main thread
            with lock:
                errors.append(f"thread {n}: {e!r}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    check(not any(th.is_alive() for th in threads), "creation threads did not finish in 120 s")
    check(not errors, f"errors in creation threads: {errors[:3]}")
    check(len(results) == 200, f"expected 200 answers, got {len(results)}")
    bad = [(c, short(p, 200)) for c, _, _, p in results if c != 201]
    check(not bad, f"{len(bad)} POSTs were not 201, e.g. {bad[:3]}")
    ids = [b[0]["id"] for _, _, b, _ in results]
    bids = [bid for _, bid, _, _ in results]
    check(len(set(ids)) == 200, f"task ids are not distinct: {len(set(ids))} distinct of 200")
    check(len(set(bids)) == 200, f"batch ids are not distinct: {len(set(bids))} distinct of 200")
    stored = {r[0] for r in sql(f"SELECT id FROM tasks WHERE kind = {q(kind)}")}
    check(stored == set(ids), f"the database holds {len(stored)} tasks of the kind; "
          f"{len(stored - set(ids))} unexpected, {len(set(ids) - stored)} missing")


if __name__ == "__main__":
    run(step_one_full_task, step_defaults, step_many, step_metadata_size, step_metadata_as_sent,
        step_webhook_body_as_sent, step_unicode,
        step_unknown_fields, step_dedupe, step_dedupe_equality, step_idempotency,
        step_idempotency_misuse, step_concurrent)

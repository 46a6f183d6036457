"""t-read-list: GET /tasks/{id} and GET /tasks (API.md, "Read" and "List").

The listed tasks are held Pending (a Running holder of their kind and a
Concurrency rule of 1), so that their statuses stay put while they are read.
"""

import json
import urllib.parse
import uuid

from trlib import (SUMMARY_FIELDS, TASK_FIELDS, api, check, check_error, create, detail_fields,
                   expect, get_task, held, new_kind, run, short, start_holder, step, task)


def listing(query, what=None):
    """GET /tasks?query; returns the list of summaries."""
    path = f"/tasks?{query}"
    body = expect(api("GET", path), 200, what or f"GET {path}")
    check(isinstance(body, list), f"GET {path}: expected a JSON array, got {short(body)}")
    return body


def ids_of(summaries):
    return [s["id"] for s in summaries]


def meta_query(obj):
    return "metadata=" + urllib.parse.quote(json.dumps(obj), safe="")


FIXTURE = []  # the Fixture, once step_setup made it


def fixture():
    check(FIXTURE, "no fixture: the set-up part failed")
    return FIXTURE[0]


class Fixture:
    """A holder of kind K (Running), batch one (n0..n4), batch two (m0, m1)."""

    def __init__(self):
        self.kind = new_kind("t-list")
        self.tag = uuid.uuid4().hex
        self.holder = start_holder(self.kind)
        one, self.b1 = create([held(f"n{i}", self.kind, name=f"{self.tag}-n{i}",
                                    metadata={"tag": self.tag, "i": i}) for i in range(5)])
        two, self.b2 = create([held(f"m{i}", self.kind, name=f"{self.tag}-m{i}",
                                    metadata={"tag": self.tag, "j": i}) for i in range(2)])
        self.n = [t["id"] for t in one]
        self.m = [t["id"] for t in two]
        for t in one + two:
            check(t["status"] == "Pending", f"held task {t['local_id']}: expected Pending, "
                  f"got {t['status']}")


def step_read(rx):
    f = fixture()
    step("GET /tasks/{id}: the full task; /task/{id} is the same")
    t = get_task(f.n[2])
    check(set(t) == TASK_FIELDS, f"task fields: missing {sorted(TASK_FIELDS - set(t))}, "
          f"extra {sorted(set(t) - TASK_FIELDS)}")
    check((t["id"], t["local_id"], t["name"], t["status"], t["batch_id"]) ==
          (f.n[2], "n2", f"{f.tag}-n2", "Pending", f.b1), f"GET read back wrong values: {short(t)}")
    alias = expect(api("GET", f"/task/{f.n[2]}"), 200, "GET /task/{id}")
    check(alias == t, f"GET /task/{{id}} differs from /tasks/{{id}}: {short(alias)}")

    step("an unknown UUID is 404; a malformed id is 400")
    unknown = str(uuid.uuid4())
    check_error(api("GET", f"/tasks/{unknown}"), 404, f"GET /tasks/{unknown}")
    check_error(api("GET", f"/task/{unknown}"), 404, f"GET /task/{unknown}")
    for bad in ("not-a-uuid", "1234", f.n[2] + "0", f.n[2][:-1], f.n[2].replace("-", "")):
        check_error(api("GET", f"/tasks/{bad}"), 400, f"GET /tasks/{bad}")


def step_list_order_and_shape(rx):
    f = fixture()
    step("list: summaries, newest first")
    got = listing(f"batch_id={f.b1}")
    check(ids_of(got) == f.n[::-1], f"batch one newest first: expected {f.n[::-1]}, got {ids_of(got)}")
    for s in got:
        check(set(s) == SUMMARY_FIELDS, f"summary fields: missing {sorted(SUMMARY_FIELDS - set(s))}, "
              f"extra {sorted(set(s) - SUMMARY_FIELDS)}")
    full = get_task(f.n[0])
    s = got[-1]
    for key in SUMMARY_FIELDS:
        check(s[key] == full[key], f"summary {key}: {s[key]!r} differs from GET's {full[key]!r}")

    want = f.m[::-1] + f.n[::-1] + [f.holder]
    got = listing(f"kind={f.kind}")
    check(ids_of(got) == want, f"kind filter, newest first across batches: expected {want}, "
          f"got {ids_of(got)}")
    alias = expect(api("GET", f"/task?kind={f.kind}"), 200, "GET /task?kind=")
    check(ids_of(alias) == want, f"GET /task (alias) lists differently: {ids_of(alias)}")


def step_filters(rx):
    f = fixture()
    step("filters: status (any letter case), name substring, batch_id, metadata")
    held_ids = f.m[::-1] + f.n[::-1]
    cases = [
        (f"kind={f.kind}&status=Pending", held_ids),
        (f"kind={f.kind}&status=pending", held_ids),
        (f"kind={f.kind}&status=Running", [f.holder]),
        (f"kind={f.kind}&status=Success", []),
        (f"name={f.tag}-n3", [f.n[3]]),
        (f"name={f.tag}", held_ids),
        (f"name={f.tag}-m", f.m[::-1]),
        (f"name={f.tag}&status=Running", []),
        (f"batch_id={f.b1}", f.n[::-1]),
        (f"batch_id={f.b2}", f.m[::-1]),
        (f"batch_id={f.b2}&kind=nope-{f.tag}", []),
        (meta_query({"tag": f.tag}), held_ids),
        (meta_query({"tag": f.tag, "i": 2}), [f.n[2]]),
        (meta_query({"tag": f.tag, "j": 1}), [f.m[1]]),
        (meta_query({"tag": f.tag, "i": 99}), []),
        (meta_query({"tag": f.tag}) + f"&batch_id={f.b2}", f.m[::-1]),
    ]
    for query, want in cases:
        got = ids_of(listing(query))
        check(got == want, f"GET /tasks?{query}: expected {want}, got {got}")
        print(f"   ok: ?{query} -> {len(got)}")


def step_pagination(rx):
    f = fixture()
    step("pagination: pages of 2 over 5 tasks, last page, beyond the end, per_page, page=-1")
    n = f.n[::-1]  # newest first
    b = f"batch_id={f.b1}"
    cases = [
        (f"{b}&page_size=2&page=0", n[0:2]),
        (f"{b}&page_size=2", n[0:2]),
        (f"{b}&page_size=2&page=1", n[2:4]),
        (f"{b}&page_size=2&page=2", n[4:5]),
        (f"{b}&page_size=2&page=3", []),
        (f"{b}&page_size=2&page=1000000", []),
        (f"{b}&per_page=2&page=1", n[2:4]),
        (f"{b}&page_size=2&page=-1", n[0:2]),
        (f"{b}&page_size=3&page=1", n[3:5]),
    ]
    for query, want in cases:
        got = ids_of(listing(query))
        check(got == want, f"GET /tasks?{query}: expected {want}, got {got}")
        print(f"   ok: ?{query} -> {len(got)}")

    step("page size: default 50, capped at 100")
    big, b3 = create([held(f"p{i}", f.kind, name=f"{f.tag}-p{i}") for i in range(105)])
    newest = [t["id"] for t in big][::-1]
    got = ids_of(listing(f"batch_id={b3}&page_size=1000"))
    check(got == newest[:100], f"page_size=1000: expected the 100 newest, got {len(got)} tasks")
    got = ids_of(listing(f"batch_id={b3}&per_page=1000"))
    check(len(got) == 100, f"per_page=1000: expected 100 tasks, got {len(got)}")
    got = ids_of(listing(f"batch_id={b3}"))
    check(got == newest[:50], f"default page size: expected the 50 newest, got {len(got)} tasks")
    got = ids_of(listing(f"batch_id={b3}&page=2"))
    check(got == newest[100:], f"default page 2: expected the 5 oldest, got {len(got)} tasks")
    got = ids_of(listing(f"batch_id={b3}&page_size=100&page=1"))
    check(got == newest[100:], f"page_size=100 page=1: expected the 5 oldest, got {len(got)}")


def step_bad_queries(rx):
    f = fixture()
    step("bad queries are 400 naming the parameter")
    cases = [
        ("page=abc", "page"),
        ("page=1.5", "page"),
        ("page=", "page"),
        ("page_size=abc", "page_size"),
        ("per_page=x", "per_page"),
        ("status=Nope", "status"),
        ("batch_id=xyz", "batch_id"),
        (f"batch_id={f.b1}x", "batch_id"),
        ("metadata=notjson", "metadata"),
        (meta_query([1, 2]), "metadata"),
        ("metadata=" + urllib.parse.quote('{"a": '), "metadata"),
    ]
    for query, field in cases:
        err = check_error(api("GET", f"/tasks?{query}"), 400, f"GET /tasks?{query}")
        check(field in detail_fields(err) or field in err["error"],
              f"GET /tasks?{query}: the error should name {field!r}: {short(err)}")
        print(f"   ok: ?{query} -> 400")


def step_setup(rx):
    step("set-up: a Running holder and two batches of held (Pending) tasks")
    FIXTURE.append(Fixture())


def step_name_and_kind_text(rx):
    step("name is a plain substring (% and _ are no wildcards, + is a space); kind is exact")
    kind = new_kind("t-list-text")
    tag = uuid.uuid4().hex
    names = [f"{tag} 100%_done", f"{tag} 100xxdone", f"{tag} 任务 ünï", f"{tag}-Case"]
    body, _ = create([task(f"s{i}", kind=kind, name=n) for i, n in enumerate(names)])
    ids = [t["id"] for t in body]
    quote = urllib.parse.quote
    cases = [
        (f"name={quote(tag + ' 100%_')}", [ids[0]]),
        (f"name={quote(tag + ' 100_')}", []),
        (f"name={tag}+100", [ids[1], ids[0]]),
        (f"name={tag}%20100", [ids[1], ids[0]]),
        (f"name={quote('任务 ünï')}&kind={kind}", [ids[2]]),
        (f"name={tag}-case", []),
        (f"kind={kind}", ids[::-1]),
        (f"kind={kind[:-1]}", []),
        (f"kind={kind.upper()}", []),
    ]
    for query, want in cases:
        got = ids_of(listing(query))
        check(got == want, f"GET /tasks?{query}: expected {want}, got {got}")
        print(f"   ok: ?{query} -> {len(got)}")


def step_compact_json(rx):
    step("every JSON answer is compact: no space after ':' nor ',' outside strings")
    kind = f"compact-{uuid.uuid4().hex[:8]}"
    meta = {"note": "a : b, c", "list": [1, 2, {"k": "v , w"}], "n": -9}
    resp = api("POST", "/tasks", [task("c1", kind=kind, metadata=meta)])
    expect(resp, 201, "POST /tasks")
    tid = resp[2][0]["id"]
    answers = [("POST /tasks", resp), ("GET /tasks/{id}", api("GET", f"/tasks/{tid}")),
               ("GET /tasks", api("GET", f"/tasks?kind={kind}")),
               ("GET /batches/{id}", api("GET", f"/batches/{resp[1]['x-batch-id']}")),
               ("GET /tasks/{id}/history", api("GET", f"/tasks/{tid}/history")),
               ("GET /tasks/{id}/blockers", api("GET", f"/tasks/{tid}/blockers")),
               ("GET /health", api("GET", "/health")),
               ("an error", api("GET", f"/tasks/{uuid.uuid4()}")),
               ("a validation error", api("POST", "/tasks", [{"name": "x"}]))]
    for what, (code, _, body, raw) in answers:
        check(body is not None, f"{what}: not JSON: {raw[:200]!r}")
        want = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        check(raw.strip() == want, f"{what} is not compact:\n got  {raw[:300]!r}\n want {want[:300]!r}")
    check(api("GET", f"/tasks/{tid}")[2]["metadata"] == meta, "metadata changed")
    print(f"   ok: {len(answers)} answers compact, strings kept as sent")


if __name__ == "__main__":
    run(step_setup, step_read, step_list_order_and_shape, step_filters, step_pagination,
        step_bad_queries, step_name_and_kind_text, step_compact_json)

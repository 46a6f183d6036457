"""clientshapes: the types of the original service's official client (the
Rust SDK of tinyest-org/task_runner, sdk/src/types.rs and error.rs), written
down as small schemas, and a reader that accepts a JSON value exactly when
serde, with the SDK's derives and default settings, would:

- a field that is not an Option and has no #[serde(default)] must be there
  (serde_json::Value included: a missing Value is an error, null is a value);
- an Option field may be missing or null; a #[serde(default)] field may be
  missing, but not null unless its type is an Option;
- integers must be JSON integers within the Rust type's range (i32, i64,
  u32); strings, booleans, arrays and objects must be of that JSON type;
- an enum (unit variants) is one of its variant names, spelled exactly;
  #[serde(tag = "type")] reads the variant from "type";
- uuid::Uuid is a hyphenated (or simple) hex string; chrono's
  DateTime<Utc> is an RFC 3339 date-time with any offset;
- unknown fields are ignored (no deny_unknown_fields in the SDK).

read(schema, value, path) returns nothing or raises ShapeError naming the
path and what serde would have said.
"""

import re

I32 = ("int", -2**31, 2**31 - 1)
I64 = ("int", -2**63, 2**63 - 1)
U32 = ("int", 0, 2**32 - 1)
STR = ("str",)
BOOL = ("bool",)
UUID = ("uuid",)
DATETIME = ("datetime",)
VALUE = ("value",)  # serde_json::Value: any JSON, null included


def opt(t):
    """Option<T>: missing or null is None."""
    return ("option", t)


def default(t):
    """#[serde(default)]: may be missing; when present it is read as t."""
    return ("default", t)


def vec(t):
    return ("vec", t)


def str_map(t):
    return ("map", t)


def enum(*variants):
    return ("enum", variants)


def struct(type_name, /, **fields):
    return ("struct", type_name, fields)


def tagged(tag, **variants):
    """#[serde(tag = tag)] enum of struct (or newtype-of-struct) variants."""
    return ("tagged", tag, variants)


class ShapeError(Exception):
    pass


_UUID_RE = re.compile(r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                      r"[0-9a-fA-F]{12}|[0-9a-fA-F]{32})$")
_RFC3339_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def _fail(path, msg):
    raise ShapeError(f"{path or '<root>'}: {msg}")


def read(schema, value, path=""):
    kind = schema[0]
    if kind == "option":
        if value is None:
            return None
        return read(schema[1], value, path)
    if kind == "default":
        return read(schema[1], value, path)
    if kind == "int":
        _, lo, hi = schema
        if isinstance(value, bool) or not isinstance(value, int):
            _fail(path, f"invalid type: {_json_type(value)}, expected an integer")
        if not lo <= value <= hi:
            _fail(path, f"invalid value: {value}, expected an integer in {lo}..={hi}")
    elif kind == "str":
        if not isinstance(value, str):
            _fail(path, f"invalid type: {_json_type(value)}, expected a string")
    elif kind == "bool":
        if not isinstance(value, bool):
            _fail(path, f"invalid type: {_json_type(value)}, expected a boolean")
    elif kind == "uuid":
        if not isinstance(value, str) or not _UUID_RE.match(value):
            _fail(path, f"invalid UUID {value!r}")
    elif kind == "datetime":
        if not isinstance(value, str) or not _RFC3339_RE.match(value):
            _fail(path, f"invalid RFC 3339 date-time {value!r}")
    elif kind == "value":
        pass
    elif kind == "vec":
        if not isinstance(value, list):
            _fail(path, f"invalid type: {_json_type(value)}, expected a sequence")
        for i, v in enumerate(value):
            read(schema[1], v, f"{path}[{i}]")
    elif kind == "map":
        if not isinstance(value, dict):
            _fail(path, f"invalid type: {_json_type(value)}, expected a map")
        for k, v in value.items():
            read(schema[1], v, f"{path}.{k}")
    elif kind == "enum":
        if not isinstance(value, str):
            _fail(path, f"invalid type: {_json_type(value)}, expected a variant name")
        if value not in schema[1]:
            _fail(path, f"unknown variant `{value}`, expected one of {list(schema[1])}")
    elif kind == "struct":
        _read_struct(schema, value, path)
    elif kind == "tagged":
        _, tag, variants = schema
        if not isinstance(value, dict):
            _fail(path, f"invalid type: {_json_type(value)}, expected an internally tagged enum")
        if tag not in value:
            _fail(path, f"missing field `{tag}`")
        if value[tag] not in variants:
            _fail(f"{path}.{tag}", f"unknown variant `{value[tag]}`, expected one of "
                  f"{list(variants)}")
        _read_struct(variants[value[tag]], value, path)
    else:
        raise AssertionError(f"unknown schema kind {kind}")


def _read_struct(schema, value, path):
    _, name, fields = schema
    if not isinstance(value, dict):
        _fail(path, f"invalid type: {_json_type(value)}, expected struct {name}")
    for key, ftype in fields.items():
        fpath = f"{path}.{key}" if path else key
        if key not in value:
            if ftype[0] in ("option", "default"):
                continue
            _fail(path, f"missing field `{key}` (struct {name})")
        read(ftype, value[key], fpath)


def _json_type(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return f"boolean `{str(v).lower()}`"
    if isinstance(v, int):
        return f"integer `{v}`"
    if isinstance(v, float):
        return f"floating point `{v}`"
    if isinstance(v, str):
        return f"string {v!r}"
    if isinstance(v, list):
        return "sequence"
    return "map"


# ---------------------------------------------------------------------------
# The SDK's types (sdk/src/types.rs, sdk/src/error.rs), the union of its
# published versions: fields added later are #[serde(default)] or Option.
# ---------------------------------------------------------------------------

StatusKind = enum("Waiting", "Pending", "Claimed", "Running", "Failure", "Success", "Paused",
                  "Canceled")
ActionKindEnum = enum("Webhook")
TriggerKind = enum("Start", "End", "Cancel")
HttpVerb = enum("Get", "Post", "Delete", "Put", "Patch")

WebhookParams = struct("WebhookParams", url=STR, verb=HttpVerb, body=opt(VALUE),
                       headers=opt(str_map(STR)))
Matcher = struct("Matcher", status=StatusKind, kind=STR, fields=vec(STR))
ConcurencyRule = struct("ConcurencyRule", max_concurency=I32, matcher=Matcher)
Strategy = tagged("type", Concurency=ConcurencyRule)
Rules = vec(Strategy)  # a newtype struct: read as its Vec

ActionDto = struct("ActionDto", kind=ActionKindEnum, trigger=TriggerKind, params=VALUE)

BasicTaskDto = struct(
    "BasicTaskDto", id=UUID, name=STR, kind=STR, status=StatusKind, created_at=DATETIME,
    started_at=opt(DATETIME), success=I32, failures=I32, expected_count=opt(I32),
    ended_at=opt(DATETIME), batch_id=opt(UUID), dead_end_barrier=default(BOOL),
    priority=default(I32))

TaskDto = struct(
    "TaskDto", id=UUID, name=STR, kind=STR, status=StatusKind, timeout=I32, rules=Rules,
    metadata=VALUE, actions=vec(ActionDto), created_at=DATETIME, started_at=opt(DATETIME),
    ended_at=opt(DATETIME), last_updated=DATETIME, success=I32, failures=I32,
    expected_count=opt(I32), failure_reason=opt(STR), batch_id=opt(UUID),
    dead_end_barrier=default(BOOL), priority=default(I32))

LinkDto = struct("LinkDto", parent_id=UUID, child_id=UUID, requires_success=BOOL)
DagDto = struct("DagDto", tasks=vec(BasicTaskDto), links=vec(LinkDto))

BatchStatusCounts = struct("BatchStatusCounts", waiting=I64, pending=I64, claimed=I64,
                           running=I64, success=I64, failure=I64, paused=I64, canceled=I64)
BatchSummaryDto = struct("BatchSummaryDto", batch_id=UUID, total_tasks=I64,
                         first_created_at=DATETIME, latest_updated_at=DATETIME,
                         status_counts=BatchStatusCounts, kinds=vec(STR))

HealthResponse = struct("HealthResponse", status=STR, database=STR, pool_size=U32,
                        pool_idle=U32)
ReadyResponse = struct("ReadyResponse", status=STR, reason=opt(STR))

# What make_api_error reads from any non-2xx answer; when this fails to parse
# the client's user gets only "HTTP <status>".
ApiErrorBody = struct("ApiErrorBody", error=opt(STR), details=opt(vec(STR)))

-- 0001: the tables.
--
-- Everything that must survive a crash lives here: tasks and their state,
-- dependency links, actions, batches, idempotency keys, the outbox of webhook
-- calls (deliveries) the worker works through, the audit trail and the
-- metric counters. Columns for later features (not_before for scheduled
-- starts, retry_at and attempt for retries) exist so those features need no
-- table rewrite. The functions that work on these tables are in
-- sql/functions/ (re-applied by scripts/migrate after the migrations).
--
-- Versions 2 to 7 of the first layout held functions (now in sql/functions/)
-- and the table metric_deltas (now here); a database made by them has every
-- table below already and goes on with 0008.

CREATE TABLE batches (
    id          uuid PRIMARY KEY,
    requester   text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tasks (
    id             uuid PRIMARY KEY,
    seq            bigserial NOT NULL,  -- insertion order: "older first" and stable paging
    batch_id       uuid NOT NULL REFERENCES batches (id),
    local_id       text NOT NULL,
    name           text NOT NULL,
    kind           text NOT NULL,
    status         text NOT NULL CHECK (status IN ('Waiting', 'Pending', 'Claimed', 'Running',
                                                   'Success', 'Failure', 'Canceled', 'Paused')),
    priority       integer NOT NULL DEFAULT 0,
    timeout        integer NOT NULL DEFAULT 60,          -- heartbeat timeout, seconds
    metadata       jsonb,
    rules          jsonb NOT NULL DEFAULT '[]',          -- normalized concurrency rules
    open_parents   integer NOT NULL DEFAULT 0,           -- parents not yet ended
    attempt        integer NOT NULL DEFAULT 0,           -- start attempts so far
    not_before     timestamptz,                          -- scheduled start (later feature)
    retry_at       timestamptz,                          -- next retry (later feature)
    created_at     timestamptz NOT NULL DEFAULT now(),
    started_at     timestamptz,
    ended_at       timestamptz,
    last_updated   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at   timestamptz,                          -- last sign of life once started
    deadline_at    timestamptz,                          -- heartbeat_at + timeout while Running
    success        bigint NOT NULL DEFAULT 0,
    failures       bigint NOT NULL DEFAULT 0,
    failure_reason text
);

-- Lookups by status and by kind use the composite indexes below, which
-- lead with those columns (a separate single-column index would only cost
-- every insert and status change).
CREATE INDEX tasks_created_idx ON tasks (created_at DESC, seq DESC);
CREATE INDEX tasks_status_kind_idx ON tasks (status, kind);
CREATE INDEX tasks_batch_idx ON tasks (batch_id);
-- List pages filtered by status or kind, newest first.
CREATE INDEX tasks_status_created_idx ON tasks (status, created_at DESC, seq DESC);
CREATE INDEX tasks_kind_created_idx ON tasks (kind, created_at DESC, seq DESC);
-- The worker's queue: runnable tasks, highest priority then oldest.
CREATE INDEX tasks_runnable_idx ON tasks (priority DESC, seq) WHERE status = 'Pending';
-- The heartbeat timeout scan.
CREATE INDEX tasks_deadline_idx ON tasks (deadline_at) WHERE status = 'Running';
-- Metadata containment filters (list, dedupe, rules).
CREATE INDEX tasks_metadata_idx ON tasks USING gin (metadata jsonb_path_ops);

CREATE TABLE task_links (
    parent_id        uuid NOT NULL REFERENCES tasks (id),
    child_id         uuid NOT NULL REFERENCES tasks (id),
    requires_success boolean NOT NULL DEFAULT false,
    PRIMARY KEY (parent_id, child_id)
);
CREATE INDEX task_links_child_idx ON task_links (child_id);
-- (parent_id lookups use the primary key, which leads with it.)

CREATE TABLE actions (
    id         uuid PRIMARY KEY,
    task_id    uuid NOT NULL REFERENCES tasks (id),
    kind       text NOT NULL DEFAULT 'Webhook',
    trigger    text NOT NULL CHECK (trigger IN ('Start', 'End', 'Cancel')),
    condition  text CHECK (condition IN ('Success', 'Failure')),
    params     jsonb NOT NULL,
    position   integer NOT NULL,                  -- order as declared; registered ones last
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX actions_task_trigger_idx ON actions (task_id, trigger);

CREATE TABLE idempotency_keys (
    requester   text NOT NULL,
    key         text NOT NULL,
    batch_id    uuid NOT NULL,
    status_code integer,
    body        text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (requester, key)
);

-- The outbox: one row per webhook call (a delivery); attempts are its HTTP tries.
-- queued -> inflight -> done | dead (end/cancel calls that failed every attempt)
--                            | failed (on_start calls that failed every attempt)
CREATE TABLE deliveries (
    id          bigserial PRIMARY KEY,
    task_id     uuid NOT NULL REFERENCES tasks (id),
    action_id   uuid NOT NULL REFERENCES actions (id),
    trigger     text NOT NULL,
    outcome     text,                          -- the task status an end/cancel call reports
    attempt     integer NOT NULL DEFAULT 0,    -- the task's start attempt (start calls)
    state       text NOT NULL DEFAULT 'queued'
                CHECK (state IN ('queued', 'inflight', 'done', 'dead', 'failed')),
    attempts    integer NOT NULL DEFAULT 0,
    next_at     timestamptz NOT NULL DEFAULT now(),
    lease_until timestamptz,
    owner       integer,                       -- the worker holding it while inflight
    last_error  text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
CREATE INDEX deliveries_queued_idx ON deliveries (next_at) WHERE state = 'queued';
CREATE INDEX deliveries_inflight_idx ON deliveries (lease_until) WHERE state = 'inflight';
CREATE INDEX deliveries_dead_idx ON deliveries (finished_at DESC, id DESC) WHERE state = 'dead';
CREATE INDEX deliveries_task_idx ON deliveries (task_id);

-- The audit trail: every creation, status change, update and webhook attempt
-- of a task, written in the transaction of the change (sql/functions/). actor is the API caller (X-Requester) or
-- "worker". No primary key nor foreign key: rows are only ever read by task,
-- in insertion order, and tasks are never deleted; each index less keeps the
-- insert of a 10,000-task batch cheap.
CREATE TABLE task_events (
    id          bigserial NOT NULL,           -- order of the events
    task_id     uuid NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    event       text NOT NULL,                -- created, status, paused, resumed, canceled,
                                              -- updated, progress, webhook, replay
    actor       text NOT NULL,
    from_status text,
    to_status   text,
    detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX task_events_task_idx ON task_events (task_id, id);

-- Counters of GET /metrics, totals over every process. Each backend adds to
-- its own shard (pg_backend_pid() % 16) so that concurrent transactions
-- rarely wait for one another's row; the scrape sums the shards. A histogram
-- is stored as counters: name_bucket (cumulative, with an "le" label),
-- name_sum (micro-units) and name_count. first_at orders the values of the
-- "kind" label by first appearance (see tr_metrics_scrape).
CREATE TABLE metric_counters (
    name     text NOT NULL,
    labels   jsonb NOT NULL,
    shard    integer NOT NULL,
    value    bigint NOT NULL,
    first_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, labels, shard)
);

-- Task counters counted in the transaction of the change: one appended row
-- per counting statement (no index, no row shared between transactions, so
-- exact and cheap), folded into metric_counters by the processes' periodic
-- flush (tr_metrics_fold). The scrape sums both tables.
CREATE TABLE metric_deltas (
    name   text NOT NULL,
    labels jsonb NOT NULL,
    n      bigint NOT NULL,
    at     timestamptz NOT NULL DEFAULT now()  -- becomes first_at when folded
);

-- The columns the worker needs to make a call (tr_claim, tr_take_deliveries).
CREATE TYPE tr_call AS (
    delivery_id  bigint,
    task_id      uuid,
    batch_id     uuid,
    trigger      text,
    outcome      text,
    params       jsonb,
    attempts     integer,
    task_attempt integer,
    idem_key     text
);

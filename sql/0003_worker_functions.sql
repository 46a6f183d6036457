-- 0003: what the worker calls. Any number of workers may run these at once:
-- runnable tasks and deliveries are taken with FOR UPDATE SKIP LOCKED, and
-- every rule key is counted under a transaction-scoped advisory lock, so a
-- rule's count can never be exceeded by two workers deciding at once.
--
-- Vocabulary: a *task* is what a client created; a *delivery* is one webhook
-- call for it (a row of deliveries); an *attempt* is one HTTP try of it.
--
-- The worker's changes are audited with the actor "worker": every function
-- here that changes tasks sets it first. Each attempt's outcome is recorded
-- as a "webhook" event of its task. At the end: what the API reads of the
-- worker's state (blockers of a task, dead letters).

-- The advisory lock class under which each worker holds its owner id for
-- the life of its session; inflight deliveries of an owner whose lock is gone
-- belong to a dead worker and are taken back at once.
CREATE FUNCTION tr_worker_lock_class() RETURNS integer
LANGUAGE sql IMMUTABLE AS $$ SELECT 7275 $$;

-- The columns the worker needs to make a call.
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

CREATE FUNCTION tr_call_of(d deliveries) RETURNS tr_call
LANGUAGE sql STABLE AS $$
    SELECT ROW(d.id, d.task_id, t.batch_id, d.trigger, d.outcome, a.params, d.attempts,
               d.attempt,
               d.task_id || ':' || lower(d.trigger)
               || CASE WHEN d.trigger = 'End' THEN ':' || lower(d.outcome) ELSE '' END
               || ':' || d.action_id)::tr_call
    FROM tasks t, actions a WHERE t.id = d.task_id AND a.id = d.action_id
$$;

-- How many tasks take a place under a rule whose matcher is (p_kind,
-- p_status) for the key p_key (tr_matcher_key of the task's metadata): tasks
-- of that kind, in that status (Claimed counting as Running), with the same
-- values of the key's fields. The worker (tr_rules_allow) and GET
-- /tasks/{id}/blockers both count with this, so they never disagree.
-- VOLATILE on purpose: each call must see what other workers committed up
-- to the advisory lock its caller just took, not an older snapshot.
CREATE FUNCTION tr_rule_count(p_kind text, p_status text, p_key jsonb) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_n bigint;
BEGIN
    SELECT count(*) INTO v_n FROM tasks x
    WHERE x.kind = p_kind
      AND (x.status = p_status OR (p_status = 'Running' AND x.status = 'Claimed'))
      AND tr_matches_key(x.metadata, p_key);
    RETURN v_n;
END
$$;

-- Whether task t may start now under every one of its rules. Takes the
-- advisory lock of each rule key (held until commit) before counting.
CREATE FUNCTION tr_rules_allow(t tasks) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    r      jsonb;
    v_key  jsonb;
    v_kind text;
    v_st   text;
BEGIN
    FOR r IN SELECT jsonb_array_elements(t.rules) LOOP
        v_kind := r -> 'matcher' ->> 'kind';
        v_st := r -> 'matcher' ->> 'status';
        v_key := tr_matcher_key(t.metadata, r -> 'matcher' -> 'fields');
        PERFORM pg_advisory_xact_lock(hashtextextended(
            'rule:' || v_kind || ':' || v_st || ':' || v_key::text, 0));
        IF tr_rule_count(v_kind, v_st, v_key) >= (r ->> 'max_concurrency')::bigint THEN
            RETURN false;
        END IF;
    END LOOP;
    RETURN true;
END
$$;

-- Takes up to p_limit runnable tasks, highest priority then oldest, that
-- their rules allow; marks them Claimed and returns their start calls
-- (already inflight for p_owner until p_lease from now). At most p_scan
-- runnable tasks are looked at, so the cost does not grow with the queue.
-- Each runnable task passed over because a rule is full counts in
-- taskrunner_tasks_blocked_by_rule_total.
CREATE FUNCTION tr_claim(p_owner integer, p_limit integer, p_lease_ms integer,
                         p_scan integer DEFAULT 5000) RETURNS SETOF tr_call
LANGUAGE plpgsql AS $$
DECLARE
    t         tasks;
    v_free    uuid[] := '{}';  -- candidates without rules, claimed together below
    v_claimed uuid[] := '{}';
    v_full    text[] := '{}';  -- rule keys found full in this call
    v_rules   text;
    v_blocked bigint := 0;
BEGIN
    PERFORM tr_set_actor('worker');
    -- Rows are read without locks: a task passed over (its rule is full)
    -- is never locked or written, so scanning past many of them is cheap.
    FOR t IN SELECT * FROM tasks
             WHERE status = 'Pending' AND (not_before IS NULL OR not_before <= now())
             ORDER BY priority DESC, seq
             LIMIT p_scan
    LOOP
        IF t.rules = '[]' THEN
            v_free := v_free || t.id;
        ELSE
            v_rules := t.kind || t.rules::text || tr_matcher_key(t.metadata,
                           (SELECT jsonb_agg(f) FROM jsonb_array_elements(t.rules) r,
                                   jsonb_array_elements(r -> 'matcher' -> 'fields') f))::text;
            IF v_rules = ANY (v_full) THEN
                v_blocked := v_blocked + 1;
                CONTINUE;
            END IF;
            PERFORM 1 FROM tasks WHERE id = t.id AND status = 'Pending' FOR UPDATE SKIP LOCKED;
            CONTINUE WHEN NOT FOUND;          -- another worker has it, or it moved on
            IF NOT tr_rules_allow(t) THEN
                v_full := v_full || v_rules;
                v_blocked := v_blocked + 1;
                CONTINUE;
            END IF;
            -- Claimed at once: the next rule count in this call must see it.
            UPDATE tasks SET status = 'Claimed', attempt = attempt + 1, heartbeat_at = now(),
                             last_updated = now()
            WHERE id = t.id;
            v_claimed := v_claimed || t.id;
        END IF;
        EXIT WHEN cardinality(v_claimed) + cardinality(v_free) >= p_limit;
    END LOOP;

    -- Tasks without rules: one statement, skipping those another worker took.
    WITH free AS (
        SELECT id FROM tasks WHERE id = ANY (v_free) AND status = 'Pending'
        FOR UPDATE SKIP LOCKED
    ), claimed AS (
        UPDATE tasks x SET status = 'Claimed', attempt = x.attempt + 1, heartbeat_at = now(),
                           last_updated = now()
        FROM free WHERE x.id = free.id
        RETURNING x.id
    )
    SELECT v_claimed || coalesce(array_agg(id), '{}') INTO v_claimed FROM claimed;

    PERFORM tr_metric_add('taskrunner_tasks_blocked_by_rule_total', '{}', v_blocked);
    RETURN QUERY
    WITH ins AS (
        INSERT INTO deliveries (task_id, action_id, trigger, attempt, state, attempts,
                                lease_until, owner)
        SELECT x.id,
               (SELECT a.id FROM actions a WHERE a.task_id = x.id AND a.trigger = 'Start'
                ORDER BY a.position LIMIT 1),
               'Start', x.attempt, 'inflight', 1,
               now() + make_interval(secs => p_lease_ms / 1000.0), p_owner
        FROM tasks x WHERE x.id = ANY (v_claimed)
        ORDER BY x.priority DESC, x.seq
        RETURNING *
    )
    SELECT (tr_call_of(ins::deliveries)).* FROM ins ORDER BY ins.id;
END
$$;

-- Takes up to p_limit queued deliveries that are due, oldest first, for
-- p_owner until p_lease from now.
CREATE FUNCTION tr_take_deliveries(p_owner integer, p_limit integer, p_lease_ms integer)
RETURNS SETOF tr_call
LANGUAGE sql AS $$
    WITH due AS (
        SELECT id FROM deliveries
        WHERE state = 'queued' AND next_at <= now()
        ORDER BY next_at
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    ), taken AS (
        UPDATE deliveries d
        SET state = 'inflight', attempts = d.attempts + 1, owner = p_owner,
            lease_until = now() + make_interval(secs => p_lease_ms / 1000.0)
        FROM due WHERE d.id = due.id
        RETURNING d.*
    )
    SELECT (tr_call_of(taken::deliveries)).* FROM taken ORDER BY taken.id
$$;

-- Puts back the deliveries of dead workers (whose owner lock is gone) and
-- those whose lease ran out, so they are made again (same idempotency key).
-- A start call whose task has moved on meanwhile (ended, canceled, or started
-- again) is not made again.
CREATE FUNCTION tr_recover_deliveries() RETURNS integer
LANGUAGE sql AS $$
    WITH orphaned AS (
        SELECT d.id, d.trigger = 'Start' AND NOT EXISTS (
                   SELECT 1 FROM tasks t WHERE t.id = d.task_id AND t.status = 'Claimed'
                     AND t.attempt = d.attempt) AS moot
        FROM deliveries d
        WHERE d.state = 'inflight'
          AND (d.lease_until < now()
               OR NOT EXISTS (SELECT 1 FROM pg_locks l
                              WHERE l.locktype = 'advisory' AND l.granted
                                AND l.classid = tr_worker_lock_class()::oid
                                AND l.objid = d.owner::oid AND l.objsubid = 2))
        FOR UPDATE OF d SKIP LOCKED
    ), back AS (
        UPDATE deliveries d
        SET state = CASE WHEN o.moot THEN 'done' ELSE 'queued' END,
            finished_at = CASE WHEN o.moot THEN now() END,
            last_error = CASE WHEN o.moot THEN 'task moved on while its worker was gone'
                              ELSE d.last_error END,
            next_at = now(), owner = NULL
        FROM orphaned o WHERE d.id = o.id
        RETURNING NOT o.moot AS requeued
    )
    SELECT count(*) FILTER (WHERE requeued)::integer FROM back
$$;

-- The "webhook" event of one attempt of delivery d: p_outcome is success,
-- retry, failed (a start call given up), dead (an end or cancel call given
-- up: a dead letter) or dropped (its task moved on); p_http_status is 0 when
-- no HTTP answer came.
-- The detail of a "webhook" event of the audit trail: one HTTP attempt.
CREATE FUNCTION tr_webhook_detail(p_delivery_id bigint, p_trigger text, p_attempt integer,
                                  p_url text, p_outcome text, p_http_status integer,
                                  p_error text, p_duration_ms integer)
RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object(
               'delivery_id', p_delivery_id, 'trigger', p_trigger, 'url', p_url,
               'attempt', p_attempt, 'outcome', p_outcome,
               'http_status', nullif(p_http_status, 0), 'error', p_error,
               'duration_ms', p_duration_ms))
$$;

CREATE FUNCTION tr_webhook_event(d deliveries, p_outcome text, p_http_status integer,
                                 p_error text, p_duration_ms integer) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO task_events (task_id, event, actor, from_status, to_status, detail)
    SELECT d.task_id, 'webhook', tr_actor(), t.status, t.status,
           tr_webhook_detail(d.id, d.trigger, d.attempts, a.params ->> 'url', p_outcome,
                             p_http_status, p_error, p_duration_ms)
    FROM tasks t, actions a WHERE t.id = d.task_id AND a.id = d.action_id;
END
$$;
-- A call answered 2xx (p_http_status, after p_duration_ms). For a start call
-- the task becomes Running (unless it moved on meanwhile), and
-- p_cancel_action (a normalized action, or NULL) from the answer's body is
-- registered as a cancel action; if the task was canceled meanwhile, that
-- action is fired at once.
CREATE FUNCTION tr_delivery_done(p_id bigint, p_cancel_action jsonb, p_http_status integer,
                                 p_duration_ms integer) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    d        deliveries;
    v_status text;
    v_action uuid;
BEGIN
    PERFORM tr_set_actor('worker');
    UPDATE deliveries SET state = 'done', finished_at = now(), last_error = NULL, owner = NULL
    WHERE id = p_id AND state = 'inflight'
    RETURNING * INTO d;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    PERFORM tr_webhook_event(d, 'success', p_http_status, NULL, p_duration_ms);
    IF d.trigger <> 'Start' THEN
        RETURN;
    END IF;
    UPDATE tasks
    SET status = 'Running', started_at = coalesce(started_at, now()), heartbeat_at = now(),
        deadline_at = now() + make_interval(secs => timeout), last_updated = now()
    WHERE id = d.task_id AND status = 'Claimed' AND attempt = d.attempt;
    IF p_cancel_action IS NOT NULL THEN
        SELECT status INTO v_status FROM tasks WHERE id = d.task_id FOR UPDATE;
        INSERT INTO actions (id, task_id, kind, trigger, condition, params, position)
        VALUES ((p_cancel_action ->> 'id')::uuid, d.task_id,
                coalesce(p_cancel_action ->> 'kind', 'Webhook'), 'Cancel', NULL,
                p_cancel_action -> 'params',
                1000 + (SELECT count(*) FROM actions WHERE task_id = d.task_id))
        RETURNING id INTO v_action;
        IF v_status = 'Canceled' THEN
            INSERT INTO deliveries (task_id, action_id, trigger, outcome)
            VALUES (d.task_id, v_action, 'Cancel', 'Canceled');
            PERFORM tr_wake();
        END IF;
    END IF;
END
$$;

-- A call failed (p_error; p_http_status, 0 without an answer; after
-- p_duration_ms). With p_retry_ms it is queued again that much later;
-- without, it has failed for good: a start call fails its task (and so fires
-- its failure actions and cascades), an end or cancel call becomes a dead
-- letter (counted in taskrunner_dead_letters_total).
CREATE FUNCTION tr_delivery_failed(p_id bigint, p_error text, p_retry_ms integer,
                                   p_http_status integer, p_duration_ms integer) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    d deliveries;
BEGIN
    PERFORM tr_set_actor('worker');
    -- A start call of a task that moved on (canceled, or ended by its
    -- executor) is not worth another try.
    IF p_retry_ms IS NOT NULL AND EXISTS (
        SELECT 1 FROM deliveries x JOIN tasks t ON t.id = x.task_id
        WHERE x.id = p_id AND x.trigger = 'Start'
          AND (t.status <> 'Claimed' OR t.attempt <> x.attempt)) THEN
        UPDATE deliveries
        SET state = 'done', owner = NULL, last_error = p_error, finished_at = now()
        WHERE id = p_id AND state = 'inflight'
        RETURNING * INTO d;
        IF FOUND THEN
            PERFORM tr_webhook_event(d, 'dropped', p_http_status, p_error, p_duration_ms);
        END IF;
        RETURN;
    END IF;
    IF p_retry_ms IS NOT NULL THEN
        UPDATE deliveries
        SET state = 'queued', owner = NULL, last_error = p_error,
            next_at = now() + make_interval(secs => p_retry_ms / 1000.0)
        WHERE id = p_id AND state = 'inflight'
        RETURNING * INTO d;
        IF FOUND THEN
            PERFORM tr_webhook_event(d, 'retry', p_http_status, p_error, p_duration_ms);
        END IF;
        RETURN;
    END IF;
    UPDATE deliveries
    SET state = CASE WHEN trigger = 'Start' THEN 'failed' ELSE 'dead' END,
        owner = NULL, last_error = p_error, finished_at = now()
    WHERE id = p_id AND state = 'inflight'
    RETURNING * INTO d;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    PERFORM tr_webhook_event(d, d.state, p_http_status, p_error, p_duration_ms);
    IF d.state = 'dead' THEN
        PERFORM tr_metric_add('taskrunner_dead_letters_total', '{}', 1);
    END IF;
    IF d.trigger = 'Start' THEN
        IF EXISTS (SELECT 1 FROM tasks WHERE id = d.task_id AND status = 'Claimed'
                   AND attempt = d.attempt) THEN
            PERFORM tr_finish_task(d.task_id, 'Failure',
                                   'on_start webhook failed after ' || d.attempts
                                   || ' attempts: ' || p_error);
        END IF;
    END IF;
END
$$;

-- The outcomes of many calls at once (a JSON array of {"id", "ok", "http",
-- "ms", and "cancel_action" or "error" and "retry_ms"}), in one transaction:
-- the worker records everything that finished in one pass of its loop with
-- one round trip. Taken in delivery order so that concurrent callers lock in
-- the same order.
CREATE FUNCTION tr_record_outcomes(p_outcomes jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    o jsonb;
BEGIN
    PERFORM tr_set_actor('worker');
    -- The common case in one statement: calls answered 2xx that register no
    -- cancel action. The same effects as tr_delivery_done, for all at once.
    WITH ok AS (
        SELECT (e ->> 'id')::bigint AS id, (e ->> 'http')::integer AS http,
               (e ->> 'ms')::integer AS ms
        FROM jsonb_array_elements(p_outcomes) AS e
        WHERE (e ->> 'ok')::boolean AND e -> 'cancel_action' IS NULL
    ), done AS (
        UPDATE deliveries d
        SET state = 'done', finished_at = now(), last_error = NULL, owner = NULL
        FROM ok WHERE d.id = ok.id AND d.state = 'inflight'
        RETURNING d.*, ok.http, ok.ms
    ), events AS (
        INSERT INTO task_events (task_id, event, actor, from_status, to_status, detail)
        SELECT done.task_id, 'webhook', tr_actor(), t.status, t.status,
               tr_webhook_detail(done.id, done.trigger, done.attempts, a.params ->> 'url',
                                 'success', done.http, NULL, done.ms)
        FROM done JOIN tasks t ON t.id = done.task_id JOIN actions a ON a.id = done.action_id
    )
    UPDATE tasks t
    SET status = 'Running', started_at = coalesce(t.started_at, now()), heartbeat_at = now(),
        deadline_at = now() + make_interval(secs => t.timeout), last_updated = now()
    FROM done
    WHERE done.trigger = 'Start' AND t.id = done.task_id AND t.status = 'Claimed'
      AND t.attempt = done.attempt;

    FOR o IN SELECT e FROM jsonb_array_elements(p_outcomes) AS e
             WHERE NOT ((e ->> 'ok')::boolean AND e -> 'cancel_action' IS NULL)
             ORDER BY (e ->> 'id')::bigint
    LOOP
        IF (o ->> 'ok')::boolean THEN
            PERFORM tr_delivery_done((o ->> 'id')::bigint, nullif(o -> 'cancel_action', 'null'),
                                     (o ->> 'http')::integer, (o ->> 'ms')::integer);
        ELSE
            PERFORM tr_delivery_failed((o ->> 'id')::bigint, o ->> 'error',
                                       (o ->> 'retry_ms')::integer,
                                       (o ->> 'http')::integer, (o ->> 'ms')::integer);
        END IF;
    END LOOP;
END
$$;
-- Fails up to p_limit Running tasks whose heartbeat is older than their
-- timeout, firing their failure and cancel actions. Returns how many.
CREATE FUNCTION tr_expire_tasks(p_limit integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    r   record;
    v_n integer := 0;
BEGIN
    PERFORM tr_set_actor('worker');
    FOR r IN SELECT id FROM tasks
             WHERE status = 'Running' AND deadline_at < now()
             ORDER BY deadline_at LIMIT p_limit
             FOR UPDATE SKIP LOCKED
    LOOP
        PERFORM tr_finish_task(r.id, 'Failure', 'Timeout', true);
        v_n := v_n + 1;
    END LOOP;
    RETURN v_n;
END
$$;

-- How long until the worker has timed work to do (a queued retry or a
-- heartbeat deadline), in ms, capped at p_cap_ms; lets it sleep exactly.
CREATE FUNCTION tr_next_due_ms(p_cap_ms integer) RETURNS integer
LANGUAGE sql STABLE AS $$
    SELECT greatest(0, least(p_cap_ms,
        (SELECT ceil(extract(epoch FROM (min(next_at) - now())) * 1000)::integer
         FROM deliveries WHERE state = 'queued'),
        (SELECT ceil(extract(epoch FROM (min(deadline_at) - now())) * 1000)::integer
         FROM tasks WHERE status = 'Running')))
$$;

-- ---------------------------------------------------------------- what the API reads

-- GET /tasks/{id}/blockers: what holds the task back, read from the state
-- the worker decides on (tr_claim): unfinished parents of a Waiting or
-- Paused task, the pause, the rules that are full for a Pending task (counted
-- with tr_rule_count, as the worker counts), a start time in the future, and
-- a start call waiting for its retry. Running and terminal tasks have none.
-- No lock is taken: it is what the worker would decide now.
CREATE FUNCTION tr_task_blockers(p_id uuid, OUT code integer, OUT body text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    t     tasks;
    v     jsonb := '[]';
    r     jsonb;
    v_key jsonb;
    v_n   bigint;
    v_max bigint;
    v_at  timestamptz;
BEGIN
    SELECT * INTO t FROM tasks WHERE id = p_id;
    IF NOT FOUND THEN
        code := 404; body := 'task not found'; RETURN;
    END IF;
    IF t.status NOT IN ('Running', 'Success', 'Failure', 'Canceled') THEN
        IF t.status IN ('Waiting', 'Paused') THEN
            v := v || coalesce((
                SELECT jsonb_agg(jsonb_build_object(
                           'type', 'dependency', 'task_id', p.id, 'status', p.status,
                           'requires_success', l.requires_success) ORDER BY p.seq)
                FROM task_links l JOIN tasks p ON p.id = l.parent_id
                WHERE l.child_id = t.id AND NOT tr_is_terminal(p.status)), '[]');
        END IF;
        IF t.status = 'Paused' THEN
            v := v || '[{"type": "paused"}]';
        END IF;
        IF t.status = 'Pending' THEN
            FOR r IN SELECT jsonb_array_elements(t.rules) LOOP
                v_key := tr_matcher_key(t.metadata, r -> 'matcher' -> 'fields');
                v_n := tr_rule_count(r -> 'matcher' ->> 'kind', r -> 'matcher' ->> 'status', v_key);
                v_max := (r ->> 'max_concurrency')::bigint;
                IF v_n >= v_max THEN
                    v := v || jsonb_build_array(jsonb_build_object(
                        'type', 'rule', 'rule', r, 'key', v_key, 'current', v_n, 'max', v_max));
                END IF;
            END LOOP;
        END IF;
        IF t.not_before > now() THEN
            v := v || jsonb_build_array(jsonb_build_object('type', 'not_before',
                                                           'at', tr_ts(t.not_before)));
        END IF;
        SELECT min(d.next_at) INTO v_at FROM deliveries d
        WHERE d.task_id = t.id AND d.trigger = 'Start' AND d.state = 'queued';
        IF v_at IS NOT NULL THEN
            v := v || jsonb_build_array(jsonb_build_object('type', 'retry_backoff',
                                                           'at', tr_ts(v_at)));
        END IF;
    END IF;
    code := 200;
    body := json_build_object('status', t.status, 'blockers', v)::text;
END
$$;

-- A dead letter as GET /dead-letters shows it.
CREATE FUNCTION tr_dead_letter_json(d deliveries) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'id', d.id, 'task_id', d.task_id, 'trigger', d.trigger,
        'url', (SELECT a.params ->> 'url' FROM actions a WHERE a.id = d.action_id),
        'attempts', d.attempts, 'last_error', d.last_error, 'failed_at', tr_ts(d.finished_at))
$$;

-- GET /dead-letters: end and cancel calls that failed every attempt, newest
-- first, one page.
CREATE FUNCTION tr_dead_letters(p_limit bigint, p_offset bigint, OUT code integer, OUT body text)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    code := 200;
    SELECT coalesce(json_agg(tr_dead_letter_json(d) ORDER BY d.finished_at DESC, d.id DESC),
                    '[]')::text
    INTO body
    FROM (SELECT * FROM deliveries WHERE state = 'dead'
          ORDER BY finished_at DESC, id DESC LIMIT p_limit OFFSET p_offset) d;
END
$$;

-- POST /dead-letters/{id}/replay: queues the call again, due now, with a
-- fresh set of attempts (and the same Idempotency-Key). Answers 202 with the
-- dead letter as it was; it leaves the list now, and comes back if every
-- attempt of the replay fails too.
CREATE FUNCTION tr_replay_dead_letter(p_id bigint, p_actor text, OUT code integer, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    d deliveries;
    v_status text;
BEGIN
    PERFORM tr_set_actor(p_actor);
    SELECT * INTO d FROM deliveries WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        code := 404; body := 'dead letter not found'; RETURN;
    END IF;
    IF d.state <> 'dead' THEN
        code := 409; body := format('delivery %s is %s, not a dead letter', p_id, d.state);
        RETURN;
    END IF;
    body := tr_dead_letter_json(d)::text;
    UPDATE deliveries
    SET state = 'queued', attempts = 0, next_at = now(), finished_at = NULL, owner = NULL,
        lease_until = NULL
    WHERE id = p_id;
    SELECT status INTO v_status FROM tasks WHERE id = d.task_id;
    PERFORM tr_task_event(d.task_id, 'replay', v_status, v_status, jsonb_build_object(
        'delivery_id', d.id, 'trigger', d.trigger, 'attempts', d.attempts,
        'last_error', d.last_error));
    PERFORM tr_wake();
    code := 202;
END
$$;

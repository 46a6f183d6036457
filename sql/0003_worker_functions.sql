-- 0003: what the worker calls. Any number of workers may run these at once:
-- runnable tasks and deliveries are taken with FOR UPDATE SKIP LOCKED, and
-- every rule key is counted under a transaction-scoped advisory lock, so a
-- rule's count can never be exceeded by two workers deciding at once.
--
-- Vocabulary: a *task* is what a client created; a *delivery* is one webhook
-- call for it (a row of deliveries); an *attempt* is one HTTP try of it.

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

-- Whether task t may start now under every one of its rules. Takes the
-- advisory lock of each rule key (held until commit) before counting.
CREATE FUNCTION tr_rules_allow(t tasks) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    r      jsonb;
    v_key  jsonb;
    v_kind text;
    v_st   text;
    v_n    bigint;
BEGIN
    FOR r IN SELECT jsonb_array_elements(t.rules) LOOP
        v_kind := r -> 'matcher' ->> 'kind';
        v_st := r -> 'matcher' ->> 'status';
        v_key := tr_matcher_key(t.metadata, r -> 'matcher' -> 'fields');
        PERFORM pg_advisory_xact_lock(hashtextextended(
            'rule:' || v_kind || ':' || v_st || ':' || v_key::text, 0));
        SELECT count(*) INTO v_n FROM tasks x
        WHERE x.kind = v_kind
          AND (x.status = v_st OR (v_st = 'Running' AND x.status = 'Claimed'))
          AND tr_matches_key(x.metadata, v_key);
        IF v_n >= (r ->> 'max_concurrency')::bigint THEN
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
CREATE FUNCTION tr_claim(p_owner integer, p_limit integer, p_lease_ms integer,
                         p_scan integer DEFAULT 1000) RETURNS SETOF tr_call
LANGUAGE plpgsql AS $$
DECLARE
    t        tasks;
    v_taken  integer := 0;
    v_action uuid;
    v_full   text[] := '{}';   -- rule sets found full in this call
    v_rules  text;
    v_did    bigint;
BEGIN
    FOR t IN SELECT * FROM tasks
             WHERE status = 'Pending' AND (not_before IS NULL OR not_before <= now())
             ORDER BY priority DESC, seq
             LIMIT p_scan
             FOR UPDATE SKIP LOCKED
    LOOP
        IF t.rules <> '[]' THEN
            v_rules := t.kind || t.rules::text || tr_matcher_key(t.metadata,
                           (SELECT jsonb_agg(f) FROM jsonb_array_elements(t.rules) r,
                                   jsonb_array_elements(r -> 'matcher' -> 'fields') f))::text;
            CONTINUE WHEN v_rules = ANY (v_full);
            IF NOT tr_rules_allow(t) THEN
                v_full := v_full || v_rules;
                CONTINUE;
            END IF;
        END IF;
        SELECT a.id INTO v_action FROM actions a
        WHERE a.task_id = t.id AND a.trigger = 'Start' ORDER BY a.position LIMIT 1;
        UPDATE tasks SET status = 'Claimed', attempt = attempt + 1, heartbeat_at = now(),
                         last_updated = now()
        WHERE id = t.id;
        INSERT INTO deliveries (task_id, action_id, trigger, attempt, state, attempts,
                                lease_until, owner)
        VALUES (t.id, v_action, 'Start', t.attempt + 1, 'inflight', 1,
                now() + make_interval(secs => p_lease_ms / 1000.0), p_owner)
        RETURNING id INTO v_did;
        RETURN NEXT (SELECT tr_call_of(d) FROM deliveries d WHERE d.id = v_did);
        v_taken := v_taken + 1;
        EXIT WHEN v_taken >= p_limit;
    END LOOP;
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

-- A call answered 2xx. For a start call the task becomes Running (unless it
-- moved on meanwhile), and p_cancel_action (a normalized action, or NULL)
-- from the answer's body is registered as a cancel action; if the task was
-- canceled meanwhile, that action is fired at once.
CREATE FUNCTION tr_delivery_done(p_id bigint, p_cancel_action jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    d        deliveries;
    v_status text;
    v_action uuid;
BEGIN
    UPDATE deliveries SET state = 'done', finished_at = now(), last_error = NULL, owner = NULL
    WHERE id = p_id AND state = 'inflight'
    RETURNING * INTO d;
    IF NOT FOUND OR d.trigger <> 'Start' THEN
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
            PERFORM pg_notify('taskrunner', 'work');
        END IF;
    END IF;
END
$$;

-- A call failed. With p_retry_ms it is queued again that much later; without,
-- it has failed for good: a start call fails its task (and so fires its
-- failure actions and cascades), an end or cancel call becomes a dead letter.
CREATE FUNCTION tr_delivery_failed(p_id bigint, p_error text, p_retry_ms integer) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    d deliveries;
BEGIN
    -- A start call of a task that moved on (canceled, or ended by its
    -- executor) is not worth another try.
    IF p_retry_ms IS NOT NULL AND EXISTS (
        SELECT 1 FROM deliveries x JOIN tasks t ON t.id = x.task_id
        WHERE x.id = p_id AND x.trigger = 'Start'
          AND (t.status <> 'Claimed' OR t.attempt <> x.attempt)) THEN
        UPDATE deliveries
        SET state = 'done', owner = NULL, last_error = p_error, finished_at = now()
        WHERE id = p_id AND state = 'inflight';
        RETURN;
    END IF;
    IF p_retry_ms IS NOT NULL THEN
        UPDATE deliveries
        SET state = 'queued', owner = NULL, last_error = p_error,
            next_at = now() + make_interval(secs => p_retry_ms / 1000.0)
        WHERE id = p_id AND state = 'inflight';
        RETURN;
    END IF;
    UPDATE deliveries
    SET state = CASE WHEN trigger = 'Start' THEN 'failed' ELSE 'dead' END,
        owner = NULL, last_error = p_error, finished_at = now()
    WHERE id = p_id AND state = 'inflight'
    RETURNING * INTO d;
    IF FOUND AND d.trigger = 'Start' THEN
        IF EXISTS (SELECT 1 FROM tasks WHERE id = d.task_id AND status = 'Claimed'
                   AND attempt = d.attempt) THEN
            PERFORM tr_finish_task(d.task_id, 'Failure',
                                   'on_start webhook failed after ' || d.attempts
                                   || ' attempts: ' || p_error);
        END IF;
    END IF;
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

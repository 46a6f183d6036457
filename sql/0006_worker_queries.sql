-- 0006: the worker's queries without per-row function calls, with plans
-- cached for the session.
--
-- Measured with pg_stat_statements (track = all) while one worker started
-- 20,000 waiting tasks: `SELECT (tr_call_of(ins)).*` evaluated the function
-- once per output column (9 times per call made: 180,000 calls for 20,000
-- starts), 12.8 of the 16.6 ms of each 64-task claim. The call rows are now
-- a join, and the SQL-language functions the worker calls on every pass are
-- PL/pgSQL (a SQL function that cannot be inlined is parsed and planned on
-- every call).

-- The Idempotency-Key of a call: <task>:<trigger>[:<outcome>]:<action>,
-- the same for every attempt (inlined where it is used).
CREATE FUNCTION tr_idem_key(p_task uuid, p_trigger text, p_outcome text, p_action uuid)
RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT p_task || ':' || lower(p_trigger)
           || CASE WHEN p_trigger = 'End' THEN ':' || lower(p_outcome) ELSE '' END
           || ':' || p_action
$$;

DROP FUNCTION tr_call_of(deliveries);

-- See 0003 (unchanged but for the rows it returns).
CREATE OR REPLACE FUNCTION tr_claim(p_owner integer, p_limit integer, p_lease_ms integer,
                         p_scan integer DEFAULT 5000) RETURNS SETOF tr_call
LANGUAGE plpgsql AS $$
DECLARE
    t         tasks;
    v_free    integer := 0;   -- candidates without rules, claimed together below
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
            v_free := v_free + 1;
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
        EXIT WHEN cardinality(v_claimed) + v_free >= p_limit;
    END LOOP;

    -- Tasks without rules: the first v_free of them in the same order, in
    -- one statement, skipping those another worker holds. Driven by the
    -- runnable index alone: looking them up by id with a status test let the
    -- planner, misled by statistics older than a burst of new tasks, walk
    -- every Pending entry of that index for each claim.
    WITH free AS (
        SELECT id FROM tasks
        WHERE status = 'Pending' AND (not_before IS NULL OR not_before <= now())
          AND rules = '[]'
        ORDER BY priority DESC, seq
        LIMIT v_free
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
    SELECT ins.id, ins.task_id, tk.batch_id, ins.trigger, ins.outcome, a.params, ins.attempts,
           ins.attempt, tr_idem_key(ins.task_id, ins.trigger, ins.outcome, ins.action_id)
    FROM ins JOIN tasks tk ON tk.id = ins.task_id JOIN actions a ON a.id = ins.action_id
    ORDER BY ins.id;
END
$$;

-- See 0003.
CREATE OR REPLACE FUNCTION tr_take_deliveries(p_owner integer, p_limit integer,
                                              p_lease_ms integer)
RETURNS SETOF tr_call
LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY
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
    SELECT k.id, k.task_id, t.batch_id, k.trigger, k.outcome, a.params, k.attempts, k.attempt,
           tr_idem_key(k.task_id, k.trigger, k.outcome, k.action_id)
    FROM taken k JOIN tasks t ON t.id = k.task_id JOIN actions a ON a.id = k.action_id
    ORDER BY k.id;
END
$$;

-- See 0003.
CREATE OR REPLACE FUNCTION tr_recover_deliveries() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_n integer;
BEGIN
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
    SELECT count(*) FILTER (WHERE requeued)::integer INTO v_n FROM back;
    RETURN v_n;
END
$$;

-- See 0003.
CREATE OR REPLACE FUNCTION tr_next_due_ms(p_cap_ms integer) RETURNS integer
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN greatest(0, least(p_cap_ms,
        (SELECT ceil(extract(epoch FROM (min(next_at) - now())) * 1000)::integer
         FROM deliveries WHERE state = 'queued'),
        (SELECT ceil(extract(epoch FROM (min(deadline_at) - now())) * 1000)::integer
         FROM tasks WHERE status = 'Running')));
END
$$;

-- json_build_object and jsonb_build_object are STABLE: declared IMMUTABLE,
-- these were never inlined but called as functions for every row.
ALTER FUNCTION tr_action_json(actions) STABLE;
ALTER FUNCTION tr_webhook_detail(bigint, text, integer, text, text, integer, text, integer) STABLE;

-- See 0003. The outcomes are read into arrays once: joined directly, the
-- JSON array was expanded again for every candidate row (a nested loop the
-- planner chose from row estimates of 1), 16 ms for 64 outcomes.
CREATE OR REPLACE FUNCTION tr_record_outcomes(p_outcomes jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    o          record;
    v_ids      bigint[];
    v_http     integer[];
    v_ms       integer[];
    v_tasks    uuid[];
    v_attempts integer[];
BEGIN
    PERFORM tr_set_actor('worker');
    -- The common case in three statements: calls answered 2xx that register
    -- no cancel action. The same effects as tr_delivery_done, for all at once.
    SELECT array_agg(x.id ORDER BY x.id), array_agg(x.http ORDER BY x.id),
           array_agg(x.ms ORDER BY x.id)
    INTO v_ids, v_http, v_ms
    FROM jsonb_to_recordset(p_outcomes)
         AS x (id bigint, ok boolean, http integer, ms integer, cancel_action jsonb)
    WHERE x.ok AND x.cancel_action IS NULL;

    IF v_ids IS NOT NULL THEN
        WITH done AS (
            UPDATE deliveries d
            SET state = 'done', finished_at = now(), last_error = NULL, owner = NULL
            WHERE d.id = ANY (v_ids) AND d.state = 'inflight'
            RETURNING d.id, d.task_id, d.action_id, d.trigger, d.attempt, d.attempts
        ), events AS (
            INSERT INTO task_events (task_id, event, actor, from_status, to_status, detail)
            SELECT done.task_id, 'webhook', tr_actor(), t.status, t.status,
                   tr_webhook_detail(done.id, done.trigger, done.attempts,
                                     a.params ->> 'url', 'success', u.http, NULL, u.ms)
            FROM done
            JOIN unnest(v_ids, v_http, v_ms) AS u (id, http, ms) ON u.id = done.id
            JOIN tasks t ON t.id = done.task_id
            JOIN actions a ON a.id = done.action_id
            ORDER BY done.id
        )
        SELECT array_agg(done.task_id), array_agg(done.attempt)
        INTO v_tasks, v_attempts
        FROM done WHERE done.trigger = 'Start';

        IF v_tasks IS NOT NULL THEN
            UPDATE tasks t
            SET status = 'Running', started_at = coalesce(t.started_at, now()),
                heartbeat_at = now(), deadline_at = now() + make_interval(secs => t.timeout),
                last_updated = now()
            FROM unnest(v_tasks, v_attempts) AS s (id, attempt)
            WHERE t.id = ANY (v_tasks) AND t.id = s.id AND t.attempt = s.attempt
              AND t.status = 'Claimed';
        END IF;
    END IF;

    FOR o IN SELECT x.*
             FROM jsonb_to_recordset(p_outcomes)
                  AS x (id bigint, ok boolean, http integer, ms integer, cancel_action jsonb,
                        error text, retry_ms integer)
             WHERE NOT (x.ok AND x.cancel_action IS NULL)
             ORDER BY x.id
    LOOP
        IF o.ok THEN
            PERFORM tr_delivery_done(o.id, o.cancel_action, o.http, o.ms);
        ELSE
            PERFORM tr_delivery_failed(o.id, o.error, o.retry_ms, o.http, o.ms);
        END IF;
    END LOOP;
END
$$;

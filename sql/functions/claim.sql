-- claim: how the worker takes tasks to start, and its timed duties (heartbeat
-- timeouts, how long it may sleep). Any number of workers may run these at
-- once: runnable tasks are taken with FOR UPDATE SKIP LOCKED and every rule
-- key is counted under a transaction-scoped advisory lock that is tried, not
-- waited for (tr_rules_try): no claim ever waits for another.

-- The advisory lock class under which each worker holds its owner id for
-- the life of its session; inflight deliveries of an owner whose lock is gone
-- belong to a dead worker and are taken back at once.
CREATE OR REPLACE FUNCTION tr_worker_lock_class() RETURNS integer
LANGUAGE sql IMMUTABLE AS $$ SELECT 7275 $$;

-- Takes up to p_limit runnable tasks, highest priority then oldest, that
-- their rules allow; moves them to Claimed and returns their start calls
-- (already inflight for p_owner until p_lease from now). At most p_scan
-- runnable tasks are looked at, so the cost does not grow with the queue.
-- Each runnable task passed over because a rule is full counts in
-- taskrunner_tasks_blocked_by_rule_total; one passed over because another
-- worker is counting its rule key right now does not (that worker decides
-- for the key, and the next wake-up looks again).
CREATE OR REPLACE FUNCTION tr_claim(p_owner integer, p_limit integer, p_lease_ms integer,
                                    p_scan integer DEFAULT 5000) RETURNS SETOF tr_call
LANGUAGE plpgsql AS $$
DECLARE
    t         tasks;
    v_free    integer := 0;    -- candidates without rules, claimed together below
    v_ids     uuid[];
    v_claimed uuid[] := '{}';
    v_full    text[] := '{}';  -- rule keys found full in this call
    v_busy    text[] := '{}';  -- rule keys another transaction is counting
    v_verdict text;
    v_rules   text;
    v_blocked bigint := 0;
BEGIN
    PERFORM tr_set_actor('worker');
    -- Tasks whose wait is over (a retry's backoff) join the runnable queue.
    PERFORM tr_release_due(1000);
    -- Rows are read without locks: a task passed over (its rule is full)
    -- is never locked or written, so scanning past many of them is cheap.
    FOR t IN SELECT * FROM tasks
             WHERE status = 'Pending' AND not_before IS NULL
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
            CONTINUE WHEN v_rules = ANY (v_busy);
            PERFORM 1 FROM tasks WHERE id = t.id AND status = 'Pending' FOR UPDATE SKIP LOCKED;
            CONTINUE WHEN NOT FOUND;          -- another worker has it, or it moved on
            v_verdict := tr_rules_try(t);
            IF v_verdict = 'busy' THEN
                v_busy := v_busy || v_rules;
                CONTINUE;
            ELSIF v_verdict = 'full' THEN
                v_full := v_full || v_rules;
                v_blocked := v_blocked + 1;
                CONTINUE;
            END IF;
            -- Claimed at once: the next rule count in this call must see it.
            PERFORM tr_move_tasks(ARRAY[t.id], 'Claimed');
            v_claimed := v_claimed || t.id;
        END IF;
        EXIT WHEN cardinality(v_claimed) + v_free >= p_limit;
    END LOOP;

    -- Tasks without rules: the first v_free of them in the same order,
    -- skipping those another worker holds. Driven by the runnable index
    -- alone (looked up by id with a status test, stale statistics once made
    -- the planner walk every Pending entry of that index for each claim).
    IF v_free > 0 THEN
        SELECT array_agg(f.id) INTO v_ids
        FROM (SELECT id FROM tasks
              WHERE status = 'Pending' AND not_before IS NULL
                AND rules = '[]'
              ORDER BY priority DESC, seq
              LIMIT v_free
              FOR UPDATE SKIP LOCKED) f;
        IF v_ids IS NOT NULL THEN
            v_claimed := v_claimed || ARRAY(SELECT m.id FROM tr_move_tasks(v_ids, 'Claimed') m);
        END IF;
    END IF;

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
    SELECT ins.id, ins.task_id, tk.batch_id, ins.trigger::text, ins.outcome::text, a.params,
           ins.attempts, ins.attempt, tr_idem_key(ins.task_id, ins.trigger, ins.outcome, ins.action_id),
           a.source
    FROM ins JOIN tasks tk ON tk.id = ins.task_id JOIN actions a ON a.id = ins.action_id
    ORDER BY ins.id;
END
$$;

-- Fails the attempt of up to p_limit Running tasks whose heartbeat is older
-- than their timeout: retried when their policy allows, else failed for good
-- with their failure and cancel actions fired. Returns how many.
CREATE OR REPLACE FUNCTION tr_expire_tasks(p_limit integer) RETURNS integer
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
        PERFORM tr_fail_attempt(r.id, 'Timeout', 'timeout', true);
        v_n := v_n + 1;
    END LOOP;
    RETURN v_n;
END
$$;

-- How long until the worker has timed work to do (a queued call's retry, a
-- heartbeat deadline, a task's retry time or scheduled start, a schedule's
-- next slot), in ms, capped at p_cap_ms; lets it sleep exactly.
CREATE OR REPLACE FUNCTION tr_next_due_ms(p_cap_ms integer) RETURNS integer
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN greatest(0, least(p_cap_ms,
        (SELECT ceil(extract(epoch FROM (min(next_at) - now())) * 1000)::integer
         FROM deliveries WHERE state = 'queued'),
        (SELECT ceil(extract(epoch FROM (min(deadline_at) - now())) * 1000)::integer
         FROM tasks WHERE status = 'Running'),
        (SELECT ceil(extract(epoch FROM (min(not_before) - now())) * 1000)::integer
         FROM tasks WHERE status = 'Pending' AND not_before IS NOT NULL),
        (SELECT ceil(extract(epoch FROM (min(next_fire_at) - now())) * 1000)::integer
         FROM schedules WHERE NOT paused)));
END
$$;

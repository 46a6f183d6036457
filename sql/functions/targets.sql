-- targets: outbound isolation (API.md, "Outbound isolation"). The worker
-- decides, per target (scheme://host:port, parsed by curl in the worker),
-- whether a call may be made now; these functions hand back the calls it
-- does not make, hold a target back (its circuit breaker opened), let one
-- probe through and resume it. held_targets is shared by all workers: one
-- that opens the breaker holds the target back for all of them.

-- Hands back calls the worker took but does not make (their target is
-- held back, or saturated in this worker): pairwise p_ids (inflight
-- deliveries), p_targets and p_wait_ms. A start call's task goes back to
-- Pending (its attempt not spent, no retry counted) waiting p_wait_ms
-- outside the runnable index; an end or cancel call is queued again for
-- p_wait_ms with its try not counted. Returns how many were handed back.
CREATE OR REPLACE FUNCTION tr_calls_wait(p_calls jsonb)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    r       record;
    v_tasks uuid[] := '{}';
    v_n     integer := 0;
BEGIN
    PERFORM tr_set_actor('worker');
    FOR r IN SELECT d.id, d.task_id, d.trigger, d.attempt, w.target, w.ms
             FROM jsonb_to_recordset(p_calls) AS w (id bigint, target text, ms integer)
             JOIN deliveries d ON d.id = w.id
             WHERE d.state = 'inflight'
             ORDER BY d.id
             FOR UPDATE OF d
    LOOP
        v_n := v_n + 1;
        IF r.trigger <> 'Start' THEN
            UPDATE deliveries
            SET state = 'queued', owner = NULL, attempts = greatest(attempts - 1, 0),
                wait_target = r.target,
                next_at = now() + make_interval(secs => r.ms / 1000.0)
            WHERE id = r.id;
            CONTINUE;
        END IF;
        -- A start call is made again by the task's next claim.
        DELETE FROM deliveries WHERE id = r.id;
        UPDATE tasks
        SET attempt = attempt - 1, wait_target = r.target,
            not_before = now() + make_interval(secs => r.ms / 1000.0)
        WHERE id = r.task_id AND status = 'Claimed' AND attempt = r.attempt;
        IF FOUND THEN
            v_tasks := v_tasks || r.task_id;
        END IF;
    END LOOP;
    IF cardinality(v_tasks) > 0 THEN
        PERFORM tr_move_tasks(v_tasks, 'Pending');
    END IF;
    RETURN v_n;
END
$$;

-- Makes up to p_limit calls waiting for target p_target due now (tasks
-- first, then end and cancel calls), found by their target's index: the
-- worker has room for them, or the target resumed. Returns how many.
CREATE OR REPLACE FUNCTION tr_target_release(p_target text, p_limit integer) RETURNS integer
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $$
DECLARE
    v_ids uuid[];
    v_n   integer;
    v_m   integer;
BEGIN
    WITH due AS (
        SELECT id FROM tasks
        WHERE status = 'Pending' AND not_before IS NOT NULL AND wait_target = p_target
        ORDER BY wait_target, not_before
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    )
    SELECT array_agg(due.id) INTO v_ids FROM due;
    v_n := tr_make_runnable(v_ids);
    WITH due AS (
        SELECT id FROM deliveries
        WHERE state = 'queued' AND wait_target = p_target AND next_at > now()
        ORDER BY wait_target, next_at
        LIMIT greatest(p_limit - v_n, 0)
        FOR UPDATE SKIP LOCKED
    )
    UPDATE deliveries d SET next_at = now(), wait_target = NULL FROM due WHERE d.id = due.id;
    GET DIAGNOSTICS v_m = ROW_COUNT;
    IF v_n + v_m > 0 THEN
        PERFORM tr_wake();
    END IF;
    RETURN v_n + v_m;
END
$$;

-- The breaker of p_target opened (p_failures consecutive failures) or a
-- probe failed: the target is held back for p_cooldown_ms from now, for
-- every worker.
CREATE OR REPLACE FUNCTION tr_target_hold(p_target text, p_cooldown_ms integer,
                                          p_failures integer) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO held_targets (target, held_until, cooldown_ms, failures)
    VALUES (p_target, now() + make_interval(secs => p_cooldown_ms / 1000.0), p_cooldown_ms,
            p_failures)
    ON CONFLICT (target) DO UPDATE
    SET held_until = greatest(held_targets.held_until, excluded.held_until),
        cooldown_ms = greatest(held_targets.cooldown_ms, excluded.cooldown_ms),
        failures = held_targets.failures + excluded.failures,
        probe_until = NULL;
END
$$;

-- Whether the caller may make the one probe call of held target p_target
-- now (its cool-down is over and no other probe is in flight); the probe is
-- then the caller's for p_ms. True for a target not held (any more).
CREATE OR REPLACE FUNCTION tr_target_try_probe(p_target text, p_ms integer) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE held_targets
    SET probe_until = now() + make_interval(secs => p_ms / 1000.0)
    WHERE target = p_target AND held_until <= now()
      AND (probe_until IS NULL OR probe_until < now());
    RETURN FOUND OR NOT EXISTS (SELECT 1 FROM held_targets WHERE target = p_target);
END
$$;

-- A probe of p_target succeeded: the target is no longer held back, and up
-- to p_limit calls waiting for it are due now. Returns how many.
CREATE OR REPLACE FUNCTION tr_target_resume(p_target text, p_limit integer) RETURNS integer
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM held_targets WHERE target = p_target;
    RETURN tr_target_release(p_target, p_limit);
END
$$;

-- The targets held back now, with how long until their cool-down ends (ms,
-- 0 when over) and the cool-down: each worker's copy of the shared state.
CREATE OR REPLACE FUNCTION tr_held_targets()
RETURNS TABLE (target text, wait_ms integer, cooldown_ms integer)
LANGUAGE sql STABLE AS $$
    SELECT h.target,
           greatest(0, ceil(extract(epoch FROM (h.held_until - now())) * 1000))::integer,
           h.cooldown_ms
    FROM held_targets h
    ORDER BY h.target
    LIMIT 10000
$$;

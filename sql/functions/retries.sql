-- retries: a failed attempt that the task's policy allows to retry goes back
-- to Pending for a later attempt instead of ending the task; the worker
-- brings waiting tasks back into the runnable queue when their time comes;
-- an operator re-runs an ended task (POST /tasks/{id}/retry).

-- The policy of a task that has none of its own (API.md).
CREATE OR REPLACE FUNCTION tr_retry_backoff_default() RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT '{"initial_ms": 1000, "factor": 2, "max_ms": 3600000, "jitter": "full"}'::jsonb
$$;

-- The delay before retry number p_n (1, 2, ...) under policy p_backoff
-- (NULL fields take the defaults of API.md: 1000 ms, factor 2, cap 1 h,
-- full jitter): min(max_ms, initial_ms * factor^(n-1)), then jittered.
CREATE OR REPLACE FUNCTION tr_retry_delay_ms(p_backoff jsonb, p_n integer) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_initial float8 := coalesce((p_backoff ->> 'initial_ms')::float8, 1000);
    v_factor  float8 := coalesce((p_backoff ->> 'factor')::float8, 2);
    v_max     float8 := coalesce((p_backoff ->> 'max_ms')::float8, 3600000);
    v_delay   float8;
BEGIN
    -- The power is capped before it could overflow (factor <= 10, n <= 100).
    v_delay := least(v_max, v_initial * power(v_factor, least(greatest(p_n, 1) - 1, 60)));
    RETURN CASE coalesce(p_backoff ->> 'jitter', 'full')
               WHEN 'none' THEN v_delay
               WHEN 'equal' THEN v_delay / 2 + random() * v_delay / 2
               ELSE random() * v_delay
           END::bigint;
END
$$;

-- An attempt of task p_id failed (p_why: failure, timeout or start_failed;
-- p_reason the failure reason). With retries left and p_retryable, the task
-- goes back to Pending, not startable before its next retry time: no
-- failure webhook, no propagation, counters kept, a "retry" history event,
-- counted in taskrunner_task_retries_total. Otherwise the task fails for good
-- (tr_finish_task; p_fire_cancel as there).
CREATE OR REPLACE FUNCTION tr_fail_attempt(p_id uuid, p_reason text, p_why text,
                                           p_fire_cancel boolean DEFAULT false,
                                           p_retryable boolean DEFAULT true) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    t     tasks;
    v_at  timestamptz;
BEGIN
    SELECT * INTO t FROM tasks WHERE id = p_id FOR UPDATE;
    IF NOT FOUND OR t.status NOT IN ('Claimed', 'Running') THEN
        RETURN;
    END IF;
    IF NOT p_retryable OR t.retry_count >= t.max_retries THEN
        PERFORM tr_finish_task(p_id, 'Failure', p_reason, p_fire_cancel);
        RETURN;
    END IF;
    v_at := now() + make_interval(secs => tr_retry_delay_ms(t.retry_backoff,
                                                             t.retry_count + 1) / 1000.0);
    UPDATE tasks
    SET retry_count = retry_count + 1, retry_at = v_at, not_before = v_at,
        failure_reason = p_reason
    WHERE id = p_id;
    PERFORM tr_move_tasks(ARRAY[p_id], 'Pending');
    -- A start call still waiting for its own retry is moot now.
    UPDATE deliveries SET state = 'done', finished_at = now(), last_error = 'attempt failed'
    WHERE task_id = p_id AND trigger = 'Start' AND state = 'queued';
    PERFORM tr_task_event(p_id, 'retry', t.status, 'Pending', jsonb_build_object(
        'attempt', t.attempt, 'retry_count', t.retry_count + 1,
        'max_retries', t.max_retries, 'reason', p_why, 'failure_reason', p_reason,
        'next_retry_at', tr_ts(v_at)));
    PERFORM tr_metric_add('taskrunner_task_retries_total',
                          jsonb_build_object('kind', t.kind, 'reason', p_why), 1);
    PERFORM tr_wake();
END
$$;

-- Makes the waiting Pending tasks p_ids (locked by the caller) startable
-- now: out of their wait, into the runnable queue at their priority and age
-- (their lanes listed). Returns how many. The one way out of a wait: a
-- retry's or scheduled start's time (tr_release_due), or room for a held
-- target (tr_target_release).
CREATE OR REPLACE FUNCTION tr_make_runnable(p_ids uuid[]) RETURNS integer
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $$
DECLARE
    v_n    integer;
    v_lane uuid[];
BEGIN
    IF p_ids IS NULL THEN
        RETURN 0;
    END IF;
    WITH released AS (
        UPDATE tasks t SET not_before = NULL WHERE t.id = ANY (p_ids)
        RETURNING t.id, t.lane
    )
    SELECT count(*), array_agg(released.id) FILTER (WHERE released.lane IS NOT NULL)
    INTO v_n, v_lane FROM released;
    IF v_lane IS NOT NULL THEN
        PERFORM tr_lanes_add(v_lane);
    END IF;
    RETURN v_n;
END
$$;

-- Makes startable the Pending tasks whose wait (a retry's backoff, a
-- scheduled start) is over, at most p_limit of them, found by their time's
-- index: they enter the runnable queue at their priority and age. Returns
-- how many. Tasks another worker is moving are skipped.
CREATE OR REPLACE FUNCTION tr_release_due(p_limit integer) RETURNS integer
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $$
DECLARE
    v_n   integer;
    v_ids uuid[];
BEGIN
    WITH due AS (
        SELECT id FROM tasks
        WHERE status = 'Pending' AND not_before IS NOT NULL AND not_before <= now()
        ORDER BY not_before
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    )
    SELECT array_agg(due.id) INTO v_ids FROM due;
    v_n := tr_make_runnable(v_ids);
    RETURN v_n;
END
$$;

-- POST /tasks/{id}/retry: an ended task (Failure or Canceled) starts again
-- as if new: Pending, or Waiting while a parent has not ended; retry_count
-- is kept. A task whose required parent failed or was canceled cannot run
-- again alone (409: re-run that parent with downstream). With p_downstream,
-- every descendant that ended Failure or Canceled before it started (the
-- cascade of a required parent) is re-armed too: Waiting again, unless
-- another required parent of it failed on its own. Children that had
-- counted a re-run task as finished (without requiring its success) wait for
-- it again: their count goes up, and a Pending one goes back to Waiting.
-- Returns the task and, with p_downstream, the ids re-armed.
CREATE OR REPLACE FUNCTION tr_rerun_task(p_id uuid, p_downstream boolean, p_actor text,
                                         OUT code integer, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    v_status  task_status;
    v_blocker uuid;
    v_ids     uuid[];
    v_down    uuid[] := '{}';
    v_back    uuid[];
BEGIN
    PERFORM tr_set_actor(p_actor);
    v_status := tr_lock_task(p_id, '{Failure,Canceled}', 'can be re-run');
    IF (SELECT deleted_at IS NOT NULL FROM tasks WHERE id = p_id) THEN
        PERFORM tr_raise_wrong_state('task is deleted; restore it first (POST /tasks/'
                                     || p_id || '/restore)');
    END IF;
    SELECT l.parent_id INTO v_blocker
    FROM task_links l JOIN tasks p ON p.id = l.parent_id
    WHERE l.child_id = p_id AND l.requires_success AND p.status IN ('Failure', 'Canceled')
    LIMIT 1;
    IF FOUND THEN
        PERFORM tr_raise_wrong_state(format(
            'required parent task %s is %s: re-run it with ?downstream=true', v_blocker,
            (SELECT status FROM tasks WHERE id = v_blocker)));
    END IF;
    IF p_downstream THEN
        WITH RECURSIVE down AS (
            SELECT l.child_id AS id FROM task_links l WHERE l.parent_id = p_id
            UNION
            SELECT l.child_id FROM down d JOIN task_links l ON l.parent_id = d.id
        )
        SELECT coalesce(array_agg(t.id ORDER BY t.seq), '{}') INTO v_down
        FROM down d JOIN tasks t ON t.id = d.id
        WHERE t.status IN ('Failure', 'Canceled') AND t.started_at IS NULL;
        -- Not those held back by a required parent that failed on its own.
        SELECT coalesce(array_agg(x ORDER BY x), '{}') INTO v_down
        FROM unnest(v_down) AS x
        WHERE NOT EXISTS (SELECT 1 FROM task_links l JOIN tasks p ON p.id = l.parent_id
                          WHERE l.child_id = x AND l.requires_success
                            AND p.status IN ('Failure', 'Canceled')
                            AND p.id <> p_id AND NOT p.id = ANY (v_down));
        SELECT coalesce(array_agg(t.id ORDER BY t.seq), '{}') INTO v_down
        FROM tasks t WHERE t.id = ANY (v_down);
    END IF;
    v_ids := ARRAY[p_id] || v_down;
    PERFORM 1 FROM tasks WHERE id = ANY (v_ids) ORDER BY id FOR UPDATE;
    -- What each re-run task waits for: parents not ended, or ended without
    -- the success it requires (the re-run ones count as not ended).
    UPDATE tasks c
    SET open_parents = (SELECT count(*) FROM task_links l JOIN tasks p ON p.id = l.parent_id
                        WHERE l.child_id = c.id
                          AND (NOT tr_is_terminal(p.status) OR p.id = ANY (v_ids)
                               OR (p.status <> 'Success' AND l.requires_success
                                   AND c.trigger_rule IS NULL))),
        par_ok = (SELECT count(*) FROM task_links l JOIN tasks p ON p.id = l.parent_id
                  WHERE l.child_id = c.id AND NOT p.id = ANY (v_ids) AND p.status = 'Success'),
        par_failed = (SELECT count(*) FROM task_links l JOIN tasks p ON p.id = l.parent_id
                      WHERE l.child_id = c.id AND NOT p.id = ANY (v_ids)
                        AND p.status IN ('Failure', 'Canceled')),
        par_skipped = (SELECT count(*) FROM task_links l JOIN tasks p ON p.id = l.parent_id
                       WHERE l.child_id = c.id AND NOT p.id = ANY (v_ids)
                         AND p.status = 'Skipped'),
        not_before = NULL, retry_at = NULL
    WHERE c.id = ANY (v_ids);
    -- Other children that had counted a re-run task as finished wait for it again.
    -- (A child with a trigger rule had counted every re-run parent, as
    -- failed: Failure or Canceled are the only statuses re-run.)
    WITH counted AS (
        UPDATE tasks c SET open_parents = c.open_parents + s.n,
                           par_failed = CASE WHEN c.trigger_rule IS NULL THEN c.par_failed
                                             ELSE c.par_failed - s.n END
        FROM (SELECT l.child_id, count(*) AS n FROM task_links l JOIN tasks ch ON ch.id = l.child_id
              WHERE l.parent_id = ANY (v_ids)
                AND (NOT l.requires_success OR ch.trigger_rule IS NOT NULL)
                AND NOT l.child_id = ANY (v_ids)
              GROUP BY l.child_id) s
        WHERE c.id = s.child_id AND NOT tr_is_terminal(c.status)
        RETURNING c.id, c.status, tr_rule_state(c.trigger_rule, c.open_parents, c.par_ok,
                                                c.par_failed, c.par_skipped) AS state
    )
    SELECT array_agg(counted.id) INTO v_back FROM counted
    WHERE counted.status = 'Pending' AND counted.state <> 'ready';
    IF v_back IS NOT NULL THEN
        PERFORM tr_move_tasks(v_back, 'Waiting', NULL, NULL, true);
    END IF;
    PERFORM tr_move_tasks(ARRAY(SELECT id FROM tasks WHERE id = ANY (v_ids)
                                AND tr_rule_state(trigger_rule, open_parents, par_ok, par_failed,
                                                  par_skipped) = 'ready'),
                          'Pending', NULL, NULL, true);
    PERFORM tr_move_tasks(ARRAY(SELECT id FROM tasks WHERE id = ANY (v_ids)
                                AND tr_rule_state(trigger_rule, open_parents, par_ok, par_failed,
                                                  par_skipped) <> 'ready'),
                          'Waiting', NULL, NULL, true);
    PERFORM tr_task_event(p_id, 'rerun', v_status, NULL, jsonb_build_object(
        'downstream', p_downstream, 'rearmed', to_jsonb(v_down)));
    PERFORM tr_metric_add('taskrunner_task_retries_total',
                          jsonb_build_object('kind', (SELECT kind FROM tasks WHERE id = p_id),
                                             'reason', 'manual'), 1);
    PERFORM tr_wake();
    code := 200;
    SELECT CASE WHEN p_downstream
                THEN (tr_task_json(t)::jsonb || jsonb_build_object('rearmed', to_jsonb(v_down)))::text
                ELSE tr_task_json(t)::text END
    INTO body FROM tasks t WHERE t.id = p_id;
END
$$;

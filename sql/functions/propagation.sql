-- propagation: what follows when a task ends: its end (and cancel) webhooks
-- are queued, and its children count it as finished or, when they required
-- its success, end too, cascading through the DAG.

-- What a task's trigger rule makes of its parents' outcomes so far
-- (API.md, "Trigger rules and outputs"): 'ready' (it may start), 'skip'
-- (the rule can no longer be met) or 'wait'. p_open: parents not ended;
-- p_ok: ended Success; p_failed: Failure or Canceled; p_skipped: Skipped.
-- A task without a rule (NULL) is ready when no parent it counts is open
-- (open_parents then holds the per-link requires_success count).
CREATE OR REPLACE FUNCTION tr_rule_state(p_rule text, p_open integer, p_ok integer,
                                         p_failed integer, p_skipped integer) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN p_rule IS NULL THEN CASE WHEN p_open = 0 THEN 'ready' ELSE 'wait' END
        WHEN p_rule = 'all_success' THEN
            CASE WHEN p_failed + p_skipped > 0 THEN 'skip' WHEN p_open = 0 THEN 'ready' ELSE 'wait' END
        WHEN p_rule = 'all_done' THEN CASE WHEN p_open = 0 THEN 'ready' ELSE 'wait' END
        WHEN p_rule = 'none_failed' THEN
            CASE WHEN p_failed > 0 THEN 'skip' WHEN p_open = 0 THEN 'ready' ELSE 'wait' END
        WHEN p_rule = 'one_success' THEN
            CASE WHEN p_ok > 0 THEN 'ready' WHEN p_open = 0 THEN 'skip' ELSE 'wait' END
        WHEN p_rule = 'one_failed' THEN
            CASE WHEN p_failed > 0 THEN 'ready' WHEN p_open = 0 THEN 'skip' ELSE 'wait' END
        WHEN p_rule = 'all_failed' THEN
            CASE WHEN p_ok + p_skipped > 0 THEN 'skip' WHEN p_open = 0 THEN 'ready' ELSE 'wait' END
        ELSE 'wait' END
$$;

-- Ends task p_id with p_status (Success, Failure, Canceled or Skipped) and
-- everything that follows from it, in the caller's transaction. A task
-- already terminal is left alone. p_fire_cancel also fires cancel actions
-- of a started task that fails (a heartbeat timeout: the executor must be
-- told to stop). p_stop_batch: children in that batch are canceled instead
-- of failed (a batch being stopped as a whole); p_stop_group the same for
-- a group (DELETE /groups/{group}). Counts the children each ended task
-- touched in taskrunner_dependency_propagations_total.
CREATE OR REPLACE FUNCTION tr_finish_task(p_id uuid, p_status task_status, p_reason text,
                                          p_fire_cancel boolean DEFAULT false,
                                          p_stop_batch uuid DEFAULT NULL,
                                          p_stop_group text DEFAULT NULL) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    q_id     uuid[] := ARRAY[p_id];
    q_status task_status[] := ARRAY[p_status];
    q_reason text[] := ARRAY[p_reason];
    i        integer := 1;
    v_id     uuid;
    v_status task_status;
    v_old    task_status;
    v_n      bigint;
    v_ready  uuid[];
    v_skip   uuid[];
    v_skip_rule text[];
    v_prop   jsonb := '{}';  -- parent outcome -> children touched
    r        record;
BEGIN
    WHILE i <= array_length(q_id, 1) LOOP
        v_id := q_id[i];
        v_status := q_status[i];
        SELECT m.from_status INTO v_old
        FROM tr_move_tasks(ARRAY[v_id], v_status, q_reason[i]) m;
        IF NOT FOUND THEN  -- already ended (or gone)
            i := i + 1;
            CONTINUE;
        END IF;

        -- A start call still waiting for a retry is moot now.
        UPDATE deliveries SET state = 'done', finished_at = now(), last_error = 'task ended'
        WHERE task_id = v_id AND trigger = 'Start' AND state = 'queued';

        -- Actions with a "when" (API.md, "Webhooks v2") fire only if it
        -- holds now, on the output and metadata the task ends with; those
        -- that do not are written to its history (action_not_fired).
        WITH due AS (
            SELECT a.id, a.trigger, a.fire_when, a.position,
                   CASE WHEN a.fire_when IS NULL THEN true
                        ELSE tr_when_holds(a.fire_when,
                                           (SELECT x.output FROM tasks x WHERE x.id = v_id),
                                           (SELECT x.metadata FROM tasks x WHERE x.id = v_id))
                   END AS fires
            FROM actions a
            WHERE a.task_id = v_id
              AND ((a.trigger = 'End' AND a.condition = v_status::text)
                   OR (a.trigger = 'Cancel' AND v_old IN ('Claimed', 'Running')
                       AND (v_status = 'Canceled' OR (i = 1 AND p_fire_cancel))))
        ), queued AS (
            INSERT INTO deliveries (task_id, action_id, trigger, outcome)
            SELECT v_id, due.id, due.trigger, v_status FROM due WHERE due.fires
            ORDER BY due.position
        )
        INSERT INTO task_events (task_id, event, actor, from_status, to_status, detail)
        SELECT v_id, 'action_not_fired', tr_actor(), v_status, v_status,
               jsonb_build_object('action_id', due.id, 'trigger', due.trigger,
                                  'when', due.fire_when)
        FROM due WHERE NOT due.fires
        ORDER BY due.position;

        -- Its children, locked in id order (as tr_move_tasks locks): parents
        -- of one child ending at once on several workers count one after
        -- the other, each seeing the counts the other left.
        PERFORM 1 FROM task_links l JOIN tasks c ON c.id = l.child_id
        WHERE l.parent_id = v_id AND NOT tr_is_terminal(c.status)
        ORDER BY c.id FOR UPDATE OF c;
        -- Children that count this parent as finished (every child with a
        -- trigger rule, which also counts the outcome); those whose rule
        -- (or, without one, whose last open parent) now lets them start go
        -- Waiting -> Pending, those whose rule can no longer be met end
        -- Skipped (below, with the cascade).
        WITH counted AS (
            UPDATE tasks c
            SET open_parents = c.open_parents - 1,
                par_ok = c.par_ok + (v_status = 'Success')::integer,
                par_failed = c.par_failed + (v_status IN ('Failure', 'Canceled'))::integer,
                par_skipped = c.par_skipped + (v_status = 'Skipped')::integer,
                last_updated = now()
            FROM task_links l
            WHERE l.parent_id = v_id AND c.id = l.child_id
              AND NOT tr_is_terminal(c.status)
              AND (v_status = 'Success' OR NOT l.requires_success OR c.trigger_rule IS NOT NULL)
            RETURNING c.id, c.seq, c.status, c.trigger_rule,
                      tr_rule_state(c.trigger_rule, c.open_parents, c.par_ok, c.par_failed,
                                    c.par_skipped) AS state
        )
        SELECT count(*),
               array_agg(counted.id) FILTER (WHERE counted.state = 'ready'
                                             AND counted.status = 'Waiting'),
               array_agg(counted.id ORDER BY counted.seq)
                   FILTER (WHERE counted.state = 'skip'
                           AND counted.status IN ('Waiting', 'Paused')),
               array_agg(counted.trigger_rule ORDER BY counted.seq)
                   FILTER (WHERE counted.state = 'skip'
                           AND counted.status IN ('Waiting', 'Paused'))
        INTO v_n, v_ready, v_skip, v_skip_rule
        FROM counted;
        IF v_ready IS NOT NULL THEN
            PERFORM tr_move_tasks(v_ready, 'Pending');
        END IF;
        IF v_skip IS NOT NULL THEN
            q_id := q_id || v_skip;
            q_status := q_status || array_fill('Skipped'::task_status,
                                               ARRAY[array_length(v_skip, 1)]);
            q_reason := q_reason || ARRAY(
                SELECT format('trigger_rule %s can no longer be met: parent task %s is %s',
                              x.rule, v_id, v_status)
                FROM unnest(v_skip_rule) WITH ORDINALITY AS x (rule, n) ORDER BY x.n);
        END IF;

        -- Children that required this parent's success end too.
        IF v_status <> 'Success' THEN
            FOR r IN SELECT c.id, c.batch_id, c.grp FROM task_links l JOIN tasks c ON c.id = l.child_id
                     WHERE l.parent_id = v_id AND l.requires_success
                       AND c.trigger_rule IS NULL AND NOT tr_is_terminal(c.status)
                     ORDER BY c.seq
            LOOP
                q_id := q_id || r.id;
                IF (p_stop_batch IS NOT NULL AND r.batch_id = p_stop_batch)
                   OR (p_stop_group IS NOT NULL AND r.grp = p_stop_group) THEN
                    q_status := q_status || 'Canceled'::task_status;
                    q_reason := q_reason || NULL::text;
                ELSE
                    q_status := q_status || 'Failure'::task_status;
                    q_reason := q_reason || format('Required parent task %s %s', v_id,
                                   CASE WHEN v_status = 'Failure' THEN 'failed'
                                        WHEN v_status = 'Skipped' THEN 'was skipped'
                                        ELSE 'was canceled' END);
                END IF;
                v_n := v_n + 1;
            END LOOP;
        END IF;
        IF v_n > 0 THEN
            v_prop := v_prop || jsonb_build_object(v_status,
                                                   coalesce((v_prop ->> v_status::text)::bigint, 0) + v_n);
        END IF;
        i := i + 1;
    END LOOP;
    IF v_prop <> '{}' THEN
        PERFORM tr_metrics_add(array_agg('taskrunner_dependency_propagations_total'::text),
                               array_agg(jsonb_build_object('parent_outcome', p.key)),
                               array_agg(p.value::text::bigint))
        FROM jsonb_each(v_prop) AS p;
    END IF;
    PERFORM tr_wake();
END
$$;

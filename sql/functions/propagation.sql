-- propagation: what follows when a task ends: its end (and cancel) webhooks
-- are queued, and its children count it as finished or, when they required
-- its success, end too, cascading through the DAG.

-- Ends task p_id with p_status (Success, Failure or Canceled) and
-- everything that follows from it, in the caller's transaction. A task
-- already terminal is left alone. p_fire_cancel also fires cancel actions
-- of a started task that fails (a heartbeat timeout: the executor must be
-- told to stop). p_stop_batch: children in that batch are canceled instead
-- of failed (a batch being stopped as a whole). Counts the children each
-- ended task touched in taskrunner_dependency_propagations_total.
CREATE OR REPLACE FUNCTION tr_finish_task(p_id uuid, p_status task_status, p_reason text,
                                          p_fire_cancel boolean DEFAULT false,
                                          p_stop_batch uuid DEFAULT NULL) RETURNS void
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

        INSERT INTO deliveries (task_id, action_id, trigger, outcome)
        SELECT v_id, a.id, a.trigger, v_status
        FROM actions a
        WHERE a.task_id = v_id
          AND ((a.trigger = 'End' AND a.condition = v_status::text)
               OR (a.trigger = 'Cancel' AND v_old IN ('Claimed', 'Running')
                   AND (v_status = 'Canceled' OR (i = 1 AND p_fire_cancel))))
        ORDER BY a.position;

        -- Children that count this parent as finished; those with no open
        -- parent left and Waiting become Pending.
        WITH counted AS (
            UPDATE tasks c
            SET open_parents = c.open_parents - 1, last_updated = now()
            FROM task_links l
            WHERE l.parent_id = v_id AND c.id = l.child_id
              AND NOT tr_is_terminal(c.status)
              AND (v_status = 'Success' OR NOT l.requires_success)
            RETURNING c.id, c.open_parents, c.status
        )
        SELECT count(*), array_agg(counted.id) FILTER (WHERE counted.open_parents = 0
                                                       AND counted.status = 'Waiting')
        INTO v_n, v_ready
        FROM counted;
        IF v_ready IS NOT NULL THEN
            PERFORM tr_move_tasks(v_ready, 'Pending');
        END IF;

        -- Children that required this parent's success end too.
        IF v_status <> 'Success' THEN
            FOR r IN SELECT c.id, c.batch_id FROM task_links l JOIN tasks c ON c.id = l.child_id
                     WHERE l.parent_id = v_id AND l.requires_success
                       AND NOT tr_is_terminal(c.status)
                     ORDER BY c.seq
            LOOP
                q_id := q_id || r.id;
                IF p_stop_batch IS NOT NULL AND r.batch_id = p_stop_batch THEN
                    q_status := q_status || 'Canceled'::task_status;
                    q_reason := q_reason || NULL::text;
                ELSE
                    q_status := q_status || 'Failure'::task_status;
                    q_reason := q_reason || format('Required parent task %s %s', v_id,
                                   CASE WHEN v_status = 'Failure' THEN 'failed'
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

-- statuses: the one owner of task status changes, and the audit trail of a
-- task's life.
--
-- The statuses are the type task_status, the allowed changes the table
-- task_transitions (sql/migrations/0008_status_types.sql). tr_move_tasks
-- makes every change of a task's status after its creation: it refuses a
-- pair that table does not list, sets what the new status implies, writes
-- the history event and counts the change. Nothing else writes
-- tasks.status (tests/sql/statuses.sql checks the function files for it).

CREATE OR REPLACE FUNCTION tr_is_terminal(status task_status) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT status IN ('Success', 'Failure', 'Canceled', 'Skipped')
$$;

-- Rows that name a status added by a migration (ALTER TYPE ... ADD VALUE),
-- which the transaction that added it cannot use: scripts/migrate calls
-- this in a transaction of its own once the migrations are committed.
-- Idempotent.
CREATE OR REPLACE FUNCTION tr_after_migrate() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    -- 0060: a task whose trigger rule can no longer be met ends Skipped.
    INSERT INTO task_transitions (from_status, to_status) VALUES
        ('Waiting', 'Skipped'), ('Pending', 'Skipped'), ('Paused', 'Skipped')
    ON CONFLICT DO NOTHING;
END
$$;

-- One row of a task's audit trail that is not a status change (updates,
-- progress, replays).
CREATE OR REPLACE FUNCTION tr_task_event(p_task uuid, p_event text, p_from task_status,
                                         p_to task_status, p_detail jsonb)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO task_events (task_id, event, actor, from_status, to_status, detail)
    VALUES (p_task, p_event, tr_actor(), p_from, p_to, coalesce(p_detail, '{}'));
END
$$;

-- Moves to p_to each task of p_ids whose status may go there (and, when
-- p_attempts is given, pairwise with p_ids, whose start attempt is that
-- one); the others are left as they are. A re-run's moves (an ended task
-- starting again) are made only when p_rerun says so. What the new status
-- implies:
--   Claimed   attempt + 1, heartbeat now
--   Running   started (the first time), heartbeat now, deadline = now + timeout
--   terminal  ended now, failure_reason = p_reason, no deadline
--   Waiting, Pending, Paused  no heartbeat, no deadline, not ended
--   Pending   its lane (tr_lane_key) computed and listed (tr_lanes_add)
-- Each task moved gets its history event (paused, resumed, canceled or
-- status, with the failure reason and the attempt) and counts in
-- taskrunner_task_status_transitions_total and, for terminal statuses,
-- taskrunner_tasks_completed_total and how many attempts it took (the
-- histogram taskrunner_task_attempts, made at scrape time). Returns the
-- tasks moved and their status before. Rows are locked in id order. Its plan
-- is made once and finds every row by an index (force_generic_plan; in the
-- default mode PostgreSQL planned this statement again on every call, 1.2 of
-- the 1.5 ms of a one-task move).
CREATE OR REPLACE FUNCTION tr_move_tasks(p_ids uuid[], p_to task_status, p_reason text DEFAULT NULL,
                                         p_attempts integer[] DEFAULT NULL,
                                         p_rerun boolean DEFAULT false)
RETURNS TABLE (id uuid, from_status task_status)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $$
DECLARE
    v_terminal boolean := tr_is_terminal(p_to);
BEGIN
    RETURN QUERY
    WITH cur AS (
        SELECT t.id, t.status
        FROM tasks t
        JOIN unnest(p_ids, p_attempts) AS s (id, attempt) ON s.id = t.id
        WHERE t.id = ANY (p_ids)
          AND (p_attempts IS NULL OR t.attempt = s.attempt)
          AND EXISTS (SELECT 1 FROM task_transitions x
                      WHERE x.from_status = t.status AND x.to_status = p_to
                        AND (NOT x.rerun OR p_rerun))
        ORDER BY t.id
        FOR UPDATE OF t
    ), moved AS (
        UPDATE tasks t
        SET status = p_to,
            attempt = CASE WHEN p_to = 'Claimed' THEN t.attempt + 1 ELSE t.attempt END,
            heartbeat_at = CASE WHEN p_to IN ('Claimed', 'Running') THEN now()
                                WHEN v_terminal THEN t.heartbeat_at END,
            started_at = CASE WHEN p_to = 'Running' THEN coalesce(t.started_at, now())
                              ELSE t.started_at END,
            deadline_at = CASE WHEN p_to = 'Running'
                               THEN now() + make_interval(secs => t.timeout) END,
            ended_at = CASE WHEN v_terminal THEN now() END,
            failure_reason = CASE WHEN v_terminal THEN p_reason ELSE t.failure_reason END,
            lane = CASE WHEN p_to = 'Pending'
                        THEN tr_lane_key(t.priority, t.rules, t.metadata, t.fair_by)
                        ELSE t.lane END,
            last_updated = now()
        FROM cur
        WHERE t.id = cur.id
        RETURNING t.id, t.seq, t.kind, t.attempt, t.failure_reason, cur.status AS old,
                  t.batch_id, t.grp, t.success, t.failures
    ), recounted AS (
        -- The counts per batch and group (sql/functions/counts.sql): each
        -- task leaves its old status and enters the new one.
        INSERT INTO task_count_deltas (scope, key, status, n, success, failures)
        SELECT x.scope, x.key, x.status, sum(x.n), sum(x.s), sum(x.f)
        FROM (SELECT 'b'::"char" AS scope, m.batch_id::text AS key, m.old::text AS status,
                     -1 AS n, -m.success AS s, -m.failures AS f FROM moved m
              UNION ALL
              SELECT 'b', m.batch_id::text, p_to::text, 1, m.success, m.failures FROM moved m
              UNION ALL
              SELECT 'g', m.grp, m.old::text, -1, -m.success, -m.failures FROM moved m
              WHERE m.grp IS NOT NULL
              UNION ALL
              SELECT 'g', m.grp, p_to::text, 1, m.success, m.failures FROM moved m
              WHERE m.grp IS NOT NULL) x
        GROUP BY x.scope, x.key, x.status
    ), events AS (
        INSERT INTO task_events (task_id, event, actor, from_status, to_status, detail)
        SELECT m.id,
               CASE WHEN p_to = 'Paused' THEN 'paused'
                    WHEN p_to = 'Canceled' THEN 'canceled'
                    WHEN m.old = 'Paused' AND NOT v_terminal THEN 'resumed'
                    ELSE 'status' END,
               tr_actor(), m.old, p_to,
               jsonb_strip_nulls(jsonb_build_object(
                   'failure_reason', CASE WHEN v_terminal THEN m.failure_reason END,
                   'attempt', CASE WHEN p_to = 'Claimed' THEN m.attempt END))
        FROM moved m
        ORDER BY m.seq
    ), counted AS (
        INSERT INTO metric_deltas (name, labels, n)
        SELECT 'taskrunner_task_status_transitions_total',
               jsonb_build_object('from', m.old, 'to', p_to), count(*)
        FROM moved m GROUP BY m.old
        UNION ALL
        SELECT 'taskrunner_tasks_completed_total',
               jsonb_build_object('outcome', p_to, 'kind', m.kind), count(*)
        FROM moved m WHERE v_terminal GROUP BY m.kind
        -- Start attempts per ended task: how many ended after n attempts,
        -- made into the histogram taskrunner_task_attempts by the scrape.
        UNION ALL
        SELECT 'taskrunner_task_attempts_observed', jsonb_build_object('attempts', m.attempt),
               count(*)
        FROM moved m WHERE v_terminal GROUP BY m.attempt
    )
    SELECT m.id, m.old FROM moved m;
    IF p_to = 'Pending' THEN
        PERFORM tr_lanes_add(p_ids);
    END IF;
END
$$;

-- New tasks: a "created" event each, the creation counter, the counts of
-- their batches and groups (counts.sql) and their batches' kinds, in a few
-- statements (statement-level, with a transition table: one call per INSERT
-- however many rows, so a 10,000-task batch is one call).
CREATE OR REPLACE FUNCTION tr_tasks_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO task_count_deltas (scope, key, status, n, success, failures)
    SELECT 'b', n.batch_id::text, n.status::text, count(*), sum(n.success), sum(n.failures)
    FROM new_tasks n GROUP BY n.batch_id, n.status
    UNION ALL
    SELECT 'g', n.grp, n.status::text, count(*), sum(n.success), sum(n.failures)
    FROM new_tasks n WHERE n.grp IS NOT NULL GROUP BY n.grp, n.status;
    UPDATE batches b
    SET kinds = ARRAY(SELECT DISTINCT x FROM unnest(b.kinds || k.kinds) AS x ORDER BY 1)
    FROM (SELECT n.batch_id, array_agg(DISTINCT n.kind) AS kinds FROM new_tasks n
          GROUP BY n.batch_id) k
    WHERE b.id = k.batch_id;
    WITH ev AS (
        INSERT INTO task_events (task_id, event, actor, to_status, detail)
        SELECT n.id, 'created', tr_actor(), n.status,
               jsonb_build_object('batch_id', n.batch_id, 'local_id', n.local_id)
        FROM new_tasks n ORDER BY n.seq
        RETURNING 1
    )
    INSERT INTO metric_deltas (name, labels, n)
    SELECT 'taskrunner_tasks_created_total', '{}', count(*) FROM ev HAVING count(*) > 0;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER tasks_inserted AFTER INSERT ON tasks
    REFERENCING NEW TABLE AS new_tasks
    FOR EACH STATEMENT EXECUTE FUNCTION tr_tasks_inserted();

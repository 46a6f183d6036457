-- purge: removing for good what soft delete and retention give up (API.md
-- Part 2, "Soft delete and retention (#20)"). A worker duty
-- (worker/loop.c): one call removes up to a chunk of tasks with every row
-- that belongs to them, in one transaction, under an advisory lock so that
-- one worker purges at a time. Nothing of it goes to the history (its tasks
-- are gone); the worker logs the counts and taskrunner_tasks_purged_total
-- counts the tasks.

CREATE OR REPLACE FUNCTION tr_purge_lock() RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$ SELECT hashtextextended('taskrunner:purge', 0) $$;

-- Removes up to p_chunk tasks: those soft-deleted more than
-- p_deleted_after_s seconds ago, then (p_retention_s not NULL) those of the
-- oldest batches whose tasks all ended more than p_retention_s seconds ago;
-- never one that a task that has not ended depends on. With each task go its
-- deliveries (dead letters too), history, links, actions and rule
-- references; then the shared action params no action uses any more, the
-- batches left empty and their idempotency keys. Returns the counts; 0 when
-- another worker is purging now.
CREATE OR REPLACE FUNCTION tr_purge(p_deleted_after_s bigint, p_retention_s bigint,
                                    p_chunk integer, OUT tasks_purged integer,
                                    OUT batches_purged integer)
LANGUAGE plpgsql AS $$
DECLARE
    v_ids     uuid[];
    v_batches uuid[];
    v_params  bytea[];
    v_gone    uuid[];
BEGIN
    tasks_purged := 0;
    batches_purged := 0;
    IF NOT pg_try_advisory_xact_lock(tr_purge_lock()) THEN
        RETURN;
    END IF;
    PERFORM tr_set_actor('worker');
    SELECT coalesce(array_agg(x.id), '{}') INTO v_ids
    FROM (SELECT t.id FROM tasks t
          WHERE t.deleted_at < now() - make_interval(secs => p_deleted_after_s)
            AND tr_is_terminal(t.status)
            AND NOT EXISTS (SELECT 1 FROM task_links l JOIN tasks c ON c.id = l.child_id
                            WHERE l.parent_id = t.id AND NOT tr_is_terminal(c.status))
          ORDER BY t.deleted_at
          LIMIT p_chunk
          FOR UPDATE OF t SKIP LOCKED) x;
    IF p_retention_s IS NOT NULL AND cardinality(v_ids) < p_chunk THEN
        -- Batches oldest first (batches_created_idx), those whose every task
        -- ended before the cut-off; their tasks up to what the chunk leaves.
        SELECT v_ids || coalesce(array_agg(x.id), '{}'), coalesce(array_agg(DISTINCT x.batch_id), '{}')
        INTO v_ids, v_batches
        FROM (SELECT t.id, t.batch_id
              FROM (SELECT b.id FROM batches b
                    WHERE b.created_at < now() - make_interval(secs => p_retention_s)
                      AND NOT EXISTS (
                          SELECT 1 FROM tasks o WHERE o.batch_id = b.id
                            AND (NOT tr_is_terminal(o.status)
                                 OR o.ended_at >= now() - make_interval(secs => p_retention_s)))
                    ORDER BY b.created_at, b.id
                    LIMIT p_chunk) b
              JOIN tasks t ON t.batch_id = b.id
              WHERE t.id <> ALL (v_ids)
                AND NOT EXISTS (SELECT 1 FROM task_links l JOIN tasks c ON c.id = l.child_id
                                WHERE l.parent_id = t.id AND NOT tr_is_terminal(c.status))
              LIMIT p_chunk - cardinality(v_ids)
              FOR UPDATE OF t SKIP LOCKED) x;
        -- Batches of the cut-off left without any task (every task deduped
        -- away, or purged before) go too.
        v_batches := v_batches || ARRAY(
            SELECT b.id FROM batches b
            WHERE b.created_at < now() - make_interval(secs => p_retention_s)
              AND NOT EXISTS (SELECT 1 FROM tasks o WHERE o.batch_id = b.id)
            ORDER BY b.created_at LIMIT 100);
    END IF;
    v_batches := coalesce(v_batches, '{}') || ARRAY(
        SELECT DISTINCT t.batch_id FROM tasks t WHERE t.id = ANY (v_ids));
    IF cardinality(v_ids) = 0 AND cardinality(v_batches) = 0 THEN
        RETURN;
    END IF;

    -- The counts hold live tasks only: those purged by the retention leave
    -- their groups' counts (soft-deleted ones left them when deleted), and
    -- the counts of the batches that go are dropped below.
    PERFORM tr_counts_shift(ARRAY(SELECT t.id FROM tasks t
                                  WHERE t.id = ANY (v_ids) AND t.deleted_at IS NULL), -1);
    DELETE FROM deliveries WHERE task_id = ANY (v_ids);
    DELETE FROM task_events WHERE task_id = ANY (v_ids);
    DELETE FROM task_links WHERE parent_id = ANY (v_ids) OR child_id = ANY (v_ids);
    WITH gone AS (DELETE FROM actions WHERE task_id = ANY (v_ids) RETURNING params_id)
    SELECT array_agg(DISTINCT gone.params_id) FILTER (WHERE gone.params_id IS NOT NULL)
    INTO v_params FROM gone;
    DELETE FROM task_rule_refs WHERE task_id = ANY (v_ids);
    DELETE FROM tasks WHERE id = ANY (v_ids);
    GET DIAGNOSTICS tasks_purged = ROW_COUNT;
    IF v_params IS NOT NULL THEN
        -- Alone under the params lock: every batch being created holds it
        -- shared until it commits (tr_create_batch), so the check below, a
        -- new statement, sees their actions; one that comes after finds the
        -- params gone and writes them again.
        PERFORM pg_advisory_xact_lock(tr_params_lock());
        DELETE FROM action_params p
        WHERE p.id = ANY (v_params)
          AND NOT EXISTS (SELECT 1 FROM actions a WHERE a.params_id = p.id);
    END IF;
    WITH empty AS (
        DELETE FROM batches b
        WHERE b.id = ANY (v_batches) AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.batch_id = b.id)
        RETURNING b.id
    )
    SELECT coalesce(array_agg(empty.id), '{}') INTO v_gone FROM empty;
    batches_purged := cardinality(v_gone);
    DELETE FROM idempotency_keys WHERE batch_id = ANY (v_gone);
    DELETE FROM task_counts
    WHERE scope = 'b' AND key = ANY (ARRAY(SELECT g::text FROM unnest(v_gone) AS g));
    DELETE FROM task_count_deltas
    WHERE scope = 'b' AND key = ANY (ARRAY(SELECT g::text FROM unnest(v_gone) AS g));
    PERFORM tr_metric_add('taskrunner_tasks_purged_total', '{}', tasks_purged);
END
$$;

-- batches: the API's functions on batches (fcgi/batches.c): one batch's
-- counts, stopping it, the list of batches and a batch's DAG.

-- GET /batches/{id}. A batch made by a schedule also shows schedule_id and
-- scheduled_for (the slot; issue 12).
-- Deleted tasks are left out of the counts unless p_include_deleted.
CREATE OR REPLACE FUNCTION tr_batch_stats(p_batch uuid, p_include_deleted boolean DEFAULT false,
                                          OUT code integer, OUT body text)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    SELECT 200, json_build_object(
               'batch_id', b.id, 'requester', b.requester, 'created_at', tr_ts(b.created_at),
               'total', (SELECT count(*) FROM tasks t WHERE t.batch_id = b.id
                         AND (p_include_deleted OR t.deleted_at IS NULL)),
               'success', (SELECT coalesce(sum(t.success), 0) FROM tasks t WHERE t.batch_id = b.id
                           AND (p_include_deleted OR t.deleted_at IS NULL)),
               'failures', (SELECT coalesce(sum(t.failures), 0) FROM tasks t
                            WHERE t.batch_id = b.id
                              AND (p_include_deleted OR t.deleted_at IS NULL)),
               'paused', false,
               'by_status', (SELECT coalesce(json_object_agg(s.status, s.n), '{}')
                             FROM (SELECT t.status::text AS status, count(*) AS n FROM tasks t
                                   WHERE t.batch_id = b.id
                                     AND (p_include_deleted OR t.deleted_at IS NULL)
                                   GROUP BY 1 ORDER BY 1) s),
               -- issue 12: schedules
               'schedule_id', b.schedule_id, 'scheduled_for', tr_ts(b.scheduled_for),
               -- issue 15: soft delete
               'deleted_at', tr_ts(b.deleted_at)
           )::text
    INTO code, body
    FROM batches b WHERE b.id = p_batch;
    IF NOT FOUND THEN
        PERFORM tr_raise_not_found('batch');
    END IF;
END
$$;

-- DELETE /batches/{id}: cancels every task of the batch that has not ended.
CREATE OR REPLACE FUNCTION tr_stop_batch(p_batch uuid, p_actor text, OUT code integer, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    PERFORM tr_set_actor(p_actor);
    PERFORM 1 FROM batches WHERE id = p_batch FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM tr_raise_not_found('batch');
    END IF;
    FOR r IN SELECT id FROM tasks WHERE batch_id = p_batch AND NOT tr_is_terminal(status)
             ORDER BY seq
    LOOP
        PERFORM tr_finish_task(r.id, 'Canceled', NULL, false, p_batch);
    END LOOP;
    SELECT s.code, s.body INTO code, body FROM tr_batch_stats(p_batch) s;
END
$$;

-- GET /batches: one page of batches, newest first, each with its counts by
-- status, kinds and times: the original client's BatchSummaryDto plus this
-- service's fields. Filters are NULL when not given: p_requester,
-- p_after/p_before on the batch's creation time (both ends included), and
-- p_kind/p_status/p_name (exact kind, status, substring of the name) keep the
-- batches having such a task. The page is read from batches_created_idx (or
-- batches_requester_created_idx), then each batch's tasks from
-- tasks_batch_idx: the cost is the page's tasks, not the table's. A custom
-- plan per call folds the tests of the filters not given away.
CREATE OR REPLACE FUNCTION tr_list_batches(p_requester text, p_kind text, p_status task_status,
                                           p_name text, p_after timestamptz,
                                           p_before timestamptz, p_limit bigint,
                                           p_offset bigint, p_include_deleted boolean DEFAULT false,
                                           OUT code integer, OUT body text)
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_custom_plan
AS $$
BEGIN
    code := 200;
    SELECT coalesce(json_agg(json_build_object(
               'batch_id', b.id, 'total_tasks', s.total,
               'first_created_at', tr_ts(coalesce(s.first_at, b.created_at)),
               'latest_updated_at', tr_ts(coalesce(s.latest_at, b.created_at)),
               'status_counts', json_build_object(
                   'waiting', s.waiting, 'pending', s.pending, 'claimed', s.claimed,
                   'running', s.running, 'success', s.success, 'failure', s.failure,
                   'paused', s.paused, 'canceled', s.canceled, 'skipped', 0),
               'kinds', s.kinds, 'requester', b.requester, 'created_at', tr_ts(b.created_at),
               'paused', false, 'schedule_id', b.schedule_id)
             ORDER BY b.created_at DESC, b.id DESC), '[]')::text
    INTO body
    FROM (SELECT * FROM batches x
          WHERE (p_requester IS NULL OR x.requester = p_requester)
            AND (p_include_deleted OR x.deleted_at IS NULL)
            AND (p_after IS NULL OR x.created_at >= p_after)
            AND (p_before IS NULL OR x.created_at <= p_before)
            AND ((p_kind IS NULL AND p_status IS NULL AND p_name IS NULL)
                 OR EXISTS (SELECT 1 FROM tasks t
                            WHERE t.batch_id = x.id
                              AND (p_include_deleted OR t.deleted_at IS NULL)
                              AND (p_kind IS NULL OR t.kind = p_kind)
                              AND (p_status IS NULL OR t.status = p_status)
                              AND (p_name IS NULL OR strpos(t.name, p_name) > 0)))
          ORDER BY x.created_at DESC, x.id DESC
          LIMIT p_limit OFFSET p_offset) b
    CROSS JOIN LATERAL (
        SELECT count(*) AS total, min(t.created_at) AS first_at,
               max(t.last_updated) AS latest_at,
               count(*) FILTER (WHERE t.status = 'Waiting') AS waiting,
               count(*) FILTER (WHERE t.status = 'Pending') AS pending,
               count(*) FILTER (WHERE t.status = 'Claimed') AS claimed,
               count(*) FILTER (WHERE t.status = 'Running') AS running,
               count(*) FILTER (WHERE t.status = 'Success') AS success,
               count(*) FILTER (WHERE t.status = 'Failure') AS failure,
               count(*) FILTER (WHERE t.status = 'Paused') AS paused,
               count(*) FILTER (WHERE t.status = 'Canceled') AS canceled,
               coalesce(array_agg(DISTINCT t.kind), '{}') AS kinds
        FROM tasks t WHERE t.batch_id = b.id AND (p_include_deleted OR t.deleted_at IS NULL)) s;
END
$$;

-- GET /batches/{id}/dag (and the original's GET /dag/{id}): every task of
-- the batch (list summaries with their local_id, in creation order) and every
-- dependency link of those tasks (a parent may be a task of another batch
-- that a dedupe strategy linked to).
CREATE OR REPLACE FUNCTION tr_batch_dag(p_batch uuid, OUT code integer, OUT body text)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    PERFORM 1 FROM batches WHERE id = p_batch;
    IF NOT FOUND THEN
        PERFORM tr_raise_not_found('batch');
    END IF;
    code := 200;
    body := json_build_object(
        'batch_id', p_batch,
        'tasks', (SELECT coalesce(json_agg(tr_task_summary_json(t)::jsonb
                                           || jsonb_build_object('local_id', t.local_id)
                                           ORDER BY t.seq), '[]')
                  FROM tasks t WHERE t.batch_id = p_batch),
        'links', (SELECT coalesce(json_agg(json_build_object(
                                      'parent_id', l.parent_id, 'child_id', l.child_id,
                                      'requires_success', l.requires_success)
                                  ORDER BY c.seq, l.parent_id), '[]')
                  FROM tasks c JOIN task_links l ON l.child_id = c.id
                  WHERE c.batch_id = p_batch))::text;
END
$$;

-- POST /batches/{id}/delete (p_delete) and /restore: every task of the
-- batch, which must all have ended (409 otherwise), is soft-deleted, or
-- restored, each with its history event; the batch leaves GET /batches or
-- comes back. Answers the batch's counts (with its deleted tasks).
CREATE OR REPLACE FUNCTION tr_soft_delete_batch(p_batch uuid, p_delete boolean, p_actor text,
                                                OUT code integer, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    v_open integer;
BEGIN
    PERFORM tr_set_actor(p_actor);
    PERFORM 1 FROM batches WHERE id = p_batch FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM tr_raise_not_found('batch');
    END IF;
    IF p_delete THEN
        -- Locked so that none starts again (a retry) while it is being deleted.
        PERFORM 1 FROM tasks WHERE batch_id = p_batch ORDER BY id FOR UPDATE;
        SELECT count(*) INTO v_open FROM tasks
        WHERE batch_id = p_batch AND NOT tr_is_terminal(status);
        IF v_open > 0 THEN
            PERFORM tr_raise_wrong_state(format(
                'the batch has %s task(s) that have not ended; only a batch whose tasks all '
                'ended can be deleted (DELETE /batches/%s stops it)', v_open, p_batch));
        END IF;
    END IF;
    WITH changed AS (
        UPDATE tasks t SET deleted_at = CASE WHEN p_delete THEN now() END
        WHERE t.batch_id = p_batch AND (t.deleted_at IS NULL) = p_delete
        RETURNING t.id, t.status
    )
    INSERT INTO task_events (task_id, event, actor, from_status, to_status, detail)
    SELECT c.id, CASE WHEN p_delete THEN 'deleted' ELSE 'restored' END, tr_actor(),
           c.status, c.status, jsonb_build_object('batch_id', p_batch)
    FROM changed c;
    UPDATE batches SET deleted_at = CASE WHEN p_delete THEN now() END WHERE id = p_batch;
    SELECT s.code, s.body INTO code, body FROM tr_batch_stats(p_batch, true) s;
END
$$;

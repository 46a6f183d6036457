-- batches: the API's functions on batches (fcgi/batches.c): one batch's
-- counts, stopping it, the list of batches and a batch's DAG.

-- GET /batches/{id}. A batch made by a schedule also shows schedule_id and
-- scheduled_for (the slot; issue 12). The counts of its live tasks come from
-- task_counts (counts.sql), not from the batch's tasks; with
-- p_include_deleted, its soft-deleted tasks are counted too, from the tasks.
CREATE OR REPLACE FUNCTION tr_batch_stats(p_batch uuid, p_include_deleted boolean DEFAULT false,
                                          OUT code integer, OUT body text)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    SELECT 200, json_build_object(
               'batch_id', b.id, 'requester', b.requester, 'created_at', tr_ts(b.created_at),
               'total', s.total, 'success', s.success, 'failures', s.failures,
               'paused', b.paused, 'by_status', s.by_status,
               -- issue 12: schedules
               'schedule_id', b.schedule_id, 'scheduled_for', tr_ts(b.scheduled_for),
               -- issue 15: soft delete
               'deleted_at', tr_ts(b.deleted_at)
           )::text
    INTO code, body
    FROM batches b
    CROSS JOIN LATERAL (
        SELECT coalesce(sum(c.n), 0) AS total, coalesce(sum(c.success), 0) AS success,
               coalesce(sum(c.failures), 0) AS failures,
               coalesce(json_object_agg(c.status, c.n ORDER BY c.status)
                        FILTER (WHERE c.n <> 0), '{}') AS by_status
        FROM (SELECT x.status, x.n, x.success, x.failures
              FROM tr_counts('b', b.id::text) x WHERE NOT p_include_deleted
              UNION ALL
              SELECT t.status::text, count(*), sum(t.success), sum(t.failures)
              FROM tasks t WHERE p_include_deleted AND t.batch_id = b.id
              GROUP BY t.status) c) s
    WHERE b.id = p_batch;
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
-- service's fields. Filters are NULL when not given: p_requester, p_paused,
-- p_schedule_id, p_after/p_before on the batch's creation time (both ends
-- included), and p_kind/p_status/p_name/p_group (exact kind, status,
-- substring of the name, group) keep the batches having such a task. The
-- page is read from batches_created_idx (or batches_requester_created_idx),
-- then each batch's counts from task_counts (counts.sql): the cost is the
-- page's batches, not their tasks. first_created_at is the batch's creation
-- (its tasks are created in the same transaction), latest_updated_at the
-- last change counted (a status change or a progress count of one of its
-- tasks), kinds those of its tasks (batches.kinds). Soft-deleted batches,
-- and the soft-deleted tasks in the counts and the task filters, are left out
-- unless p_include_deleted (whose counts are then read from the page's tasks).
CREATE OR REPLACE FUNCTION tr_list_batches(p_requester text, p_kind text, p_status task_status,
                                           p_name text, p_after timestamptz,
                                           p_before timestamptz, p_group text,
                                           p_schedule_id uuid, p_paused boolean,
                                           p_limit bigint, p_offset bigint,
                                           p_include_deleted boolean DEFAULT false,
                                           OUT code integer, OUT body text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_ids uuid[];
BEGIN
    code := 200;
    IF num_nulls(p_requester, p_kind, p_status, p_name, p_after, p_before, p_group,
                 p_schedule_id, p_paused) = 9 THEN
        -- No filter (the common first page): a plan kept for the session.
        v_ids := ARRAY(SELECT x.id FROM batches x
                       WHERE p_include_deleted OR x.deleted_at IS NULL
                       ORDER BY x.created_at DESC, x.id DESC
                       LIMIT p_limit OFFSET p_offset);
    ELSE
        -- Planned for these values at each call, so the tests of the filters
        -- not given fold away and each combination uses its index.
        EXECUTE $q$
            SELECT ARRAY(
                SELECT x.id FROM batches x
                WHERE ($1::text IS NULL OR x.requester = $1)
                  AND ($5::timestamptz IS NULL OR x.created_at >= $5)
                  AND ($6::timestamptz IS NULL OR x.created_at <= $6)
                  AND ($8::uuid IS NULL OR x.schedule_id = $8)
                  AND ($9::boolean IS NULL OR x.paused = $9)
                  AND ($12 OR x.deleted_at IS NULL)
                  AND (($2::text IS NULL AND $3::task_status IS NULL AND $4::text IS NULL
                        AND $7::text IS NULL)
                       OR EXISTS (SELECT 1 FROM tasks t
                                  WHERE t.batch_id = x.id
                                    AND ($12 OR t.deleted_at IS NULL)
                                    AND ($2::text IS NULL OR t.kind = $2)
                                    AND ($3::task_status IS NULL OR t.status = $3)
                                    AND ($4::text IS NULL OR strpos(t.name, $4) > 0)
                                    AND ($7::text IS NULL OR t.grp = $7)))
                ORDER BY x.created_at DESC, x.id DESC
                LIMIT $10 OFFSET $11)
        $q$ INTO v_ids
        USING p_requester, p_kind, p_status, p_name, p_after, p_before, p_group,
              p_schedule_id, p_paused, p_limit, p_offset, p_include_deleted;
    END IF;
    WITH keys AS (
        SELECT ARRAY(SELECT i::text FROM unnest(v_ids) AS i) AS k
    ), counts AS (
        -- The page's counts in one pass (tr_counts, for every key at once).
        SELECT u.key, sum(u.n) AS total, max(u.at) AS latest_at,
               sum(u.n) FILTER (WHERE u.status = 'Waiting') AS waiting,
               sum(u.n) FILTER (WHERE u.status = 'Pending') AS pending,
               sum(u.n) FILTER (WHERE u.status = 'Claimed') AS claimed,
               sum(u.n) FILTER (WHERE u.status = 'Running') AS running,
               sum(u.n) FILTER (WHERE u.status = 'Success') AS success,
               sum(u.n) FILTER (WHERE u.status = 'Failure') AS failure,
               sum(u.n) FILTER (WHERE u.status = 'Paused') AS paused,
               sum(u.n) FILTER (WHERE u.status = 'Canceled') AS canceled,
               sum(u.n) FILTER (WHERE u.status = 'Skipped') AS skipped
        FROM (SELECT c.key, c.status, c.n, c.last_at AS at FROM task_counts c, keys
              WHERE NOT p_include_deleted AND c.scope = 'b' AND c.key = ANY (keys.k)
              UNION ALL
              SELECT d.key, d.status, d.n, d.at FROM task_count_deltas d, keys
              WHERE NOT p_include_deleted AND d.scope = 'b' AND d.key = ANY (keys.k)
              UNION ALL
              -- With the soft-deleted tasks (task_counts counts the live ones):
              -- from the page's tasks.
              SELECT t.batch_id::text, t.status::text, 1, t.last_updated FROM tasks t
              WHERE p_include_deleted AND t.batch_id = ANY (v_ids)) u
        GROUP BY u.key
    )
    SELECT coalesce(json_agg(json_build_object(
               'batch_id', b.id, 'total_tasks', coalesce(s.total, 0),
               'first_created_at', tr_ts(b.created_at),
               'latest_updated_at', tr_ts(greatest(s.latest_at, b.created_at)),
               'status_counts', json_build_object(
                   'waiting', coalesce(s.waiting, 0), 'pending', coalesce(s.pending, 0),
                   'claimed', coalesce(s.claimed, 0), 'running', coalesce(s.running, 0),
                   'success', coalesce(s.success, 0), 'failure', coalesce(s.failure, 0),
                   'paused', coalesce(s.paused, 0), 'canceled', coalesce(s.canceled, 0),
                   'skipped', coalesce(s.skipped, 0)),
               'kinds', b.kinds, 'requester', b.requester, 'created_at', tr_ts(b.created_at),
               'paused', b.paused, 'schedule_id', b.schedule_id)
             ORDER BY b.created_at DESC, b.id DESC), '[]')::text
    INTO body
    FROM batches b LEFT JOIN counts s ON s.key = b.id::text
    WHERE b.id = ANY (v_ids);
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
    v_open    integer;
    v_changed uuid[];
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
    ), events AS (
        INSERT INTO task_events (task_id, event, actor, from_status, to_status, detail)
        SELECT c.id, CASE WHEN p_delete THEN 'deleted' ELSE 'restored' END, tr_actor(),
               c.status, c.status, jsonb_build_object('batch_id', p_batch)
        FROM changed c
    )
    SELECT coalesce(array_agg(c.id), '{}') INTO v_changed FROM changed c;
    PERFORM tr_counts_shift(v_changed, CASE WHEN p_delete THEN -1 ELSE 1 END);
    UPDATE batches SET deleted_at = CASE WHEN p_delete THEN now() END WHERE id = p_batch;
    SELECT s.code, s.body INTO code, body FROM tr_batch_stats(p_batch, true) s;
END
$$;

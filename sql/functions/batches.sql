-- batches: the API's functions on batches (fcgi/batches.c).

-- GET /batches/{id}. A batch made by a schedule also shows schedule_id and
-- scheduled_for (the slot; issue 12).
CREATE OR REPLACE FUNCTION tr_batch_stats(p_batch uuid, OUT code integer, OUT body text)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    SELECT 200, json_build_object(
               'batch_id', b.id, 'requester', b.requester, 'created_at', tr_ts(b.created_at),
               'total', (SELECT count(*) FROM tasks t WHERE t.batch_id = b.id),
               'by_status', (SELECT coalesce(json_object_agg(s.status, s.n), '{}')
                             FROM (SELECT t.status::text AS status, count(*) AS n FROM tasks t
                                   WHERE t.batch_id = b.id GROUP BY 1 ORDER BY 1) s),
               -- issue 12: schedules
               'schedule_id', b.schedule_id, 'scheduled_for', tr_ts(b.scheduled_for)
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

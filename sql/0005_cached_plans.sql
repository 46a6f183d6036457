-- 0005: hot functions in PL/pgSQL, whose plans are cached for the session.
--
-- A LANGUAGE sql function that PostgreSQL cannot inline is parsed and planned
-- again on every call. For the answer of POST /tasks that was 0.7 ms of a
-- 1.9 ms single-task create (pgbench calling tr_create_batch, 1 client).

-- See 0002: every task of a batch, in creation order, as a JSON array.
CREATE OR REPLACE FUNCTION tr_batch_tasks_json(p_batch uuid) RETURNS json
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (
        SELECT coalesce(json_agg(tr_task_object(t,
                   (SELECT json_agg(tr_action_json(a) ORDER BY a.position)
                    FROM actions a WHERE a.task_id = t.id),
                   (SELECT json_agg(json_build_object('id', l.parent_id,
                                                      'requires_success', l.requires_success)
                                    ORDER BY p.seq)
                    FROM task_links l JOIN tasks p ON p.id = l.parent_id
                    WHERE l.child_id = t.id),
                   b.requester) ORDER BY t.seq), '[]')
        FROM tasks t JOIN batches b ON b.id = t.batch_id
        WHERE t.batch_id = p_batch);
END
$$;

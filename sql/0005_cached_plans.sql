-- 0005: hot functions in PL/pgSQL, whose plans are cached for the session.
--
-- A LANGUAGE sql function that PostgreSQL cannot inline is parsed and planned
-- again on every call. For the answer of POST /tasks that was 0.7 ms of a
-- 1.9 ms single-task create (pgbench calling tr_create_batch, 1 client).

-- The plans cached by PL/pgSQL are made once and kept until the tables'
-- statistics change, so the statements here must not depend on the size of
-- tasks: each parent is looked up by its primary key (a plan joining task
-- links to tasks, made while tasks was small, read every task for every
-- dependency: 2.7 s for a 100-task DAG once 50,000 tasks were stored), and
-- the batch's requester is read once. (The dependencies subquery is written
-- out in both functions: a SQL function holding a subquery is never inlined,
-- and would be parsed again on every call.)

-- See 0002: every task of a batch, in creation order, as a JSON array.
CREATE OR REPLACE FUNCTION tr_batch_tasks_json(p_batch uuid) RETURNS json
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_requester text;
BEGIN
    SELECT b.requester INTO v_requester FROM batches b WHERE b.id = p_batch;
    RETURN (
        SELECT coalesce(json_agg(tr_task_object(t,
                   (SELECT json_agg(tr_action_json(a) ORDER BY a.position)
                    FROM actions a WHERE a.task_id = t.id),
                   (SELECT json_agg(json_build_object('id', l.parent_id,
                                                      'requires_success', l.requires_success)
                                    ORDER BY (SELECT p.seq FROM tasks p WHERE p.id = l.parent_id))
                    FROM task_links l WHERE l.child_id = t.id),
                   v_requester) ORDER BY t.seq), '[]')
        FROM tasks t
        WHERE t.batch_id = p_batch);
END
$$;

-- See 0002: one task.
CREATE OR REPLACE FUNCTION tr_task_json(t tasks) RETURNS json
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN tr_task_object(t,
        (SELECT json_agg(tr_action_json(a) ORDER BY a.position)
         FROM actions a WHERE a.task_id = t.id),
        (SELECT json_agg(json_build_object('id', l.parent_id,
                                           'requires_success', l.requires_success)
                         ORDER BY (SELECT p.seq FROM tasks p WHERE p.id = l.parent_id))
         FROM task_links l WHERE l.child_id = t.id),
        (SELECT b.requester FROM batches b WHERE b.id = t.batch_id));
END
$$;

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

-- See 0002: every task of a batch, in creation order, as a JSON array; now
-- the tasks of the batch document p_tasks, looked up by their ids (a task
-- deduped away was never stored, so it is not found). By id, the best plan
-- is the same whatever the batch, so it is made once (force_generic_plan): in
-- the default mode PostgreSQL planned the query again on every call, because
-- a plan for a known one-element array always looks cheaper (0.41 ms of
-- planning in a 1 ms single-task create; pgbench, 8 clients: 939-1,019 ->
-- 1,608-1,748 creates/s). A plan made once must also stay good as tasks
-- grows: made while the table was small it read it whole (a 100-task batch
-- took 1.1 s in the bench once 40,000 more tasks were stored), so this
-- function never scans a table: every row it reads is found by an index.
DROP FUNCTION tr_batch_tasks_json(uuid);
CREATE FUNCTION tr_batch_tasks_json(p_batch uuid, p_tasks jsonb) RETURNS json
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $$
DECLARE
    v_requester text;
    v_ids       uuid[];
BEGIN
    SELECT b.requester INTO v_requester FROM batches b WHERE b.id = p_batch;
    SELECT array_agg((e ->> 'id')::uuid) INTO v_ids FROM jsonb_array_elements(p_tasks) AS e;
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
        WHERE t.id = ANY (v_ids));
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

-- See 0002, but for two things. The steps for dedupe strategies and for
-- dependencies run only when the batch has some (an empty INSERT ... SELECT
-- still cost 0.05 ms of a 0.7 ms single-task create). The workers are woken
-- after every creation: whether the batch had a Pending task was asked of
-- the tasks table, and with thousands of tasks waiting the cached plan read
-- every Pending entry of an index (1.2 ms); a wake-up that finds nothing
-- costs a worker one empty claim, and the responders notify after their
-- commit anyway (taskrunner.defer_notify).
CREATE OR REPLACE FUNCTION tr_create_batch(p_batch uuid, p_requester text, p_idem_key text, p_tasks jsonb,
                                p_actor text, OUT code integer, OUT batch_id uuid, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    v_skip     jsonb := '{}';  -- id of a deduped new task -> id of the existing task
    t          jsonb;
    d          jsonb;
    v_key      jsonb;
    v_existing uuid;
    r          record;
BEGIN
    PERFORM tr_set_actor(p_actor);
    IF p_idem_key IS NOT NULL THEN
        -- Waits for a concurrent request with the same key, then sees its row.
        INSERT INTO idempotency_keys (requester, key, batch_id)
        VALUES (p_requester, p_idem_key, p_batch)
        ON CONFLICT DO NOTHING;
        IF NOT FOUND THEN
            SELECT k.status_code, k.batch_id, k.body INTO code, batch_id, body
            FROM idempotency_keys k WHERE k.requester = p_requester AND k.key = p_idem_key;
            RETURN;
        END IF;
    END IF;

    INSERT INTO batches (id, requester) VALUES (p_batch, p_requester);

    -- (Each step below that most batches do not need is skipped with a test
    -- of the document, not a query.)
    IF p_tasks @? '$[*].dedupe[0]' THEN
        FOR t IN SELECT e FROM jsonb_array_elements(p_tasks) AS e
                 WHERE jsonb_array_length(coalesce(e -> 'dedupe', '[]')) > 0
        LOOP
            FOR d IN SELECT jsonb_array_elements(t -> 'dedupe') LOOP
                v_key := tr_matcher_key(t -> 'metadata', d -> 'fields');
                -- Serializes concurrent batches that could duplicate each other.
                PERFORM pg_advisory_xact_lock(hashtextextended(
                    'dedupe:' || (d ->> 'kind') || ':' || (d ->> 'status') || ':' || v_key::text, 0));
                SELECT x.id INTO v_existing FROM tasks x
                WHERE x.kind = d ->> 'kind' AND x.status = d ->> 'status'
                  AND tr_matches_key(x.metadata, v_key)
                ORDER BY x.seq LIMIT 1;
                IF FOUND THEN
                    v_skip := v_skip || jsonb_build_object(t ->> 'id', v_existing);
                    EXIT;
                END IF;
            END LOOP;
        END LOOP;
    END IF;

    INSERT INTO tasks (id, batch_id, local_id, name, kind, status, priority, timeout,
                       metadata, rules, open_parents)
    SELECT (e ->> 'id')::uuid, p_batch, e ->> 'local_id', e ->> 'name', e ->> 'kind',
           CASE WHEN jsonb_array_length(e -> 'deps') = 0 THEN 'Pending' ELSE 'Waiting' END,
           (e ->> 'priority')::integer, (e ->> 'timeout')::integer,
           CASE WHEN jsonb_typeof(e -> 'metadata') = 'object' THEN e -> 'metadata' END,
           coalesce(e -> 'rules', '[]'), jsonb_array_length(e -> 'deps')
    FROM jsonb_array_elements(p_tasks) WITH ORDINALITY AS x (e, n)
    WHERE NOT v_skip ? (e ->> 'id')
    ORDER BY n;

    INSERT INTO actions (id, task_id, kind, trigger, condition, params, position)
    SELECT (a ->> 'id')::uuid, (e ->> 'id')::uuid, a ->> 'kind', a ->> 'trigger',
           a ->> 'condition', a -> 'params', m
    FROM jsonb_array_elements(p_tasks) AS e,
         jsonb_array_elements(e -> 'actions') WITH ORDINALITY AS y (a, m)
    WHERE NOT v_skip ? (e ->> 'id');

    -- A dependency on a deduped task links to the task that caused the skip.
    IF p_tasks @? '$[*].deps[0]' THEN
        INSERT INTO task_links (parent_id, child_id, requires_success)
        SELECT coalesce((v_skip ->> (dep ->> 'id'))::uuid, (dep ->> 'id')::uuid),
               (e ->> 'id')::uuid, bool_or((dep ->> 'requires_success')::boolean)
        FROM jsonb_array_elements(p_tasks) AS e, jsonb_array_elements(e -> 'deps') AS dep
        WHERE NOT v_skip ? (e ->> 'id')
        GROUP BY 1, 2;
    END IF;

    IF v_skip <> '{}' THEN
        -- Links may now point at existing tasks, some of them already ended.
        UPDATE tasks c
        SET open_parents = s.open,
            status = CASE WHEN s.open = 0 THEN 'Pending' ELSE 'Waiting' END
        FROM (SELECT l.child_id,
                     count(*) FILTER (WHERE NOT tr_is_terminal(p.status)
                                      OR (p.status <> 'Success' AND l.requires_success)) AS open
              FROM task_links l JOIN tasks p ON p.id = l.parent_id
              JOIN tasks ch ON ch.id = l.child_id
              WHERE ch.batch_id = p_batch
              GROUP BY l.child_id) s
        WHERE c.id = s.child_id;
        FOR r IN SELECT l.child_id, l.parent_id, p.status
                 FROM task_links l JOIN tasks p ON p.id = l.parent_id
                 JOIN tasks ch ON ch.id = l.child_id
                 WHERE ch.batch_id = p_batch AND p.batch_id <> p_batch
                   AND p.status IN ('Failure', 'Canceled') AND l.requires_success
        LOOP
            PERFORM tr_finish_task(r.child_id, 'Failure',
                format('Required parent task %s %s', r.parent_id,
                       CASE WHEN r.status = 'Failure' THEN 'failed' ELSE 'was canceled' END));
        END LOOP;
    END IF;

    body := tr_batch_tasks_json(p_batch, p_tasks)::text;
    code := CASE WHEN body = '[]' THEN 204 ELSE 201 END;
    batch_id := p_batch;

    IF p_idem_key IS NOT NULL THEN
        UPDATE idempotency_keys k SET status_code = code, body = tr_create_batch.body
        WHERE k.requester = p_requester AND k.key = p_idem_key;
    END IF;
    PERFORM tr_wake();
END
$$;

-- 0002: the state machine of tasks, as functions.
--
-- Every state change goes through these functions so that the responders
-- and the worker share one implementation, each API request is one round
-- trip and one transaction, and propagation, webhook queueing and the NOTIFY
-- that wakes the worker commit together with the change.
--
-- API functions return (code, body): an HTTP status and, for 2xx, the JSON
-- body; for errors, the message the responder wraps into the error object.

-- RFC 3339 in UTC with microseconds, as the API writes timestamps.
CREATE FUNCTION tr_ts(t timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;

CREATE FUNCTION tr_is_terminal(status text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT status IN ('Success', 'Failure', 'Canceled')
$$;

-- The full task object of GET /tasks/{id}. PL/pgSQL rather than SQL so that
-- its plans are cached for the session instead of made on every call.
CREATE FUNCTION tr_task_json(t tasks) RETURNS json
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN json_build_object(
        'id', t.id, 'local_id', t.local_id, 'name', t.name, 'kind', t.kind,
        'status', t.status, 'priority', t.priority, 'timeout', t.timeout,
        'metadata', t.metadata, 'rules', t.rules,
        'actions', coalesce((SELECT json_agg(json_build_object(
                                 'id', a.id, 'kind', a.kind, 'trigger', a.trigger,
                                 'condition', a.condition, 'params', a.params)
                             ORDER BY a.position)
                             FROM actions a WHERE a.task_id = t.id), '[]'),
        'dependencies', coalesce((SELECT json_agg(json_build_object(
                                      'id', l.parent_id, 'requires_success', l.requires_success)
                                  ORDER BY p.seq)
                                  FROM task_links l JOIN tasks p ON p.id = l.parent_id
                                  WHERE l.child_id = t.id), '[]'),
        'created_at', tr_ts(t.created_at), 'started_at', tr_ts(t.started_at),
        'ended_at', tr_ts(t.ended_at), 'last_updated', tr_ts(t.last_updated),
        'success', t.success, 'failures', t.failures, 'failure_reason', t.failure_reason,
        'batch_id', t.batch_id,
        'requester', (SELECT b.requester FROM batches b WHERE b.id = t.batch_id));
END
$$;

-- The summary object of GET /tasks.
CREATE FUNCTION tr_task_summary_json(t tasks) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'id', t.id, 'name', t.name, 'kind', t.kind, 'status', t.status,
        'priority', t.priority, 'created_at', tr_ts(t.created_at),
        'started_at', tr_ts(t.started_at), 'ended_at', tr_ts(t.ended_at),
        'success', t.success, 'failures', t.failures, 'batch_id', t.batch_id)
$$;

-- The values of a matcher's fields in a task's metadata, as a JSON object
-- ({} when no fields are listed): the key of a rule or dedupe strategy.
CREATE FUNCTION tr_matcher_key(metadata jsonb, fields jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(jsonb_object_agg(f, metadata -> f), '{}')
    FROM jsonb_array_elements_text(coalesce(fields, '[]')) AS f
$$;

-- Whether metadata holds exactly the values of key (the result of
-- tr_matcher_key): equality per field, not containment. The containment test
-- comes first so that the GIN index on metadata can narrow the search.
CREATE FUNCTION tr_matches_key(metadata jsonb, key jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(metadata, '{}') @> key
       AND NOT EXISTS (SELECT 1 FROM jsonb_each(key) AS k
                       WHERE metadata -> k.key IS DISTINCT FROM k.value)
$$;

-- Ends a task and everything that follows from it, in the caller's
-- transaction: queue its end (and cancel) webhooks, and propagate to its
-- children, cascading failures through the DAG. A task already terminal is
-- left alone. p_fire_cancel also fires cancel actions of a started task that
-- fails (a heartbeat timeout: the executor must be told to stop).
-- p_stop_batch: children in that batch are canceled instead of failed (a
-- batch being stopped as a whole).
CREATE FUNCTION tr_finish_task(p_id uuid, p_status text, p_reason text,
                               p_fire_cancel boolean DEFAULT false,
                               p_stop_batch uuid DEFAULT NULL) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    q_id     uuid[] := ARRAY[p_id];
    q_status text[] := ARRAY[p_status];
    q_reason text[] := ARRAY[p_reason];
    i        integer := 1;
    v_id     uuid;
    v_status text;
    v_old    text;
    r        record;
BEGIN
    WHILE i <= array_length(q_id, 1) LOOP
        v_id := q_id[i];
        v_status := q_status[i];
        SELECT status INTO v_old FROM tasks WHERE id = v_id FOR UPDATE;
        IF v_old IS NULL OR tr_is_terminal(v_old) THEN
            i := i + 1;
            CONTINUE;
        END IF;

        UPDATE tasks SET status = v_status, ended_at = now(), last_updated = now(),
                         failure_reason = q_reason[i], deadline_at = NULL
        WHERE id = v_id;

        -- A start call still waiting for a retry is moot now.
        UPDATE deliveries SET state = 'done', finished_at = now(), last_error = 'task ended'
        WHERE task_id = v_id AND trigger = 'Start' AND state = 'queued';

        INSERT INTO deliveries (task_id, action_id, trigger, outcome)
        SELECT v_id, a.id, a.trigger, v_status
        FROM actions a
        WHERE a.task_id = v_id
          AND ((a.trigger = 'End' AND a.condition = v_status)
               OR (a.trigger = 'Cancel' AND v_old IN ('Claimed', 'Running')
                   AND (v_status = 'Canceled' OR (i = 1 AND p_fire_cancel))))
        ORDER BY a.position;

        -- Children that count this parent as finished.
        UPDATE tasks c
        SET open_parents = c.open_parents - 1,
            status = CASE WHEN c.status = 'Waiting' AND c.open_parents = 1
                          THEN 'Pending' ELSE c.status END,
            last_updated = now()
        FROM task_links l
        WHERE l.parent_id = v_id AND c.id = l.child_id
          AND NOT tr_is_terminal(c.status)
          AND (v_status = 'Success' OR NOT l.requires_success);

        -- Children that required this parent's success end too.
        IF v_status <> 'Success' THEN
            FOR r IN SELECT c.id, c.batch_id FROM task_links l JOIN tasks c ON c.id = l.child_id
                     WHERE l.parent_id = v_id AND l.requires_success
                       AND NOT tr_is_terminal(c.status)
                     ORDER BY c.seq
            LOOP
                q_id := q_id || r.id;
                IF p_stop_batch IS NOT NULL AND r.batch_id = p_stop_batch THEN
                    q_status := q_status || 'Canceled'::text;
                    q_reason := q_reason || NULL::text;
                ELSE
                    q_status := q_status || 'Failure'::text;
                    q_reason := q_reason || format('Required parent task %s %s', v_id,
                                   CASE WHEN v_status = 'Failure' THEN 'failed'
                                        ELSE 'was canceled' END);
                END IF;
            END LOOP;
        END IF;
        i := i + 1;
    END LOOP;
    PERFORM pg_notify('taskrunner', 'work');
END
$$;

-- POST /tasks: creates a validated, normalized batch (see shared/validate.h
-- for the shape of p_tasks) in one go, honouring dedupe strategies and the
-- Idempotency-Key. Returns the HTTP code, the batch id (the first one's, for
-- a replayed key) and the body.
CREATE FUNCTION tr_create_batch(p_batch uuid, p_requester text, p_idem_key text, p_tasks jsonb,
                                OUT code integer, OUT batch_id uuid, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    v_skip     jsonb := '{}';  -- id of a deduped new task -> id of the existing task
    t          jsonb;
    d          jsonb;
    v_key      jsonb;
    v_existing uuid;
    r          record;
BEGIN
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
    INSERT INTO task_links (parent_id, child_id, requires_success)
    SELECT coalesce((v_skip ->> (dep ->> 'id'))::uuid, (dep ->> 'id')::uuid),
           (e ->> 'id')::uuid, bool_or((dep ->> 'requires_success')::boolean)
    FROM jsonb_array_elements(p_tasks) AS e, jsonb_array_elements(e -> 'deps') AS dep
    WHERE NOT v_skip ? (e ->> 'id')
    GROUP BY 1, 2;

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

    SELECT coalesce(json_agg(tr_task_json(x) ORDER BY x.seq), '[]')::text INTO body
    FROM tasks x WHERE x.batch_id = p_batch;
    code := CASE WHEN body = '[]' THEN 204 ELSE 201 END;
    batch_id := p_batch;

    IF p_idem_key IS NOT NULL THEN
        UPDATE idempotency_keys k SET status_code = code, body = tr_create_batch.body
        WHERE k.requester = p_requester AND k.key = p_idem_key;
    END IF;
    IF EXISTS (SELECT 1 FROM tasks x WHERE x.batch_id = p_batch AND x.status = 'Pending') THEN
        PERFORM pg_notify('taskrunner', 'work');
    END IF;
END
$$;

-- GET /tasks/{id}
CREATE FUNCTION tr_get_task(p_id uuid, OUT code integer, OUT body text)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    SELECT 200, tr_task_json(t)::text INTO code, body FROM tasks t WHERE t.id = p_id;
    IF NOT FOUND THEN
        code := 404; body := 'task not found';
    END IF;
END
$$;

-- PATCH /tasks/{id}: progress and outcome from the executor. p_status is
-- NULL, 'Success' or 'Failure'; p_set_metadata says whether p_metadata
-- (possibly NULL) replaces the metadata.
CREATE FUNCTION tr_patch_task(p_id uuid, p_status text, p_new_success bigint,
                              p_new_failures bigint, p_set_metadata boolean, p_metadata jsonb,
                              p_failure_reason text, OUT code integer, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    v_status text;
BEGIN
    SELECT status INTO v_status FROM tasks WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        code := 404; body := 'task not found'; RETURN;
    END IF;
    IF v_status NOT IN ('Claimed', 'Running') THEN
        code := 409; body := format('task is %s; only a Claimed or Running task accepts updates', v_status);
        RETURN;
    END IF;
    UPDATE tasks
    SET success = success + coalesce(p_new_success, 0),
        failures = failures + coalesce(p_new_failures, 0),
        metadata = CASE WHEN p_set_metadata THEN p_metadata ELSE metadata END,
        started_at = coalesce(started_at, now()),
        heartbeat_at = now(),
        deadline_at = CASE WHEN status = 'Running' THEN now() + make_interval(secs => timeout) END,
        last_updated = now()
    WHERE id = p_id;
    IF p_status IS NOT NULL THEN
        PERFORM tr_finish_task(p_id, p_status,
                               CASE WHEN p_status = 'Failure' THEN p_failure_reason END);
    END IF;
    SELECT 200, tr_task_json(t)::text INTO code, body FROM tasks t WHERE t.id = p_id;
END
$$;

-- PUT /tasks/{id}: fast progress counts.
CREATE FUNCTION tr_count_task(p_id uuid, p_new_success bigint, p_new_failures bigint,
                              OUT code integer, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    v_status text;
BEGIN
    UPDATE tasks
    SET success = success + p_new_success, failures = failures + p_new_failures,
        heartbeat_at = CASE WHEN status IN ('Claimed', 'Running') THEN now() END,
        deadline_at = CASE WHEN status = 'Running' THEN now() + make_interval(secs => timeout) END,
        last_updated = now()
    WHERE id = p_id AND NOT tr_is_terminal(status);
    IF FOUND THEN
        code := 202; body := '{"status": "accepted"}'; RETURN;
    END IF;
    SELECT status INTO v_status FROM tasks WHERE id = p_id;
    IF NOT FOUND THEN
        code := 404; body := 'task not found';
    ELSE
        code := 409; body := format('task is %s', v_status);
    END IF;
END
$$;

-- DELETE /tasks/{id}
CREATE FUNCTION tr_cancel_task(p_id uuid, OUT code integer, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    v_status text;
BEGIN
    SELECT status INTO v_status FROM tasks WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        code := 404; body := 'task not found'; RETURN;
    END IF;
    IF tr_is_terminal(v_status) THEN
        code := 409; body := format('task is already %s', v_status); RETURN;
    END IF;
    PERFORM tr_finish_task(p_id, 'Canceled', NULL);
    SELECT 200, tr_task_json(t)::text INTO code, body FROM tasks t WHERE t.id = p_id;
END
$$;

-- POST /tasks/{id}/pause
CREATE FUNCTION tr_pause_task(p_id uuid, OUT code integer, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    v_status text;
BEGIN
    SELECT status INTO v_status FROM tasks WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        code := 404; body := 'task not found'; RETURN;
    END IF;
    IF v_status NOT IN ('Waiting', 'Pending') THEN
        code := 409; body := format('task is %s; only a Waiting or Pending task can be paused', v_status);
        RETURN;
    END IF;
    UPDATE tasks SET status = 'Paused', last_updated = now() WHERE id = p_id;
    SELECT 200, tr_task_json(t)::text INTO code, body FROM tasks t WHERE t.id = p_id;
END
$$;

-- POST /tasks/{id}/resume
CREATE FUNCTION tr_resume_task(p_id uuid, OUT code integer, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    v_status text;
BEGIN
    SELECT status INTO v_status FROM tasks WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        code := 404; body := 'task not found'; RETURN;
    END IF;
    IF v_status <> 'Paused' THEN
        code := 409; body := format('task is %s; only a Paused task can be resumed', v_status);
        RETURN;
    END IF;
    UPDATE tasks SET status = CASE WHEN open_parents = 0 THEN 'Pending' ELSE 'Waiting' END,
                     last_updated = now()
    WHERE id = p_id;
    PERFORM pg_notify('taskrunner', 'work');
    SELECT 200, tr_task_json(t)::text INTO code, body FROM tasks t WHERE t.id = p_id;
END
$$;

-- GET /batches/{id}
CREATE FUNCTION tr_batch_stats(p_batch uuid, OUT code integer, OUT body text)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    SELECT 200, json_build_object(
               'batch_id', b.id, 'requester', b.requester, 'created_at', tr_ts(b.created_at),
               'total', (SELECT count(*) FROM tasks t WHERE t.batch_id = b.id),
               'by_status', (SELECT coalesce(json_object_agg(s.status, s.n), '{}')
                             FROM (SELECT t.status, count(*) AS n FROM tasks t
                                   WHERE t.batch_id = b.id GROUP BY t.status ORDER BY t.status) s)
           )::text
    INTO code, body
    FROM batches b WHERE b.id = p_batch;
    IF NOT FOUND THEN
        code := 404; body := 'batch not found';
    END IF;
END
$$;

-- DELETE /batches/{id}: cancels every task of the batch that has not ended.
CREATE FUNCTION tr_stop_batch(p_batch uuid, OUT code integer, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    PERFORM 1 FROM batches WHERE id = p_batch FOR UPDATE;
    IF NOT FOUND THEN
        code := 404; body := 'batch not found'; RETURN;
    END IF;
    FOR r IN SELECT id FROM tasks WHERE batch_id = p_batch AND NOT tr_is_terminal(status)
             ORDER BY seq
    LOOP
        PERFORM tr_finish_task(r.id, 'Canceled', NULL, false, p_batch);
    END LOOP;
    SELECT s.code, s.body INTO code, body FROM tr_batch_stats(p_batch) s;
END
$$;

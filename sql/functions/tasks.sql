-- tasks: the API's functions on tasks, one per endpoint (fcgi/tasks.c calls
-- them). Each is one round trip and one transaction; propagation, queued
-- webhooks and the wake-up of the workers commit with the change.
--
-- They return (code, body): the HTTP status and the JSON body of a success.
-- A request the task's state does not allow, or an unknown id, raises the
-- project's SQLSTATEs (sql/functions/common.sql), mapped to 409 and 404 by
-- the caller. Those that change something take the actor (the X-Requester
-- or the API token's name) for the audit trail.

-- Locks task p_id and returns its status; raises not found, and wrong state
-- unless the status is one of p_allowed (NULL: any), saying what only
-- those may do ("task is Running; only a Waiting or Pending task can be
-- paused"). p_attempt: the start attempt a callback comes from (the handle
-- carries it); "attempt superseded" when the task has started again since,
-- or went back to wait for its next attempt.
CREATE OR REPLACE FUNCTION tr_lock_task(p_id uuid, p_allowed task_status[] DEFAULT NULL,
                                        p_doing text DEFAULT NULL,
                                        p_attempt integer DEFAULT NULL) RETURNS task_status
LANGUAGE plpgsql AS $$
DECLARE
    v_status  task_status;
    v_attempt integer;
BEGIN
    SELECT status, attempt INTO v_status, v_attempt FROM tasks WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM tr_raise_not_found('task');
    END IF;
    IF p_attempt IS NOT NULL AND (p_attempt <> v_attempt
                                  OR v_status IN ('Waiting', 'Pending', 'Paused')) THEN
        PERFORM tr_raise_wrong_state('attempt superseded');
    END IF;
    IF p_allowed IS NOT NULL AND v_status <> ALL (p_allowed) THEN
        PERFORM tr_raise_wrong_state(format('task is %s; only a %s task %s', v_status,
                                            array_to_string(p_allowed, ' or '), p_doing));
    END IF;
    RETURN v_status;
END
$$;

-- POST /tasks: creates a validated, normalized batch (see shared/validate.h
-- for the shape of p_tasks) in one go, honouring dedupe strategies and the
-- Idempotency-Key (p_idem_key, with p_request_digest the SHA-256 of the
-- request's body): a key already used answers what its first request got,
-- or raises TRIK0 (422) when that was another request, or TRWS0 (409) while
-- that request is still being processed. Returns the HTTP code, the batch id
-- (the first one's, for a replayed key) and the body. The steps most batches do not need (dedupe,
-- dependencies) are skipped with a test of the document, not a query. The
-- workers are woken after every creation (asking whether the batch made a
-- Pending task costs more than the empty claim a needless wake-up costs).
CREATE OR REPLACE FUNCTION tr_create_batch(p_batch uuid, p_requester text, p_idem_key text,
                                           p_request_digest text, p_tasks jsonb, p_actor text,
                                           OUT code integer, OUT batch_id uuid, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    v_skip     jsonb := '{}';  -- id of a deduped new task -> id of the existing task
    t          jsonb;
    d          jsonb;
    v_key      jsonb;
    v_existing uuid;
    v_ready    uuid[];
    v_skipped  uuid[];
    v_digest   text;
    v_lock     bigint;
    v_held     text[] := '{}';  -- groups of the batch on hold
    r          record;
BEGIN
    PERFORM tr_set_actor(p_actor);
    -- Templates named by the tasks: each must exist (400 with its path).
    IF p_tasks @? '$[*].rules[*].ref' OR p_tasks @? '$[*].actions[*].ref' THEN
        PERFORM tr_check_refs(p_tasks);
    END IF;
    IF p_idem_key IS NOT NULL THEN
        -- The request that uses the key holds this lock until it commits.
        IF NOT pg_try_advisory_xact_lock(hashtextextended(
                   'idempotency:' || p_requester || ':' || p_idem_key, 0)) THEN
            PERFORM tr_raise_wrong_state(
                'a request with this Idempotency-Key is still being processed; retry later');
        END IF;
        INSERT INTO idempotency_keys (requester, key, batch_id, request_digest)
        VALUES (p_requester, p_idem_key, p_batch, p_request_digest)
        ON CONFLICT DO NOTHING;
        IF NOT FOUND THEN
            SELECT k.status_code, k.batch_id, k.body, k.request_digest
            INTO code, batch_id, body, v_digest
            FROM idempotency_keys k WHERE k.requester = p_requester AND k.key = p_idem_key;
            IF v_digest IS DISTINCT FROM p_request_digest AND v_digest IS NOT NULL THEN
                RAISE EXCEPTION USING ERRCODE = 'TRIK0',
                    MESSAGE = 'this Idempotency-Key was used for a different request';
            END IF;
            RETURN;
        END IF;
    END IF;

    IF p_tasks @? '$[*].dedupe[0]' THEN
        -- Serializes concurrent batches that could duplicate each other:
        -- every dedupe key of the batch is locked first, before any row is
        -- written, in one global order (the lock ids sorted), so that two
        -- batches whose keys come in different orders wait for each other
        -- at most once and never in a cycle (a deadlock costs a
        -- deadlock_timeout). The Idempotency-Key above is taken before
        -- them, and a request with the same key waits there holding none.
        FOR v_lock IN
            SELECT DISTINCT hashtextextended('dedupe:' || (ds ->> 'kind') || ':'
                                             || (ds ->> 'status') || ':'
                                             || tr_matcher_key(ts -> 'metadata',
                                                               ds -> 'fields')::text, 0)
            FROM jsonb_array_elements(p_tasks) AS ts, jsonb_array_elements(ts -> 'dedupe') AS ds
            ORDER BY 1
        LOOP
            PERFORM pg_advisory_xact_lock(v_lock);
        END LOOP;
    END IF;

    INSERT INTO batches (id, requester) VALUES (p_batch, p_requester);
    IF p_tasks @? '$[*].group' THEN
        v_held := tr_groups_for_create(p_tasks);
    END IF;

    IF p_tasks @? '$[*].dedupe[0]' THEN
        FOR t IN SELECT e FROM jsonb_array_elements(p_tasks) AS e
                 WHERE jsonb_array_length(coalesce(e -> 'dedupe', '[]')) > 0
        LOOP
            FOR d IN SELECT jsonb_array_elements(t -> 'dedupe') LOOP
                v_key := tr_matcher_key(t -> 'metadata', d -> 'fields');
                SELECT x.id INTO v_existing FROM tasks x
                WHERE x.kind = d ->> 'kind' AND x.status = (d ->> 'status')::task_status
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
                       metadata, rules, open_parents, expected_count, max_retries,
                       retry_backoff, fair_by, lane, scheduled_at, not_before, trigger_rule,
                       grp, held, preemptible)
    SELECT (e ->> 'id')::uuid, p_batch, e ->> 'local_id', e ->> 'name', e ->> 'kind',
           CASE WHEN jsonb_array_length(e -> 'deps') = 0 THEN 'Pending'::task_status
                ELSE 'Waiting'::task_status END,
           (e ->> 'priority')::integer, (e ->> 'timeout')::integer,
           CASE WHEN jsonb_typeof(e -> 'metadata') = 'object' THEN e -> 'metadata' END,
           coalesce(e -> 'rules', '[]'), jsonb_array_length(e -> 'deps'),
           (e ->> 'expected_count')::integer,
           coalesce((e ->> 'max_retries')::integer, 0), e -> 'retry_backoff',
           nullif(e -> 'fair_by', 'null'),
           CASE WHEN jsonb_array_length(e -> 'deps') = 0
                THEN tr_lane_key((e ->> 'priority')::integer, coalesce(e -> 'rules', '[]'),
                                 CASE WHEN jsonb_typeof(e -> 'metadata') = 'object'
                                      THEN e -> 'metadata' END,
                                 nullif(e -> 'fair_by', 'null')) END,
           (e ->> 'scheduled_at')::timestamptz,
           -- Not startable before its scheduled start (tr_release_due).
           CASE WHEN (e ->> 'scheduled_at')::timestamptz > now()
                THEN (e ->> 'scheduled_at')::timestamptz END,
           e ->> 'trigger_rule',
           e ->> 'group', CASE WHEN e ->> 'group' = ANY (v_held) THEN 1 ELSE 0 END,
           coalesce((e ->> 'preemptible')::boolean, false)
    FROM jsonb_array_elements(p_tasks) WITH ORDINALITY AS x (e, n)
    WHERE NOT v_skip ? (e ->> 'id')
    ORDER BY n;
    -- Runnable tasks with rules or fair_by: their lanes listed for the claim.
    IF p_tasks @? '$[*] ? (@.rules[0] != null || @.fair_by[0] != null)' THEN
        PERFORM tr_lanes_add(ARRAY(SELECT x.id FROM tasks x
                                   WHERE x.batch_id = p_batch AND x.lane IS NOT NULL));
    END IF;

    -- Identical params are stored once (action_params, 0091): a batch of a
    -- thousand tasks calling one webhook writes its params once. The lock,
    -- held shared until commit, keeps the purge from removing params this
    -- batch uses (tr_params_lock).
    PERFORM pg_advisory_xact_lock_shared(tr_params_lock());
    INSERT INTO action_params (id, params)
    SELECT DISTINCT ON (tr_params_key(a -> 'params')) tr_params_key(a -> 'params'), a -> 'params'
    FROM jsonb_array_elements(p_tasks) AS e, jsonb_array_elements(e -> 'actions') AS a
    WHERE NOT v_skip ? (e ->> 'id')
    ORDER BY tr_params_key(a -> 'params')
    ON CONFLICT DO NOTHING;
    INSERT INTO actions (id, task_id, kind, trigger, condition, params_id, position, template,
                         fire_when)
    SELECT (a ->> 'id')::uuid, (e ->> 'id')::uuid, a ->> 'kind', (a ->> 'trigger')::webhook_trigger,
           a ->> 'condition', tr_params_key(a -> 'params'), m, a ->> 'ref', a -> 'when'
    FROM jsonb_array_elements(p_tasks) AS e,
         jsonb_array_elements(e -> 'actions') WITH ORDINALITY AS y (a, m)
    WHERE NOT v_skip ? (e ->> 'id');
    IF p_tasks @? '$[*].rules[*].ref' THEN
        INSERT INTO task_rule_refs (name, task_id)
        SELECT DISTINCT rr ->> 'ref', (e ->> 'id')::uuid
        FROM jsonb_array_elements(p_tasks) AS e, jsonb_array_elements(e -> 'rules') AS rr
        WHERE rr ? 'ref' AND NOT v_skip ? (e ->> 'id');
    END IF;

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
        -- Links may now point at existing tasks, some of them already ended:
        -- count again what each child of the batch waits for.
        WITH counted AS (
            UPDATE tasks c
            SET open_parents = CASE WHEN c.trigger_rule IS NULL THEN s.open ELSE s.not_ended END,
                par_ok = s.ok, par_failed = s.failed, par_skipped = s.skipped
            FROM (SELECT l.child_id,
                         count(*) FILTER (WHERE NOT tr_is_terminal(p.status)
                                          OR (p.status <> 'Success' AND l.requires_success)) AS open,
                         count(*) FILTER (WHERE NOT tr_is_terminal(p.status)) AS not_ended,
                         count(*) FILTER (WHERE p.status = 'Success') AS ok,
                         count(*) FILTER (WHERE p.status IN ('Failure', 'Canceled')) AS failed,
                         count(*) FILTER (WHERE p.status = 'Skipped') AS skipped
                  FROM task_links l JOIN tasks p ON p.id = l.parent_id
                  JOIN tasks ch ON ch.id = l.child_id
                  WHERE ch.batch_id = p_batch
                  GROUP BY l.child_id) s
            WHERE c.id = s.child_id
            RETURNING c.id, c.trigger_rule,
                      tr_rule_state(c.trigger_rule, c.open_parents, c.par_ok, c.par_failed,
                                    c.par_skipped) AS state
        )
        SELECT array_agg(counted.id) FILTER (WHERE counted.state = 'ready'),
               array_agg(counted.id) FILTER (WHERE counted.state = 'skip'
                                             AND counted.trigger_rule IS NOT NULL)
        INTO v_ready, v_skipped
        FROM counted;
        IF v_ready IS NOT NULL THEN
            PERFORM tr_move_tasks(v_ready, 'Pending');
        END IF;
        FOR r IN SELECT x.id, x.trigger_rule FROM tasks x
                 WHERE x.id = ANY (v_skipped) ORDER BY x.seq
        LOOP
            PERFORM tr_finish_task(r.id, 'Skipped',
                format('trigger_rule %s can no longer be met by the parents'' outcomes',
                       r.trigger_rule));
        END LOOP;
        FOR r IN SELECT l.child_id, l.parent_id, p.status
                 FROM task_links l JOIN tasks p ON p.id = l.parent_id
                 JOIN tasks ch ON ch.id = l.child_id
                 WHERE ch.batch_id = p_batch AND p.batch_id <> p_batch AND ch.trigger_rule IS NULL
                   AND p.status IN ('Failure', 'Canceled', 'Skipped') AND l.requires_success
        LOOP
            PERFORM tr_finish_task(r.child_id, 'Failure',
                format('Required parent task %s %s', r.parent_id,
                       CASE WHEN r.status = 'Failure' THEN 'failed'
                            WHEN r.status = 'Skipped' THEN 'was skipped'
                            ELSE 'was canceled' END));
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

-- GET /tasks/{id}
CREATE OR REPLACE FUNCTION tr_get_task(p_id uuid, OUT code integer, OUT body text)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    SELECT 200, tr_task_json(t)::text INTO code, body FROM tasks t WHERE t.id = p_id;
    IF NOT FOUND THEN
        PERFORM tr_raise_not_found('task');
    END IF;
END
$$;

-- PATCH /tasks/{id}: progress and outcome from the executor, or a change
-- of priority before the task starts. p_status is NULL, 'Success' or
-- 'Failure'; p_set_metadata says whether p_metadata (possibly NULL) replaces
-- the metadata. A Failure fails the attempt: the task retries when its
-- policy allows and p_retryable. p_attempt: the start attempt of the
-- handle, when it carries one. p_priority (NULL: unchanged) is allowed only
-- while the task has not started, and the caller never combines it with
-- progress; p_expected_count (NULL: unchanged) goes with either, or alone on
-- any task that has not ended. A PATCH that ends the task changes the row
-- once when it brings nothing else (no heartbeat for a task that ends in
-- this transaction).
CREATE OR REPLACE FUNCTION tr_patch_task(p_id uuid, p_status task_status, p_new_success bigint,
                                         p_new_failures bigint, p_set_metadata boolean,
                                         p_metadata jsonb, p_failure_reason text,
                                         p_retryable boolean, p_attempt integer, p_actor text,
                                         p_priority integer DEFAULT NULL,
                                         p_expected_count integer DEFAULT NULL,
                                         p_set_output boolean DEFAULT false,
                                         p_output jsonb DEFAULT NULL,
                                         OUT code integer, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    v_status   task_status;
    v_success  bigint;
    v_failures bigint;
    v_batch    uuid;
    v_group    text;
    v_priority integer;
BEGIN
    PERFORM tr_set_actor(p_actor);
    IF p_priority IS NOT NULL THEN
        v_status := tr_lock_task(p_id, '{Waiting,Pending,Paused}', 'can change its priority');
        SELECT priority INTO v_priority FROM tasks WHERE id = p_id;
        UPDATE tasks
        SET priority = p_priority, expected_count = coalesce(p_expected_count, expected_count),
            lane = CASE WHEN status = 'Pending'
                        THEN tr_lane_key(p_priority, rules, metadata, fair_by) END,
            last_updated = now()
        WHERE id = p_id;
        IF v_status = 'Pending' THEN
            PERFORM tr_lanes_add(ARRAY[p_id]);  -- its lane is that of its new priority
        END IF;
        PERFORM tr_task_event(p_id, 'updated', v_status, v_status, jsonb_strip_nulls(
            jsonb_build_object('priority', p_priority, 'previous_priority', v_priority,
                               'expected_count', p_expected_count)));
        PERFORM tr_wake();  -- the order of the queue changed
        SELECT 200, tr_task_json(t)::text INTO code, body FROM tasks t WHERE t.id = p_id;
        RETURN;
    END IF;
    IF p_expected_count IS NOT NULL AND p_status IS NULL AND coalesce(p_new_success, 0) = 0
       AND coalesce(p_new_failures, 0) = 0 AND NOT p_set_metadata AND NOT p_set_output THEN
        -- Only the expected count: any task that has not ended; a started
        -- one also gets the heartbeat of any update, below.
        v_status := tr_lock_task(p_id, '{Waiting,Pending,Claimed,Running,Paused}',
                                 'can change its expected_count', p_attempt);
        IF v_status NOT IN ('Claimed', 'Running') THEN
            UPDATE tasks SET expected_count = p_expected_count, last_updated = now()
            WHERE id = p_id;
            PERFORM tr_task_event(p_id, 'updated', v_status, v_status,
                                  jsonb_build_object('expected_count', p_expected_count));
            SELECT 200, tr_task_json(t)::text INTO code, body FROM tasks t WHERE t.id = p_id;
            RETURN;
        END IF;
    ELSE
        v_status := tr_lock_task(p_id, '{Claimed,Running}', 'accepts updates', p_attempt);
    END IF;
    IF p_status IS NULL THEN
        -- Progress: counts, metadata, and the heartbeat that keeps it alive.
        UPDATE tasks
        SET success = success + coalesce(p_new_success, 0),
            failures = failures + coalesce(p_new_failures, 0),
            metadata = CASE WHEN p_set_metadata THEN p_metadata ELSE metadata END,
            output = CASE WHEN p_set_output THEN p_output ELSE output END,
            expected_count = coalesce(p_expected_count, expected_count),
            started_at = coalesce(started_at, now()),
            heartbeat_at = now(),
            deadline_at = CASE WHEN status = 'Running'
                               THEN now() + make_interval(secs => timeout) END,
            last_updated = now()
        WHERE id = p_id
        RETURNING success, failures, batch_id, grp INTO v_success, v_failures, v_batch, v_group;
        PERFORM tr_counts_add(v_batch, v_group, v_status, 0, coalesce(p_new_success, 0),
                              coalesce(p_new_failures, 0));
    ELSIF coalesce(p_new_success, 0) <> 0 OR coalesce(p_new_failures, 0) <> 0
          OR p_set_metadata OR p_set_output OR p_expected_count IS NOT NULL THEN
        -- The end, with last counts or metadata: those now, the rest in
        -- tr_finish_task.
        UPDATE tasks
        SET success = success + coalesce(p_new_success, 0),
            failures = failures + coalesce(p_new_failures, 0),
            metadata = CASE WHEN p_set_metadata THEN p_metadata ELSE metadata END,
            output = CASE WHEN p_set_output THEN p_output ELSE output END,
            expected_count = coalesce(p_expected_count, expected_count),
            started_at = coalesce(started_at, now())
        WHERE id = p_id
        RETURNING success, failures, batch_id, grp INTO v_success, v_failures, v_batch, v_group;
        PERFORM tr_counts_add(v_batch, v_group, v_status, 0, coalesce(p_new_success, 0),
                              coalesce(p_new_failures, 0));
    ELSE
        -- Only the end (the common PATCH).
        UPDATE tasks SET started_at = now() WHERE id = p_id AND started_at IS NULL;
        SELECT success, failures INTO v_success, v_failures FROM tasks WHERE id = p_id;
    END IF;
    PERFORM tr_task_event(p_id, 'updated', v_status, v_status, jsonb_strip_nulls(jsonb_build_object(
        'new_success', coalesce(p_new_success, 0), 'new_failures', coalesce(p_new_failures, 0),
        'success', v_success, 'failures', v_failures, 'status', p_status,
        'metadata_replaced', CASE WHEN p_set_metadata THEN true END,
        'output_set', CASE WHEN p_set_output THEN true END,
        'expected_count', p_expected_count)));
    IF p_status = 'Failure' THEN
        PERFORM tr_fail_attempt(p_id, p_failure_reason, 'failure', false,
                                coalesce(p_retryable, true));
    ELSIF p_status IS NOT NULL THEN
        PERFORM tr_finish_task(p_id, p_status, NULL);
    END IF;
    SELECT 200, tr_task_json(t)::text INTO code, body FROM tasks t WHERE t.id = p_id;
END
$$;

-- PUT /tasks/{id}: fast progress counts (p_attempt as for PATCH).
CREATE OR REPLACE FUNCTION tr_count_task(p_id uuid, p_new_success bigint, p_new_failures bigint,
                                         p_attempt integer, p_actor text,
                                         OUT code integer, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    v_status   task_status;
    v_attempt  integer;
    v_success  bigint;
    v_failures bigint;
    v_batch    uuid;
    v_group    text;
BEGIN
    PERFORM tr_set_actor(p_actor);
    UPDATE tasks
    SET success = success + p_new_success, failures = failures + p_new_failures,
        heartbeat_at = CASE WHEN status IN ('Claimed', 'Running') THEN now() END,
        deadline_at = CASE WHEN status = 'Running' THEN now() + make_interval(secs => timeout) END,
        last_updated = now()
    WHERE id = p_id AND NOT tr_is_terminal(status)
      AND (p_attempt IS NULL OR (attempt = p_attempt AND status IN ('Claimed', 'Running')))
    RETURNING status, success, failures, batch_id, grp
    INTO v_status, v_success, v_failures, v_batch, v_group;
    IF FOUND THEN
        IF p_new_success <> 0 OR p_new_failures <> 0 THEN
            PERFORM tr_counts_add(v_batch, v_group, v_status, 0, p_new_success, p_new_failures);
        END IF;
        PERFORM tr_task_event(p_id, 'progress', v_status, v_status, jsonb_build_object(
            'new_success', p_new_success, 'new_failures', p_new_failures,
            'success', v_success, 'failures', v_failures));
        code := 202; body := '{"status": "accepted"}'; RETURN;
    END IF;
    SELECT status, attempt INTO v_status, v_attempt FROM tasks WHERE id = p_id;
    IF NOT FOUND THEN
        PERFORM tr_raise_not_found('task');
    END IF;
    IF p_attempt IS NOT NULL AND (p_attempt <> v_attempt OR NOT tr_is_terminal(v_status)) THEN
        PERFORM tr_raise_wrong_state('attempt superseded');
    END IF;
    PERFORM tr_raise_wrong_state(format('task is %s', v_status));
END
$$;

-- DELETE /tasks/{id}
CREATE OR REPLACE FUNCTION tr_cancel_task(p_id uuid, p_actor text, OUT code integer, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    v_status task_status;
BEGIN
    PERFORM tr_set_actor(p_actor);
    v_status := tr_lock_task(p_id);
    IF tr_is_terminal(v_status) THEN
        PERFORM tr_raise_wrong_state(format('task is already %s', v_status));
    END IF;
    PERFORM tr_finish_task(p_id, 'Canceled', NULL);
    SELECT 200, tr_task_json(t)::text INTO code, body FROM tasks t WHERE t.id = p_id;
END
$$;

-- POST /tasks/{id}/pause
CREATE OR REPLACE FUNCTION tr_pause_task(p_id uuid, p_actor text, OUT code integer, OUT body text)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM tr_set_actor(p_actor);
    PERFORM tr_lock_task(p_id, '{Waiting,Pending}', 'can be paused');
    PERFORM tr_move_tasks(ARRAY[p_id], 'Paused');
    SELECT 200, tr_task_json(t)::text INTO code, body FROM tasks t WHERE t.id = p_id;
END
$$;

-- POST /tasks/{id}/delete (p_delete) and /restore: soft delete of an ended
-- task (409 for one that has not ended), with its history event; doing it
-- again changes nothing. Answers the task.
CREATE OR REPLACE FUNCTION tr_soft_delete_task(p_id uuid, p_delete boolean, p_actor text,
                                               OUT code integer, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    v_status task_status;
BEGIN
    PERFORM tr_set_actor(p_actor);
    IF p_delete THEN
        v_status := tr_lock_task(p_id, '{Success,Failure,Canceled,Skipped}', 'can be deleted');
    ELSE
        v_status := tr_lock_task(p_id);
    END IF;
    UPDATE tasks SET deleted_at = CASE WHEN p_delete THEN now() END
    WHERE id = p_id AND (deleted_at IS NULL) = p_delete;
    IF FOUND THEN
        PERFORM tr_task_event(p_id, CASE WHEN p_delete THEN 'deleted' ELSE 'restored' END,
                              v_status, v_status, '{}');
        PERFORM tr_counts_shift(ARRAY[p_id], CASE WHEN p_delete THEN -1 ELSE 1 END);
    END IF;
    SELECT 200, tr_task_json(t)::text INTO code, body FROM tasks t WHERE t.id = p_id;
END
$$;

-- POST /tasks/{id}/resume: back to Pending, or Waiting while a parent is
-- still open.
CREATE OR REPLACE FUNCTION tr_resume_task(p_id uuid, p_actor text, OUT code integer, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    v_ready boolean;
BEGIN
    PERFORM tr_set_actor(p_actor);
    PERFORM tr_lock_task(p_id, '{Paused}', 'can be resumed');
    SELECT tr_rule_state(trigger_rule, open_parents, par_ok, par_failed, par_skipped) = 'ready'
    INTO v_ready FROM tasks WHERE id = p_id;
    PERFORM tr_move_tasks(ARRAY[p_id], CASE WHEN v_ready THEN 'Pending'::task_status
                                            ELSE 'Waiting'::task_status END);
    PERFORM tr_wake();
    SELECT 200, tr_task_json(t)::text INTO code, body FROM tasks t WHERE t.id = p_id;
END
$$;

-- GET /tasks/{id}/history: one page of the task's audit trail, oldest
-- first. The page is read from the (task_id, id) index, so the first page
-- costs the same whatever the number of events. Events are written with
-- their URLs masked; masked again here for those written before that was so.
CREATE OR REPLACE FUNCTION tr_task_history(p_id uuid, p_limit bigint, p_offset bigint,
                                           OUT code integer, OUT body text)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    PERFORM 1 FROM tasks WHERE id = p_id;
    IF NOT FOUND THEN
        PERFORM tr_raise_not_found('task');
    END IF;
    SELECT 200, coalesce(json_agg(json_build_object(
                    'at', tr_ts(e.at), 'event', e.event, 'actor', e.actor,
                    'from_status', e.from_status, 'to_status', e.to_status,
                    'detail', tr_mask_url_in(e.detail))
                ORDER BY e.id), '[]')::text
    INTO code, body
    FROM (SELECT * FROM task_events WHERE task_id = p_id
          ORDER BY id LIMIT p_limit OFFSET p_offset) e;
END
$$;

-- GET /tasks/{id}/blockers: what holds the task back, read from the state
-- the worker decides on (tr_claim): unfinished parents of a Waiting or
-- Paused task, the pause, the rules that are full for a Pending task (the
-- worker's decision, tr_rules_check: a full lane is the only thing the
-- claim passes over, so a Pending task with none is started by the next
-- claim), a start time in the future, an on_start target held back by the
-- worker's circuit breaker (target_unavailable), and
-- a start call waiting for its retry. Running and terminal tasks have none.
-- No lock is taken: it is what the worker would decide now.
CREATE OR REPLACE FUNCTION tr_task_blockers(p_id uuid, OUT code integer, OUT body text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_now task_status;
    t     tasks;
    v     jsonb := '[]';
    v_at  timestamptz;
BEGIN
    SELECT * INTO t FROM tasks WHERE id = p_id;
    IF NOT FOUND THEN
        PERFORM tr_raise_not_found('task');
    END IF;
    IF t.status <> 'Running' AND NOT tr_is_terminal(t.status) THEN
        IF t.status IN ('Waiting', 'Paused') THEN
            v := v || coalesce((
                SELECT jsonb_agg(jsonb_build_object(
                           'type', 'dependency', 'task_id', p.id, 'status', p.status,
                           'requires_success', l.requires_success) ORDER BY p.seq)
                FROM task_links l JOIN tasks p ON p.id = l.parent_id
                WHERE l.child_id = t.id AND NOT tr_is_terminal(p.status)), '[]');
        END IF;
        IF t.status IN ('Waiting', 'Paused') AND t.trigger_rule IS NOT NULL
           AND tr_rule_state(t.trigger_rule, t.open_parents, t.par_ok, t.par_failed,
                             t.par_skipped) = 'wait' THEN
            v := v || jsonb_build_array(jsonb_build_object(
                'type', 'trigger_rule', 'rule', t.trigger_rule,
                'waiting_for', coalesce((
                    SELECT jsonb_agg(p.id ORDER BY p.seq)
                    FROM task_links l JOIN tasks p ON p.id = l.parent_id
                    WHERE l.child_id = t.id AND NOT tr_is_terminal(p.status)), '[]')));
        END IF;
        IF t.status = 'Paused' THEN
            v := v || '[{"type": "paused"}]';
        END IF;
        -- Holds of its group and batch (the claim takes only held = 0).
        IF t.held & 1 <> 0 AND t.status IN ('Waiting', 'Pending', 'Paused') THEN
            v := v || jsonb_build_array(jsonb_build_object('type', 'group_paused',
                                                           'group', t.grp));
        END IF;
        IF t.held & 2 <> 0 AND t.status IN ('Waiting', 'Pending', 'Paused') THEN
            v := v || jsonb_build_array(jsonb_build_object('type', 'batch_paused',
                                                           'batch_id', t.batch_id));
        END IF;
        IF t.status = 'Pending' THEN
            -- The worker's own decision (tr_rules_check), without its locks.
            v := v || coalesce((
                SELECT jsonb_agg(jsonb_build_object('type', 'rule', 'rule', tr_rule_json(c.rule),
                                                    'key', c.key, 'current', c.current,
                                                    'max', c.max))
                FROM tr_rules_check(t, false) c), '[]');
        END IF;
        IF t.status = 'Pending' AND t.wait_target IS NOT NULL AND t.not_before IS NOT NULL
           AND EXISTS (SELECT 1 FROM held_targets h WHERE h.target = t.wait_target) THEN
            -- Its on_start target is held back (API.md, "Outbound isolation").
            v := v || jsonb_build_array(jsonb_build_object('type', 'target_unavailable',
                                                           'target', t.wait_target));
        ELSIF t.status = 'Pending' AND t.retry_at > now() THEN
            -- Waiting for its next attempt (a retry).
            v := v || jsonb_build_array(jsonb_build_object('type', 'retry_backoff',
                                                           'at', tr_ts(t.retry_at)));
        ELSIF t.not_before > now() THEN
            v := v || jsonb_build_array(jsonb_build_object('type', 'not_before',
                                                           'at', tr_ts(t.not_before)));
        END IF;
        SELECT min(d.next_at) INTO v_at FROM deliveries d
        WHERE d.task_id = t.id AND d.trigger = 'Start' AND d.state = 'queued';
        IF v_at IS NOT NULL THEN
            v := v || jsonb_build_array(jsonb_build_object('type', 'retry_backoff',
                                                           'at', tr_ts(v_at)));
        END IF;
    END IF;
    IF t.status = 'Pending' AND jsonb_array_length(v) > 0 THEN
        -- The rules are counted as committed now (tr_rule_count takes a new
        -- snapshot), t as it was when this call began: a task started in
        -- between would be counted holding its own place. It is no longer
        -- Pending then, and nothing holds it back.
        v_now := tr_task_status_now(t.id);
        IF v_now IS DISTINCT FROM 'Pending' THEN
            t.status := v_now;
            v := '[]';
        END IF;
    END IF;
    code := 200;
    body := json_build_object('status', t.status, 'blockers', v)::text;
END
$$;

-- A task's status as committed now, whatever snapshot the caller reads
-- with (VOLATILE: a snapshot of its own; tr_task_blockers).
CREATE OR REPLACE FUNCTION tr_task_status_now(p_id uuid) RETURNS task_status
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v task_status;
BEGIN
    SELECT status INTO v FROM tasks WHERE id = p_id;
    RETURN v;
END
$$;

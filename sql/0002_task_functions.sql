-- 0002: the state machine of tasks, as functions.
--
-- Every state change goes through these functions so that the responders
-- and the worker share one implementation, each API request is one round
-- trip and one transaction, and propagation, webhook queueing and the NOTIFY
-- that wakes the worker commit together with the change.
--
-- API functions return (code, body): an HTTP status and, for 2xx, the JSON
-- body; for errors, the message the responder wraps into the error object.
-- Those that change something take the actor (the X-Requester) for the
-- audit trail: triggers on tasks record every creation and status change in
-- task_events, and count them in metric_counters, in the same transaction.

-- RFC 3339 in UTC with microseconds, as the API writes timestamps.
-- STABLE, not IMMUTABLE (AT TIME ZONE depends on settings): a function that
-- claims more than its body allows is never inlined, and costs a call per use.
CREATE FUNCTION tr_ts(t timestamptz) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;

CREATE FUNCTION tr_is_terminal(status text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT status IN ('Success', 'Failure', 'Canceled')
$$;

-- ---------------------------------------------------------------- audit and counters

-- Who makes the changes of the current transaction, for the audit trail:
-- every function that changes tasks sets it first (transaction-local).
CREATE FUNCTION tr_set_actor(p_actor text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('taskrunner.actor', coalesce(nullif(p_actor, ''), 'anonymous'), true);
END
$$;

-- Wakes the workers (NOTIFY taskrunner) when the transaction commits. A
-- responder session sets taskrunner.defer_notify and sends the NOTIFY itself
-- right after its commit instead: a transaction that notifies holds a
-- database-wide lock from its commit's start to its end, so notifying commits
-- that wait for the disk would be made one at a time. The change itself is
-- durable either way, and a lost wake-up is covered by the workers' poll.
CREATE FUNCTION tr_wake() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('taskrunner.defer_notify', true), '') <> 'on' THEN
        PERFORM pg_notify('taskrunner', 'work');
    END IF;
END
$$;

CREATE FUNCTION tr_actor() RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT coalesce(nullif(current_setting('taskrunner.actor', true), ''), 'system')
$$;

-- One row of a task's audit trail (the triggers below write many at once).
CREATE FUNCTION tr_task_event(p_task uuid, p_event text, p_from text, p_to text, p_detail jsonb)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO task_events (task_id, event, actor, from_status, to_status, detail)
    VALUES (p_task, p_event, tr_actor(), p_from, p_to, coalesce(p_detail, '{}'));
END
$$;

-- Adds p_ns[i] to counter p_names[i]{p_labels[i]} in metric_counters, in
-- this backend's shard. Rows are locked in one fixed order, so two
-- transactions that share a shard wait for each other instead of
-- deadlocking. Zero deltas are skipped.
CREATE FUNCTION tr_metrics_write(p_names text[], p_labels jsonb[], p_ns bigint[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO metric_counters AS m (name, labels, shard, value)
    SELECT u.name, u.labels, pg_backend_pid() % 16, sum(u.n)
    FROM unnest(p_names, p_labels, p_ns) AS u (name, labels, n)
    WHERE u.n <> 0
    GROUP BY u.name, u.labels
    ORDER BY u.name, u.labels
    ON CONFLICT (name, labels, shard) DO UPDATE SET value = m.value + EXCLUDED.value;
END
$$;

-- Counts p_ns[i] in counter p_names[i]{p_labels[i]} as part of the current
-- transaction: the deltas are summed in the transaction-local setting
-- taskrunner.metrics ({"<name>\t<labels>": n}) and written once at commit
-- (tr_metrics_commit), so they count if and only if the transaction
-- commits, however many statements added to them.
CREATE FUNCTION tr_metrics_add(p_names text[], p_labels jsonb[], p_ns bigint[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_old text := nullif(current_setting('taskrunner.metrics', true), '');
    v_new jsonb;
BEGIN
    SELECT jsonb_object_agg(x.k, x.n) INTO v_new
    FROM (SELECT y.k, sum(y.n) AS n
          FROM (SELECT e.key AS k, e.value::bigint AS n
                FROM jsonb_each_text(coalesce(v_old, '{}')::jsonb) AS e
                UNION ALL
                SELECT u.name || E'\t' || u.labels::text, u.n
                FROM unnest(p_names, p_labels, p_ns) AS u (name, labels, n)
                WHERE u.n <> 0) y
          GROUP BY y.k) x;
    IF v_new IS NULL THEN
        RETURN;
    END IF;
    IF v_old IS NULL THEN  -- the first in this transaction: write them at commit
        INSERT INTO metric_commits (xid) VALUES (pg_current_xact_id()) ON CONFLICT DO NOTHING;
    END IF;
    PERFORM set_config('taskrunner.metrics', v_new::text, true);
END
$$;

-- At commit: writes the deltas tr_metrics_add summed in this transaction.
CREATE FUNCTION tr_metrics_commit() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v jsonb := nullif(current_setting('taskrunner.metrics', true), '')::jsonb;
BEGIN
    IF v IS NOT NULL THEN
        PERFORM tr_metrics_write(array_agg(split_part(e.key, E'\t', 1)),
                                 array_agg(substr(e.key, strpos(e.key, E'\t') + 1)::jsonb),
                                 array_agg(e.value::text::bigint))
        FROM jsonb_each(v) AS e;
        PERFORM set_config('taskrunner.metrics', '', true);
    END IF;
    DELETE FROM metric_commits WHERE xid = NEW.xid;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER metric_commits_at_commit AFTER INSERT ON metric_commits
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION tr_metrics_commit();

CREATE FUNCTION tr_metric_add(p_name text, p_labels jsonb, p_n bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF p_n <> 0 THEN
        PERFORM tr_metrics_add(ARRAY[p_name], ARRAY[p_labels], ARRAY[p_n]);
    END IF;
END
$$;

-- What the responders and the worker aggregated in memory since their last
-- flush: a JSON array of [name, labels, delta] (shared/metrics.c).
CREATE FUNCTION tr_metrics_flush(p_rows jsonb) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM tr_metrics_write(array_agg(e ->> 0), array_agg(e -> 1), array_agg((e ->> 2)::bigint))
    FROM jsonb_array_elements(p_rows) AS e;
END
$$;

-- The totals of GET /metrics: every counter summed over its shards, and the
-- gauge taskrunner_tasks{status}. Histogram buckets come in the order of
-- their bounds.
--
-- The "kind" label is bounded here, at scrape time: the counters keep every
-- kind exactly, and the first p_max_kinds kinds to appear (by the time their
-- first counter row was written) keep their name while all others are summed
-- into "other". Ranking by first appearance rather than by current count
-- keeps membership fixed for a given bound, so no series ever decreases
-- (which Prometheus would take for a counter reset) and the counters need
-- no registry of kinds that every completion would have to consult.
CREATE FUNCTION tr_metrics_scrape(p_max_kinds integer)
RETURNS TABLE (name text, labels text, value bigint)
LANGUAGE sql STABLE AS $$
    WITH sums AS (
        SELECT m.name, m.labels, sum(m.value)::bigint AS value, min(m.first_at) AS first_at
        FROM metric_counters m
        GROUP BY m.name, m.labels
    ), named AS (
        SELECT k.kind
        FROM (SELECT s.labels ->> 'kind' AS kind, min(s.first_at) AS first_at
              FROM sums s WHERE s.labels ? 'kind' GROUP BY 1) k
        ORDER BY k.first_at, k.kind
        LIMIT p_max_kinds
    ), capped AS (
        SELECT s.name,
               CASE WHEN s.labels ? 'kind'
                         AND NOT EXISTS (SELECT 1 FROM named n WHERE n.kind = s.labels ->> 'kind')
                    THEN s.labels || '{"kind": "other"}' ELSE s.labels END AS labels,
               s.value
        FROM sums s
    ), samples AS (
        SELECT c.name, c.labels, sum(c.value)::bigint AS value
        FROM capped c GROUP BY c.name, c.labels
        UNION ALL
        SELECT 'taskrunner_tasks', jsonb_build_object('status', st.status),
               (SELECT count(*) FROM tasks t WHERE t.status = st.status)
        FROM unnest(ARRAY['Waiting', 'Pending', 'Claimed', 'Running', 'Success', 'Failure',
                          'Canceled', 'Paused']) AS st (status)
    )
    SELECT x.name, x.labels::text, x.value
    FROM samples x
    ORDER BY x.name, x.labels - 'le', (x.labels ->> 'le')::float8
$$;

-- New tasks: a "created" event each, and the creation counter.
CREATE FUNCTION tr_tasks_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_n bigint;
BEGIN
    INSERT INTO task_events (task_id, event, actor, to_status, detail)
    SELECT n.id, 'created', tr_actor(), n.status,
           jsonb_build_object('batch_id', n.batch_id, 'local_id', n.local_id)
    FROM new_tasks n ORDER BY n.seq;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    PERFORM tr_metric_add('taskrunner_tasks_created_total', '{}', v_n);
    RETURN NULL;
END
$$;

-- Status changes: an event each (paused, resumed, canceled, or status), the
-- transition counter, and the completion counter for terminal ones.
CREATE FUNCTION tr_tasks_updated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO task_events (task_id, event, actor, from_status, to_status, detail)
    SELECT n.id,
           CASE WHEN n.status = 'Paused' THEN 'paused'
                WHEN o.status = 'Paused' THEN 'resumed'
                WHEN n.status = 'Canceled' THEN 'canceled'
                ELSE 'status' END,
           tr_actor(), o.status, n.status,
           jsonb_strip_nulls(jsonb_build_object(
               'failure_reason', n.failure_reason,
               'attempt', CASE WHEN n.status = 'Claimed' THEN n.attempt END))
    FROM new_tasks n JOIN old_tasks o ON o.id = n.id
    WHERE n.status <> o.status
    ORDER BY n.seq;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    PERFORM tr_metrics_add(array_agg(c.name), array_agg(c.labels), array_agg(c.n))
    FROM (SELECT 'taskrunner_task_status_transitions_total' AS name,
                 jsonb_build_object('from', o.status, 'to', n.status) AS labels, count(*) AS n
          FROM new_tasks n JOIN old_tasks o ON o.id = n.id
          WHERE n.status <> o.status
          GROUP BY o.status, n.status
          UNION ALL
          SELECT 'taskrunner_tasks_completed_total',
                 jsonb_build_object('outcome', n.status, 'kind', n.kind), count(*)
          FROM new_tasks n JOIN old_tasks o ON o.id = n.id
          WHERE n.status <> o.status AND tr_is_terminal(n.status)
          GROUP BY n.status, n.kind) c;
    RETURN NULL;
END
$$;

-- Statement-level, with transition tables: one call per statement however
-- many rows it touched (a 10,000-task batch is one INSERT).
CREATE TRIGGER tasks_inserted AFTER INSERT ON tasks
    REFERENCING NEW TABLE AS new_tasks
    FOR EACH STATEMENT EXECUTE FUNCTION tr_tasks_inserted();
CREATE TRIGGER tasks_updated AFTER UPDATE ON tasks
    REFERENCING OLD TABLE AS old_tasks NEW TABLE AS new_tasks
    FOR EACH STATEMENT EXECUTE FUNCTION tr_tasks_updated();

-- The full task object of GET /tasks/{id}, from the task row and what is
-- stored beside it: its actions, its dependencies (JSON arrays) and the
-- requester of its batch. The one definition of the shape; tr_task_json
-- (one task) and tr_batch_tasks_json (a whole batch, set-based) feed it.
CREATE FUNCTION tr_task_object(t tasks, p_actions json, p_dependencies json, p_requester text)
RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'id', t.id, 'local_id', t.local_id, 'name', t.name, 'kind', t.kind,
        'status', t.status, 'priority', t.priority, 'timeout', t.timeout,
        'metadata', t.metadata, 'rules', t.rules,
        'actions', coalesce(p_actions, '[]'), 'dependencies', coalesce(p_dependencies, '[]'),
        'created_at', tr_ts(t.created_at), 'started_at', tr_ts(t.started_at),
        'ended_at', tr_ts(t.ended_at), 'last_updated', tr_ts(t.last_updated),
        'success', t.success, 'failures', t.failures, 'failure_reason', t.failure_reason,
        'batch_id', t.batch_id, 'requester', p_requester)
$$;

CREATE FUNCTION tr_action_json(a actions) RETURNS json
LANGUAGE sql IMMUTABLE AS $$
    SELECT json_build_object('id', a.id, 'kind', a.kind, 'trigger', a.trigger,
                             'condition', a.condition, 'params', a.params)
$$;

-- One task. PL/pgSQL rather than SQL so that its plans are cached for the
-- session instead of made on every call.
CREATE FUNCTION tr_task_json(t tasks) RETURNS json
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN tr_task_object(t,
        (SELECT json_agg(tr_action_json(a) ORDER BY a.position)
         FROM actions a WHERE a.task_id = t.id),
        (SELECT json_agg(json_build_object('id', l.parent_id,
                                           'requires_success', l.requires_success)
                         ORDER BY p.seq)
         FROM task_links l JOIN tasks p ON p.id = l.parent_id WHERE l.child_id = t.id),
        (SELECT b.requester FROM batches b WHERE b.id = t.batch_id));
END
$$;

-- Every task of a batch, in creation order, as a JSON array: the answer of
-- POST /tasks. One SQL statement (no per-task PL/pgSQL call); each task's
-- actions and dependencies are correlated lookups on their task-id indexes,
-- so the cost follows the batch, never the size of the tables (a join here
-- was once planned as a scan of every action).
CREATE FUNCTION tr_batch_tasks_json(p_batch uuid) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT coalesce(json_agg(tr_task_object(t,
               (SELECT json_agg(tr_action_json(a) ORDER BY a.position)
                FROM actions a WHERE a.task_id = t.id),
               (SELECT json_agg(json_build_object('id', l.parent_id,
                                                  'requires_success', l.requires_success)
                                ORDER BY p.seq)
                FROM task_links l JOIN tasks p ON p.id = l.parent_id WHERE l.child_id = t.id),
               b.requester) ORDER BY t.seq), '[]')
    FROM tasks t JOIN batches b ON b.id = t.batch_id
    WHERE t.batch_id = p_batch
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
-- batch being stopped as a whole). Counts the children each ended task
-- touched in taskrunner_dependency_propagations_total{parent_outcome}.
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
    v_n      bigint;
    v_prop   jsonb := '{}';  -- parent outcome -> children touched
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
        GET DIAGNOSTICS v_n = ROW_COUNT;

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
                v_n := v_n + 1;
            END LOOP;
        END IF;
        IF v_n > 0 THEN
            v_prop := v_prop || jsonb_build_object(v_status,
                                                   coalesce((v_prop ->> v_status)::bigint, 0) + v_n);
        END IF;
        i := i + 1;
    END LOOP;
    IF v_prop <> '{}' THEN
        PERFORM tr_metrics_add(array_agg('taskrunner_dependency_propagations_total'::text),
                               array_agg(jsonb_build_object('parent_outcome', p.key)),
                               array_agg(p.value::text::bigint))
        FROM jsonb_each(v_prop) AS p;
    END IF;
    PERFORM tr_wake();
END
$$;

-- POST /tasks: creates a validated, normalized batch (see shared/validate.h
-- for the shape of p_tasks) in one go, honouring dedupe strategies and the
-- Idempotency-Key. p_actor is who creates it for the audit trail (the
-- requester, or the API token's name). Returns the HTTP code, the batch id
-- (the first one's, for a replayed key) and the body.
CREATE FUNCTION tr_create_batch(p_batch uuid, p_requester text, p_idem_key text, p_tasks jsonb,
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

    body := tr_batch_tasks_json(p_batch)::text;
    code := CASE WHEN body = '[]' THEN 204 ELSE 201 END;
    batch_id := p_batch;

    IF p_idem_key IS NOT NULL THEN
        UPDATE idempotency_keys k SET status_code = code, body = tr_create_batch.body
        WHERE k.requester = p_requester AND k.key = p_idem_key;
    END IF;
    IF EXISTS (SELECT 1 FROM tasks x WHERE x.batch_id = p_batch AND x.status = 'Pending') THEN
        PERFORM tr_wake();
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
                              p_failure_reason text, p_actor text,
                              OUT code integer, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    v_status   text;
    v_success  bigint;
    v_failures bigint;
BEGIN
    PERFORM tr_set_actor(p_actor);
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
    WHERE id = p_id
    RETURNING success, failures INTO v_success, v_failures;
    PERFORM tr_task_event(p_id, 'updated', v_status, v_status, jsonb_strip_nulls(jsonb_build_object(
        'new_success', coalesce(p_new_success, 0), 'new_failures', coalesce(p_new_failures, 0),
        'success', v_success, 'failures', v_failures, 'status', p_status,
        'metadata_replaced', CASE WHEN p_set_metadata THEN true END)));
    IF p_status IS NOT NULL THEN
        PERFORM tr_finish_task(p_id, p_status,
                               CASE WHEN p_status = 'Failure' THEN p_failure_reason END);
    END IF;
    SELECT 200, tr_task_json(t)::text INTO code, body FROM tasks t WHERE t.id = p_id;
END
$$;

-- PUT /tasks/{id}: fast progress counts.
CREATE FUNCTION tr_count_task(p_id uuid, p_new_success bigint, p_new_failures bigint,
                              p_actor text, OUT code integer, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    v_status   text;
    v_success  bigint;
    v_failures bigint;
BEGIN
    PERFORM tr_set_actor(p_actor);
    UPDATE tasks
    SET success = success + p_new_success, failures = failures + p_new_failures,
        heartbeat_at = CASE WHEN status IN ('Claimed', 'Running') THEN now() END,
        deadline_at = CASE WHEN status = 'Running' THEN now() + make_interval(secs => timeout) END,
        last_updated = now()
    WHERE id = p_id AND NOT tr_is_terminal(status)
    RETURNING status, success, failures INTO v_status, v_success, v_failures;
    IF FOUND THEN
        PERFORM tr_task_event(p_id, 'progress', v_status, v_status, jsonb_build_object(
            'new_success', p_new_success, 'new_failures', p_new_failures,
            'success', v_success, 'failures', v_failures));
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
CREATE FUNCTION tr_cancel_task(p_id uuid, p_actor text, OUT code integer, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    v_status text;
BEGIN
    PERFORM tr_set_actor(p_actor);
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
CREATE FUNCTION tr_pause_task(p_id uuid, p_actor text, OUT code integer, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    v_status text;
BEGIN
    PERFORM tr_set_actor(p_actor);
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
CREATE FUNCTION tr_resume_task(p_id uuid, p_actor text, OUT code integer, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    v_status text;
BEGIN
    PERFORM tr_set_actor(p_actor);
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
    PERFORM tr_wake();
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
CREATE FUNCTION tr_stop_batch(p_batch uuid, p_actor text, OUT code integer, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    PERFORM tr_set_actor(p_actor);
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

-- GET /tasks/{id}/history: the task's audit trail, oldest first.
CREATE FUNCTION tr_task_history(p_id uuid, OUT code integer, OUT body text)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    PERFORM 1 FROM tasks WHERE id = p_id;
    IF NOT FOUND THEN
        code := 404; body := 'task not found'; RETURN;
    END IF;
    SELECT 200, coalesce(json_agg(json_build_object(
                    'at', tr_ts(e.at), 'event', e.event, 'actor', e.actor,
                    'from_status', e.from_status, 'to_status', e.to_status, 'detail', e.detail)
                ORDER BY e.id), '[]')::text
    INTO code, body
    FROM task_events e WHERE e.task_id = p_id;
END
$$;

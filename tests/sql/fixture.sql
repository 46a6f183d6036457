-- tests/sql/fixture.sql: helpers of the SQL tests, loaded by tests/sql/run
-- into each test's database after the migrations, before the test (not
-- echoed). All are named t_*. They only build documents, name things and
-- catch errors: every change in a test goes through the project's functions.

SET client_min_messages = warning;

-- The text of sql/functions/*.sql, filled by the runner (statuses.sql lints it).
CREATE TABLE t_sources (path text PRIMARY KEY, body text NOT NULL);

-- The fixed id of the test object called p_name (task, batch, action).
CREATE FUNCTION t_id(p_name text) RETURNS uuid
LANGUAGE sql IMMUTABLE AS $$ SELECT md5(p_name)::uuid $$;

-- The local id of a task.
CREATE FUNCTION t_name(p_id uuid) RETURNS text
LANGUAGE sql STABLE AS $$ SELECT local_id FROM tasks WHERE id = p_id $$;

CREATE FUNCTION t_status(p_name text) RETURNS task_status
LANGUAGE sql STABLE AS $$ SELECT status FROM tasks WHERE id = t_id(p_name) $$;

-- p_text with each task id written <local id> and each action id
-- <local id/start|success|failure|cancel|registered> (registered: a cancel
-- action an on_start answer gave), so that reasons and idempotency keys read
-- well.
CREATE FUNCTION t_named(p_text text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
    m text[];
    v text;
BEGIN
    FOR m IN SELECT DISTINCT regexp_matches(p_text,
                 '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', 'g')
    LOOP
        SELECT '<' || t.local_id || '>' INTO v FROM tasks t WHERE t.id = m[1]::uuid;
        IF v IS NULL THEN
            SELECT '<' || t.local_id || '/' || CASE WHEN a.position >= 1000 THEN 'registered'
                                                  WHEN a.trigger = 'Start' THEN 'start'
                                                  WHEN a.trigger = 'Cancel' THEN 'cancel'
                                                  ELSE lower(a.condition) END || '>'
            INTO v FROM actions a JOIN tasks t ON t.id = a.task_id WHERE a.id = m[1]::uuid;
        END IF;
        p_text := replace(p_text, m[1], coalesce(v, m[1]));
        v := NULL;
    END LOOP;
    RETURN p_text;
END
$$;

-- One action of task p_task, normalized as shared/validate.c makes it.
CREATE FUNCTION t_action(p_task text, p_what text, p_trigger text, p_condition text)
RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object(
        'id', t_id(p_task || '/' || p_what), 'kind', 'Webhook', 'trigger', p_trigger,
        'condition', p_condition,
        'params', jsonb_build_object('url', 'http://127.0.0.1:9/' || p_task || '/' || p_what,
                                     'verb', 'Post'))
$$;

-- A normalized task (the shape tr_create_batch takes, shared/validate.h)
-- named p_name: id t_id(p_name), local id and name p_name, and four actions:
-- on_start, on_success, on_failure and on_cancel.
CREATE FUNCTION t_task(name text, deps jsonb DEFAULT '[]', kind text DEFAULT 'work',
                       metadata jsonb DEFAULT NULL, rules jsonb DEFAULT '[]',
                       dedupe jsonb DEFAULT '[]', priority integer DEFAULT 0,
                       timeout integer DEFAULT 60)
RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object(
        'id', t_id(name), 'local_id', name, 'name', name, 'kind', kind,
        'timeout', timeout, 'priority', priority, 'metadata', metadata,
        'rules', rules, 'dedupe', dedupe,
        'actions', jsonb_build_array(t_action(name, 'start', 'Start', NULL),
                                     t_action(name, 'success', 'End', 'Success'),
                                     t_action(name, 'failure', 'End', 'Failure'),
                                     t_action(name, 'cancel', 'Cancel', NULL)),
        'deps', deps)
$$;

-- Dependencies on the tasks named, requiring their success (t_deps) or not
-- (t_soft_deps).
CREATE FUNCTION t_deps(VARIADIC p_names text[]) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_agg(jsonb_build_object('id', t_id(n), 'requires_success', true) ORDER BY i)
    FROM unnest(p_names) WITH ORDINALITY AS u (n, i)
$$;
CREATE FUNCTION t_soft_deps(VARIADIC p_names text[]) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_agg(jsonb_build_object('id', t_id(n), 'requires_success', false) ORDER BY i)
    FROM unnest(p_names) WITH ORDINALITY AS u (n, i)
$$;

-- A normalized concurrency rule, and a dedupe strategy entry.
CREATE FUNCTION t_rule(p_kind text, p_max integer, p_fields jsonb DEFAULT '[]',
                       p_status text DEFAULT 'Running') RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object('type', 'Concurrency', 'max_concurrency', p_max,
                              'matcher', jsonb_build_object('kind', p_kind, 'status', p_status,
                                                            'fields', p_fields))
$$;
CREATE FUNCTION t_dedupe(p_kind text, p_status text, p_fields jsonb DEFAULT '[]') RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object('kind', p_kind, 'status', p_status, 'fields', p_fields)
$$;

-- Creates batch p_batch (id t_id(p_batch)) of the tasks given, requester and
-- actor "tester", no idempotency key; returns the HTTP code.
CREATE FUNCTION t_create(p_batch text, VARIADIC p_tasks jsonb[]) RETURNS integer
LANGUAGE sql AS $$
    SELECT code FROM tr_create_batch(t_id(p_batch), 'tester', NULL, NULL, to_jsonb(p_tasks),
                                     'tester')
$$;

-- Puts the tasks named in status p_status through tr_move_tasks, along a
-- path of allowed changes from Pending (Claimed, Running, Success; Failure,
-- Canceled and Paused directly; terminal ones with the reason "put there").
-- Waiting cannot be reached that way: tasks that depend on an unfinished
-- task are created Waiting. Raises if a task did not get there.
CREATE FUNCTION t_put(p_status task_status, VARIADIC p_names text[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_ids uuid[] := ARRAY(SELECT t_id(n) FROM unnest(p_names) AS n);
    s     task_status;
BEGIN
    FOREACH s IN ARRAY CASE p_status
        WHEN 'Waiting' THEN '{}'::task_status[]
        WHEN 'Pending' THEN '{}'
        WHEN 'Claimed' THEN '{Claimed}'
        WHEN 'Running' THEN '{Claimed,Running}'
        WHEN 'Success' THEN '{Claimed,Running,Success}'
        ELSE ARRAY[p_status] END
    LOOP
        PERFORM tr_move_tasks(v_ids, s, CASE WHEN tr_is_terminal(s) THEN 'put there' END);
    END LOOP;
    IF EXISTS (SELECT 1 FROM unnest(v_ids) AS i LEFT JOIN tasks t ON t.id = i
               WHERE t.status IS DISTINCT FROM p_status) THEN
        RAISE EXCEPTION 't_put: not all of % are %', p_names, p_status;
    END IF;
END
$$;

-- Starts the tasks named as the worker would after a 2xx to on_start:
-- Pending -> Claimed -> Running.
CREATE FUNCTION t_start(VARIADIC p_names text[]) RETURNS void
LANGUAGE sql AS $$ SELECT t_put('Running', VARIADIC p_names) $$;

-- Runs p_sql; returns 'ok', or the error as "ERROR <SQLSTATE>: <message>"
-- (the effects of a failed statement are rolled back, as in its own
-- transaction).
CREATE FUNCTION t_try(p_sql text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE p_sql;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN 'ERROR ' || SQLSTATE || ': ' || SQLERRM;
END
$$;

-- Every task, in creation order, as the tests show them.
CREATE VIEW t_tasks AS
SELECT t.local_id AS task, t.status, t.open_parents AS open, t_named(t.failure_reason) AS reason
FROM tasks t ORDER BY t.seq;

-- Every delivery (webhook call), in creation order.
CREATE VIEW t_deliveries AS
SELECT t_name(d.task_id) AS task, t_named('' || d.action_id) AS action, d.trigger, d.outcome,
       d.state, d.attempts
FROM deliveries d ORDER BY d.id;

-- Every audit event but creations, in order.
CREATE VIEW t_events AS
SELECT t_name(e.task_id) AS task, e.event, e.actor, e.from_status, e.to_status,
       t_named(e.detail::text) AS detail
FROM task_events e WHERE e.event <> 'created' ORDER BY e.id;

-- The task counters counted so far (deltas not yet folded and folded ones).
CREATE VIEW t_counters AS
SELECT u.name, u.labels::text AS labels, sum(u.n)::bigint AS n
FROM (SELECT d.name, d.labels, d.n FROM metric_deltas d
      UNION ALL
      SELECT c.name, c.labels, c.value FROM metric_counters c) u
GROUP BY u.name, u.labels ORDER BY u.name, u.labels::text;

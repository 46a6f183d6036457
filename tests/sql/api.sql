-- api: the functions behind PATCH, PUT and DELETE /tasks/{id} and POST
-- /tasks/{id}/pause|resume, in every status: what each allows, and what it
-- refuses (SQLSTATE TRWS0, HTTP 409; an unknown id TRNF0, HTTP 404)
-- without changing anything.
\set VERBOSITY terse
SET client_min_messages = warning;

-- ---------------------------------------------------------------- every call in every status
-- One task per (call, status), named "call@Status", put in its status
-- (t_put; Waiting ones depend on "blocker", which never ends).
CREATE TEMP TABLE calls (call text, sql text);
INSERT INTO calls VALUES
    ('patch',  'SELECT tr_patch_task(%L, ''Success'', 3, 1, false, NULL, NULL, NULL, NULL, ''tester'')'),
    ('count',  'SELECT tr_count_task(%L, 2, 1, NULL, ''tester'')'),
    ('cancel', 'SELECT tr_cancel_task(%L, ''tester'')'),
    ('pause',  'SELECT tr_pause_task(%L, ''tester'')'),
    ('resume', 'SELECT tr_resume_task(%L, ''tester'')');
CREATE TEMP TABLE cases AS
SELECT c.call, s AS status, c.call || '@' || s AS task, format(c.sql, t_id(c.call || '@' || s)) AS sql
FROM calls c, unnest(enum_range(NULL::task_status)) AS s;
SELECT t_create('api', VARIADIC ARRAY(
    SELECT t_task(task, deps => CASE WHEN status = 'Waiting' THEN t_deps('blocker') ELSE '[]' END)
    FROM cases ORDER BY call, status) || t_task('blocker'));
DO $$
DECLARE
    s task_status;
BEGIN
    FOR s IN SELECT unnest(enum_range(NULL::task_status)) LOOP
        PERFORM t_put(s, VARIADIC ARRAY(SELECT task FROM cases WHERE status = s));
    END LOOP;
END
$$;

-- Each call is made once; what the task, its events, its calls and the
-- counters were before and after is kept.
CREATE TEMP TABLE results (call text, status task_status, task text, result text,
                           row_before jsonb, row_after jsonb, events integer, deliveries integer,
                           deltas integer);
DO $$
DECLARE
    c        record;
    v_before jsonb;
    v_ev     bigint;
    v_dl     bigint;
    v_md     bigint;
    v_result text;
BEGIN
    FOR c IN SELECT * FROM cases ORDER BY call, status LOOP
        SELECT to_jsonb(t) INTO v_before FROM tasks t WHERE t.id = t_id(c.task);
        SELECT count(*) INTO v_ev FROM task_events;
        SELECT count(*) INTO v_dl FROM deliveries;
        SELECT count(*) INTO v_md FROM metric_deltas;
        v_result := t_try(c.sql);
        INSERT INTO results
        SELECT c.call, c.status, c.task, v_result, v_before, to_jsonb(t),
               (SELECT count(*) FROM task_events) - v_ev,
               (SELECT count(*) FROM deliveries) - v_dl,
               (SELECT count(*) FROM metric_deltas) - v_md
        FROM tasks t WHERE t.id = t_id(c.task);
    END LOOP;
END
$$;

-- What each call does in each status: the status it leaves the task in, or
-- the SQLSTATE it raises.
SELECT status AS "status \ call",
       max(CASE WHEN call = 'patch' THEN r END) AS "patch (Success)",
       max(CASE WHEN call = 'count' THEN r END) AS "count",
       max(CASE WHEN call = 'cancel' THEN r END) AS "cancel",
       max(CASE WHEN call = 'pause' THEN r END) AS "pause",
       max(CASE WHEN call = 'resume' THEN r END) AS "resume"
FROM (SELECT call, status,
             CASE WHEN result = 'ok' THEN '-> ' || (row_after ->> 'status')
                  ELSE substr(result, 7, 5) END AS r
      FROM results) x
GROUP BY status ORDER BY status;

-- The messages of the refusals.
SELECT DISTINCT call, result FROM results WHERE result <> 'ok' ORDER BY call, result;

-- A refused call changes nothing: not the task's row, no event, no webhook
-- call, no counter (no row: none did).
SELECT task, row_before = row_after AS row_unchanged, events, deliveries, deltas
FROM results
WHERE result <> 'ok' AND (row_before <> row_after OR events <> 0 OR deliveries <> 0 OR deltas <> 0);
SELECT count(*) AS refused FROM results WHERE result <> 'ok';

-- An accepted call writes its events: "updated" then the end for a PATCH
-- with a status, "progress" for a count, "canceled", "paused", "resumed".
SELECT r.task, string_agg(e.event || ' ' || e.from_status || '>' || e.to_status, ', ' ORDER BY e.id)
           AS events
FROM results r JOIN task_events e ON e.task_id = t_id(r.task) AND e.actor = 'tester'
WHERE r.result = 'ok'
GROUP BY r.task, r.call, r.status ORDER BY r.call, r.status;

-- Counts: a PATCH and a count add their increments.
SELECT task, row_after -> 'success' AS success, row_after -> 'failures' AS failures
FROM results WHERE result = 'ok' AND call IN ('patch', 'count') ORDER BY call, status;

-- ---------------------------------------------------------------- unknown ids
SELECT c.call, t_try(format(c.sql, t_id('no such task'))) AS result FROM calls c ORDER BY c.call;
SELECT t_try($$SELECT tr_get_task(t_id('no such task'))$$) AS get,
       t_try($$SELECT tr_task_history(t_id('no such task'), 50, 0)$$) AS history,
       t_try($$SELECT tr_task_blockers(t_id('no such task'))$$) AS blockers;

-- As a client sees a refusal: the message, then its SQLSTATE.
SELECT tr_pause_task(t_id('pause@Running'), 'tester');
\echo :LAST_ERROR_SQLSTATE

-- ---------------------------------------------------------------- details
SELECT t_create('details', t_task('run1', metadata => '{"a": 1}'), t_task('run2'), t_task('run3'),
                t_task('wait1', t_deps('run1')));
SELECT t_start('run1', 'run2', 'run3');

-- A PATCH without status is progress: counts added, metadata replaced (when
-- asked), the task still Running; the answer is the task.
SELECT code, body::jsonb ->> 'status' AS status, body::jsonb -> 'success' AS success,
       body::jsonb -> 'failures' AS failures, body::jsonb -> 'metadata' AS metadata
FROM tr_patch_task(t_id('run1'), NULL, 5, 2, true, '{"b": 2}', NULL, NULL, NULL, 'tester');
SELECT code, body::jsonb -> 'success' AS success, body::jsonb -> 'metadata' AS metadata
FROM tr_patch_task(t_id('run1'), NULL, 1, 0, false, NULL, NULL, NULL, NULL, 'tester');
SELECT task, event, actor, detail FROM t_events WHERE task = 'run1' AND event = 'updated';

-- A PATCH with Failure stores its reason, and fails the children that
-- required the task; with Success the reason is ignored.
SELECT code, body::jsonb ->> 'status' AS status, body::jsonb ->> 'failure_reason' AS reason
FROM tr_patch_task(t_id('run1'), 'Failure', NULL, NULL, false, NULL, 'disk full', NULL, NULL, 'tester');
SELECT * FROM t_tasks WHERE task IN ('run1', 'wait1');
SELECT code, body::jsonb ->> 'status' AS status, body::jsonb ->> 'failure_reason' AS reason
FROM tr_patch_task(t_id('run2'), 'Success', NULL, NULL, false, NULL, 'ignored', NULL, NULL, 'tester');

-- A count answers 202.
SELECT code, body FROM tr_count_task(t_id('run3'), 1, 0, NULL, 'tester');

-- Resume puts a task back where its parents put it: Waiting while one is open.
SELECT t_create('resume', t_task('r1'), t_task('r2', t_deps('r1')));
SELECT code, body::jsonb ->> 'status' AS status FROM tr_pause_task(t_id('r2'), 'tester');
SELECT code, body::jsonb ->> 'status' AS status FROM tr_resume_task(t_id('r2'), 'tester');
SELECT code, body::jsonb ->> 'status' AS status FROM tr_pause_task(t_id('r1'), 'tester');
SELECT code, body::jsonb ->> 'status' AS status FROM tr_resume_task(t_id('r1'), 'tester');
SELECT task, event, actor, from_status, to_status FROM t_events WHERE task IN ('r1', 'r2');

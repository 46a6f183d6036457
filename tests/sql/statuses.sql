-- statuses: the task statuses, their allowed changes (table task_transitions)
-- and tr_move_tasks, the one function that changes a task's status.
\set VERBOSITY terse
SET client_min_messages = warning;

-- The allowed changes, as the migrations list them; those of a re-run
-- (POST /tasks/{id}/retry) apart.
SELECT from_status,
       string_agg(to_status::text, ', ' ORDER BY to_status) FILTER (WHERE NOT rerun) AS may_go_to,
       string_agg(to_status::text, ', ' ORDER BY to_status) FILTER (WHERE rerun) AS on_rerun
FROM task_transitions GROUP BY from_status ORDER BY from_status;

-- Terminal statuses are exactly those with no way out but a re-run.
SELECT s AS status, tr_is_terminal(s) AS terminal,
       NOT EXISTS (SELECT 1 FROM task_transitions x
                   WHERE x.from_status = s AND NOT x.rerun) AS no_way_out
FROM unnest(enum_range(NULL::task_status)) AS s;

-- ---------------------------------------------------------------- every pair
-- One task per (from, to) pair of statuses, 81 in all, named "From>To", put
-- in its from-status through tr_move_tasks itself (t_put): tasks start
-- Pending, or Waiting when they depend on "blocker" (which never ends); the
-- others are moved along a path of allowed changes.
CREATE TEMP TABLE pairs AS
SELECT f AS from_status, t AS to_status, f || '>' || t AS task
FROM unnest(enum_range(NULL::task_status)) AS f, unnest(enum_range(NULL::task_status)) AS t;

SELECT t_create('matrix', VARIADIC ARRAY(
    SELECT t_task(p.task, deps => CASE WHEN p.from_status = 'Waiting' THEN t_deps('blocker')
                                       ELSE '[]' END)
    FROM pairs p ORDER BY p.from_status, p.to_status) || t_task('blocker'));

DO $$
DECLARE
    f task_status;
BEGIN
    FOR f IN SELECT unnest(enum_range(NULL::task_status)) LOOP
        PERFORM t_put(f, VARIADIC ARRAY(SELECT task FROM pairs WHERE from_status = f));
    END LOOP;
END
$$;

-- Every task is in its from-status now (8 tasks each).
SELECT p.from_status, count(*) FILTER (WHERE t.status = p.from_status) AS there,
       count(*) FILTER (WHERE t.status <> p.from_status) AS elsewhere
FROM pairs p JOIN tasks t ON t.id = t_id(p.task)
GROUP BY p.from_status ORDER BY p.from_status;

-- What follows is counted from here: the events so far are remembered, the
-- metric deltas so far folded away.
SELECT max(id) AS mark FROM task_events \gset
SELECT tr_metrics_fold(100000) > 0 AS folded;
SELECT count(*) AS deltas_left FROM metric_deltas;

-- Each pair is tried once, with tr_move_tasks(ARRAY[task], to, reason).
CREATE TEMP TABLE moves (task text, from_status task_status, to_status task_status,
                         moved boolean, returned_from task_status);
DO $$
DECLARE
    p record;
    v task_status;
BEGIN
    FOR p IN SELECT * FROM pairs ORDER BY from_status, to_status LOOP
        SELECT m.from_status INTO v
        FROM tr_move_tasks(ARRAY[t_id(p.task)], p.to_status, 'reason of ' || p.task) m;
        INSERT INTO moves VALUES (p.task, p.from_status, p.to_status, FOUND, v);
    END LOOP;
END
$$;

-- The state machine: "yes" where the task moved.
SELECT from_status AS "from \ to",
       max(CASE WHEN to_status = 'Waiting' THEN CASE WHEN moved THEN 'yes' ELSE '.' END END) AS "Waiting",
       max(CASE WHEN to_status = 'Pending' THEN CASE WHEN moved THEN 'yes' ELSE '.' END END) AS "Pending",
       max(CASE WHEN to_status = 'Claimed' THEN CASE WHEN moved THEN 'yes' ELSE '.' END END) AS "Claimed",
       max(CASE WHEN to_status = 'Running' THEN CASE WHEN moved THEN 'yes' ELSE '.' END END) AS "Running",
       max(CASE WHEN to_status = 'Success' THEN CASE WHEN moved THEN 'yes' ELSE '.' END END) AS "Success",
       max(CASE WHEN to_status = 'Failure' THEN CASE WHEN moved THEN 'yes' ELSE '.' END END) AS "Failure",
       max(CASE WHEN to_status = 'Canceled' THEN CASE WHEN moved THEN 'yes' ELSE '.' END END) AS "Canceled",
       max(CASE WHEN to_status = 'Paused' THEN CASE WHEN moved THEN 'yes' ELSE '.' END END) AS "Paused"
FROM moves GROUP BY from_status ORDER BY from_status;

-- It moved exactly the pairs task_transitions lists, but a re-run's (no
-- row: none differs),
-- and returned the status each moved task had.
SELECT m.task, m.moved,
       EXISTS (SELECT 1 FROM task_transitions x
               WHERE x.from_status = m.from_status AND x.to_status = m.to_status
                 AND NOT x.rerun) AS listed
FROM moves m
WHERE m.moved <> EXISTS (SELECT 1 FROM task_transitions x
                         WHERE x.from_status = m.from_status AND x.to_status = m.to_status
                           AND NOT x.rerun)
   OR (m.moved AND m.returned_from IS DISTINCT FROM m.from_status)
   OR (NOT m.moved AND m.returned_from IS NOT NULL);
SELECT count(*) FILTER (WHERE moved) AS moved, count(*) FILTER (WHERE NOT moved) AS refused
FROM moves;

-- A moved task is in its to-status, a refused one still in its from-status
-- (no row: none is elsewhere).
SELECT m.task, t.status
FROM moves m JOIN tasks t ON t.id = t_id(m.task)
WHERE t.status <> CASE WHEN m.moved THEN m.to_status ELSE m.from_status END;

-- A refused pair wrote no event (no row)...
SELECT m.task, e.event
FROM moves m JOIN task_events e ON e.task_id = t_id(m.task) AND e.id > :mark
WHERE NOT m.moved;

-- ...and each move one: paused, resumed, canceled or status, with the
-- reason of a terminal status (Paused>Failure is "status", Paused>Canceled
-- "canceled": see paused_event_name.sql).
SELECT m.task, count(e.*) AS events, min(e.event) AS event, min(e.from_status) AS "from",
       min(e.to_status) AS "to", min(e.detail::text) AS detail
FROM moves m LEFT JOIN task_events e ON e.task_id = t_id(m.task) AND e.id > :mark
WHERE m.moved
GROUP BY m.task, m.from_status, m.to_status ORDER BY m.from_status, m.to_status;

-- The counters: one transition per move, labelled from and to (no row: none
-- differs)...
SELECT m.task, coalesce(d.n, 0) AS counted
FROM moves m
LEFT JOIN (SELECT labels ->> 'from' AS f, labels ->> 'to' AS t, sum(n) AS n FROM metric_deltas
           WHERE name = 'taskrunner_task_status_transitions_total' GROUP BY 1, 2) d
       ON d.f = m.from_status::text AND d.t = m.to_status::text
WHERE coalesce(d.n, 0) <> CASE WHEN m.moved THEN 1 ELSE 0 END;
SELECT count(*) AS transition_rows, sum(n) AS transitions
FROM metric_deltas WHERE name = 'taskrunner_task_status_transitions_total';

-- ...and one completion per move to a terminal status, by outcome and kind.
SELECT labels ->> 'outcome' AS outcome, labels ->> 'kind' AS kind, sum(n) AS completed
FROM metric_deltas WHERE name = 'taskrunner_tasks_completed_total'
GROUP BY 1, 2 ORDER BY 1;
SELECT DISTINCT name FROM metric_deltas ORDER BY name;

-- What a new status implies: Claimed counts a start attempt and sets the
-- heartbeat; Running sets started_at and the deadline (heartbeat + timeout);
-- a terminal status sets ended_at and the failure reason given, keeps the
-- last heartbeat and drops the deadline; a waiting status (Waiting, Pending,
-- Paused) has no heartbeat nor deadline.
SELECT m.to_status, count(*) AS moves,
       bool_and(t.attempt = CASE WHEN m.to_status = 'Claimed' THEN 1
                                 WHEN m.from_status IN ('Claimed', 'Running') THEN 1
                                 ELSE 0 END) AS attempt_ok,
       bool_and((t.heartbeat_at IS NOT NULL) = (m.to_status IN ('Claimed', 'Running')
                                                OR (tr_is_terminal(m.to_status)
                                                    AND m.from_status IN ('Claimed', 'Running'))))
           AS heartbeat_ok,
       bool_and((t.started_at IS NOT NULL) = (m.to_status = 'Running'
                                              OR m.from_status = 'Running')) AS started_ok,
       bool_and(CASE WHEN m.to_status = 'Running'
                     THEN t.deadline_at = t.heartbeat_at + interval '60 s'
                     ELSE t.deadline_at IS NULL END) AS deadline_ok,
       bool_and((t.ended_at IS NOT NULL) = tr_is_terminal(m.to_status)) AS ended_ok,
       bool_and(t.failure_reason IS NOT DISTINCT FROM
                CASE WHEN tr_is_terminal(m.to_status) THEN 'reason of ' || m.task END) AS reason_ok
FROM moves m JOIN tasks t ON t.id = t_id(m.task)
WHERE m.moved
GROUP BY m.to_status ORDER BY m.to_status;

-- ---------------------------------------------------------------- several at once
-- Of several tasks, only those whose change is allowed move; the call
-- returns them with their status before.
SELECT t_create('several', t_task('s1'), t_task('s2'), t_task('s3'));
SELECT tr_move_tasks(ARRAY[t_id('s1')], 'Paused') IS NOT NULL AS s1_paused;
SELECT tr_move_tasks(ARRAY[t_id('s2')], 'Canceled') IS NOT NULL AS s2_canceled;
SELECT t_name(id) AS task, from_status
FROM tr_move_tasks(ARRAY[t_id('s1'), t_id('s2'), t_id('s3'), t_id('no such task')], 'Pending')
ORDER BY 1;
SELECT task, status FROM t_tasks WHERE task LIKE 's_';
SELECT task, event, from_status, to_status FROM t_events WHERE task LIKE 's_';

-- With p_attempts, a task moves only if its start attempt is the one given
-- (the worker's answer to an older start must not move a newer one).
SELECT t_create('attempts', t_task('at1'));
SELECT count(*) AS claimed FROM tr_move_tasks(ARRAY[t_id('at1')], 'Claimed');
SELECT attempt FROM tasks WHERE id = t_id('at1');
SELECT count(*) AS moved_with_attempt_2
FROM tr_move_tasks(ARRAY[t_id('at1')], 'Running', NULL, ARRAY[2]);
SELECT t_status('at1');
SELECT count(*) AS moved_with_attempt_1
FROM tr_move_tasks(ARRAY[t_id('at1')], 'Running', NULL, ARRAY[1]);
SELECT t_status('at1');
SELECT task, event, from_status, to_status, detail FROM t_events WHERE task = 'at1';

-- A creation writes a "created" event and counts in tasks_created_total,
-- once per statement.
SELECT event, to_status, count(*) FROM task_events WHERE event = 'created' GROUP BY 1, 2 ORDER BY 2;
SELECT name, n FROM t_counters WHERE name = 'taskrunner_tasks_created_total';

-- ---------------------------------------------------------------- the lint
-- One owner: no function file but statuses.sql sets tasks.status. The text
-- of sql/functions/*.sql is in t_sources (loaded by tests/sql/run). Each
-- "UPDATE tasks" is cut at its WHERE, FROM, RETURNING or ";", and its SET
-- list searched for an assignment to status.
CREATE TEMP TABLE status_writes AS
SELECT s.path,
       regexp_replace(piece, '(\m(where|from|returning)\M|;).*$', '', 'i') AS set_list
FROM t_sources s,
     regexp_split_to_table(regexp_replace(s.body, '--[^\n]*', '', 'g'), '\mupdate\s+tasks\M', 'i')
         WITH ORDINALITY AS x (piece, n)
WHERE x.n > 1;
SELECT count(*) >= 10 AS files_loaded FROM t_sources;
SELECT path, count(*) FILTER (WHERE set_list ~* '(\mset\M|,)\s*(\w+\.)?status\s*=') AS sets_status,
       count(*) AS updates_of_tasks
FROM status_writes GROUP BY path
HAVING count(*) FILTER (WHERE set_list ~* '(\mset\M|,)\s*(\w+\.)?status\s*=') > 0
ORDER BY path;
-- The search finds what it must (and only that).
SELECT x AS sample, x ~* '(\mset\M|,)\s*(\w+\.)?status\s*=' AS sets_status
FROM (VALUES (' t SET status = ''Running'' '), (' SET success = 1, status=''Failure'''),
             (' c SET last_updated = now(), c.status = p_to'),
             (' SET heartbeat_at = CASE WHEN status = ''Running'' THEN now() END')) AS v (x);

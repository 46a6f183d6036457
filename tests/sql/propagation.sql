-- propagation: what follows when a task ends (tr_finish_task): its children
-- count it as finished, or end too when they required its success,
-- cascading through the DAG; its end (and cancel) webhooks are queued; the
-- children touched are counted in taskrunner_dependency_propagations_total.
-- Every test task has an on_start, on_success, on_failure and on_cancel
-- action (tests/sql/fixture.sql); t_deliveries shows the calls queued.
\set VERBOSITY terse
SET client_min_messages = warning;

-- The children touched by the ends since the last look, by parent outcome
-- (each look folds them away).
CREATE TEMP VIEW propagated AS
SELECT labels ->> 'parent_outcome' AS parent_outcome, sum(n) AS children
FROM metric_deltas WHERE name = 'taskrunner_dependency_propagations_total'
GROUP BY 1 ORDER BY 1;
SELECT tr_metrics_fold(100000) >= 0 AS folded;

-- ---------------------------------------------------------------- chain, success
-- c1 <- c2 <- c3, each requiring its parent's success.
SELECT t_create('chain', t_task('c1'), t_task('c2', t_deps('c1')), t_task('c3', t_deps('c2')));
SELECT * FROM t_tasks WHERE task LIKE 'c_';
SELECT t_start('c1');
SELECT tr_finish_task(t_id('c1'), 'Success', NULL);
SELECT * FROM t_tasks WHERE task LIKE 'c_';
SELECT t_start('c2');
SELECT tr_finish_task(t_id('c2'), 'Success', NULL);
SELECT * FROM t_tasks WHERE task LIKE 'c_';
-- Each success queued its on_success call, nothing else.
SELECT * FROM t_deliveries WHERE task LIKE 'c_';
SELECT * FROM propagated;
SELECT tr_metrics_fold(100000) > 0 AS folded;

-- ---------------------------------------------------------------- chain, failure cascade
-- f1 <- f2 <- f3 <- f4, each requiring its parent's success: f1 fails and
-- every task after it fails, naming its own parent; each fires on_failure.
SELECT t_create('failchain', t_task('f1'), t_task('f2', t_deps('f1')),
                t_task('f3', t_deps('f2')), t_task('f4', t_deps('f3')));
SELECT t_start('f1');
SELECT tr_finish_task(t_id('f1'), 'Failure', 'boom');
SELECT * FROM t_tasks WHERE task LIKE 'f_';
-- The reason as stored: "Required parent task <uuid> failed".
SELECT failure_reason = 'Required parent task ' || t_id('f1') || ' failed' AS f2_reason_exact
FROM tasks WHERE id = t_id('f2');
SELECT * FROM t_deliveries WHERE task LIKE 'f_';
SELECT * FROM t_events WHERE task LIKE 'f_';
SELECT * FROM propagated;
SELECT tr_metrics_fold(100000) > 0 AS folded;
-- Ending an ended task again does nothing (no event, no call, no count).
SELECT tr_finish_task(t_id('f2'), 'Canceled', NULL);
SELECT count(*) AS f_events FROM t_events WHERE task LIKE 'f_';
SELECT count(*) AS f_calls FROM t_deliveries WHERE task LIKE 'f_';
SELECT * FROM propagated;

-- ---------------------------------------------------------------- canceled parent
-- x1 <- x2 (required): x1 canceled while Pending: x2 fails with "was
-- canceled"; x1 had not started, so no on_cancel call.
SELECT t_create('cancel', t_task('x1'), t_task('x2', t_deps('x1')));
SELECT tr_finish_task(t_id('x1'), 'Canceled', NULL);
SELECT * FROM t_tasks WHERE task LIKE 'x_';
SELECT * FROM t_deliveries WHERE task LIKE 'x_';
-- x3 canceled while Running: its on_cancel call is queued (with outcome Canceled).
SELECT t_create('cancel2', t_task('x3'));
SELECT t_start('x3');
SELECT tr_finish_task(t_id('x3'), 'Canceled', NULL);
SELECT * FROM t_deliveries WHERE task = 'x3';
-- x4 fails while Running, with p_fire_cancel (a heartbeat timeout): its
-- on_failure and on_cancel calls are queued.
SELECT t_create('cancel3', t_task('x4'));
SELECT t_start('x4');
SELECT tr_finish_task(t_id('x4'), 'Failure', 'Timeout', true);
SELECT * FROM t_deliveries WHERE task = 'x4';
SELECT * FROM propagated;
SELECT tr_metrics_fold(100000) > 0 AS folded;

-- ---------------------------------------------------------------- not requiring success
-- s1 <- s2, s2 not requiring s1's success: s1 fails, s2 counts it as
-- finished and becomes Pending.
SELECT t_create('soft', t_task('s1'), t_task('s2', t_soft_deps('s1')));
SELECT t_start('s1');
SELECT tr_finish_task(t_id('s1'), 'Failure', 'boom');
SELECT * FROM t_tasks WHERE task LIKE 's_';
SELECT * FROM propagated;
SELECT tr_metrics_fold(100000) > 0 AS folded;

-- ---------------------------------------------------------------- diamond
-- d1 <- d2, d1 <- d3, d2 <- d4, d3 <- d4 (all required): d4 waits for both.
SELECT t_create('diamond', t_task('d1'), t_task('d2', t_deps('d1')), t_task('d3', t_deps('d1')),
                t_task('d4', t_deps('d2', 'd3')));
SELECT * FROM t_tasks WHERE task LIKE 'd_';
SELECT t_start('d1');
SELECT tr_finish_task(t_id('d1'), 'Success', NULL);
SELECT * FROM t_tasks WHERE task LIKE 'd_';
SELECT t_start('d2', 'd3');
SELECT tr_finish_task(t_id('d2'), 'Success', NULL);
SELECT * FROM t_tasks WHERE task LIKE 'd_';
SELECT tr_finish_task(t_id('d3'), 'Success', NULL);
SELECT * FROM t_tasks WHERE task LIKE 'd_';
SELECT * FROM propagated;
SELECT tr_metrics_fold(100000) > 0 AS folded;

-- The same diamond failing at its top: e4 fails once (one event, one
-- on_failure call), for the first of its parents to fail. Each parent
-- counts the child it touched: e1 two, e2 and e3 one each.
SELECT t_create('diamond2', t_task('e1'), t_task('e2', t_deps('e1')), t_task('e3', t_deps('e1')),
                t_task('e4', t_deps('e2', 'e3')));
SELECT t_start('e1');
SELECT tr_finish_task(t_id('e1'), 'Failure', 'boom');
SELECT * FROM t_tasks WHERE task LIKE 'e_';
SELECT task, count(*) AS events FROM t_events WHERE task LIKE 'e_' GROUP BY task ORDER BY task;
SELECT task, action, state FROM t_deliveries WHERE task LIKE 'e_';
SELECT * FROM propagated;
SELECT tr_metrics_fold(100000) > 0 AS folded;

-- ---------------------------------------------------------------- fan-in
-- i4 requires i1 and i2 and waits for i3 without requiring its success.
SELECT t_create('fanin', t_task('i1'), t_task('i2'), t_task('i3'),
                t_task('i4', t_deps('i1', 'i2') || t_soft_deps('i3')));
SELECT t_start('i1', 'i2', 'i3');
SELECT tr_finish_task(t_id('i3'), 'Failure', 'boom');
SELECT * FROM t_tasks WHERE task LIKE 'i_';
SELECT tr_finish_task(t_id('i1'), 'Success', NULL);
SELECT * FROM t_tasks WHERE task LIKE 'i_';
SELECT tr_finish_task(t_id('i2'), 'Success', NULL);
SELECT * FROM t_tasks WHERE task LIKE 'i_';
-- j3 requires j1 and j2: j1 fails while j2 runs; j3 fails at once, and j2's
-- later success leaves it failed.
SELECT t_create('fanin2', t_task('j1'), t_task('j2'), t_task('j3', t_deps('j1', 'j2')));
SELECT t_start('j1', 'j2');
SELECT tr_finish_task(t_id('j1'), 'Failure', 'boom');
SELECT * FROM t_tasks WHERE task LIKE 'j_';
SELECT tr_finish_task(t_id('j2'), 'Success', NULL);
SELECT * FROM t_tasks WHERE task LIKE 'j_';
SELECT * FROM propagated;
SELECT tr_metrics_fold(100000) > 0 AS folded;

-- ---------------------------------------------------------------- fan-out
-- o1 has four children: o2 and o3 require its success, o4 and o5 do not.
SELECT t_create('fanout', t_task('o1'), t_task('o2', t_deps('o1')), t_task('o3', t_deps('o1')),
                t_task('o4', t_soft_deps('o1')), t_task('o5', t_soft_deps('o1')));
SELECT t_start('o1');
SELECT tr_finish_task(t_id('o1'), 'Canceled', NULL);
SELECT * FROM t_tasks WHERE task LIKE 'o_';
SELECT task, action FROM t_deliveries WHERE task LIKE 'o_';
SELECT * FROM propagated;
SELECT tr_metrics_fold(100000) > 0 AS folded;

-- ---------------------------------------------------------------- paused child
-- p2 (requires p1) is paused while Waiting: p1's success leaves it Paused
-- with no open parent; resumed, it goes straight to Pending.
SELECT t_create('paused', t_task('p1'), t_task('p2', t_deps('p1')));
SELECT code FROM tr_pause_task(t_id('p2'), 'tester');
SELECT t_start('p1');
SELECT tr_finish_task(t_id('p1'), 'Success', NULL);
SELECT * FROM t_tasks WHERE task LIKE 'p_';
SELECT code FROM tr_resume_task(t_id('p2'), 'tester');
SELECT * FROM t_tasks WHERE task LIKE 'p_';
-- q2 (requires q1) is paused: q1's failure fails it (Paused -> Failure).
SELECT t_create('paused2', t_task('q1'), t_task('q2', t_deps('q1')));
SELECT code FROM tr_pause_task(t_id('q2'), 'tester');
SELECT t_start('q1');
SELECT tr_finish_task(t_id('q1'), 'Failure', 'boom');
SELECT * FROM t_tasks WHERE task LIKE 'q_';
SELECT task, event, from_status, to_status FROM t_events WHERE task = 'q2';
SELECT * FROM propagated;
SELECT tr_metrics_fold(100000) > 0 AS folded;

-- ---------------------------------------------------------------- stopping a batch
-- Batch "stop": m1 (running, kind "stoppable") <- m2 (required). Batch
-- "other": n1 would duplicate m1 (dedupe: a Running "stoppable" task with
-- the same n), so it is skipped and n2's dependency on it links to m1.
SELECT t_create('stop', t_task('m1', kind => 'stoppable', metadata => '{"n": 1}'),
                t_task('m2', t_deps('m1')));
SELECT t_start('m1');
SELECT t_create('other',
                t_task('n1', kind => 'stoppable', metadata => '{"n": 1}',
                       dedupe => jsonb_build_array(t_dedupe('stoppable', 'Running', '["n"]'))),
                t_task('n2', t_deps('n1')));
SELECT t_name(parent_id) AS parent, t_name(child_id) AS child, requires_success
FROM task_links WHERE child_id IN (t_id('m2'), t_id('n2')) ORDER BY 2;
-- Stopping "stop" cancels its tasks: m2 is canceled (not failed), while n2,
-- in another batch, fails because its required parent was canceled.
SELECT code, body::jsonb -> 'by_status' AS by_status FROM tr_stop_batch(t_id('stop'), 'tester');
SELECT * FROM t_tasks WHERE task ~ '^[mn]\d$';
SELECT task, action, outcome FROM t_deliveries WHERE task ~ '^[mn]\d$';
SELECT task, event, actor, from_status, to_status FROM t_events WHERE task ~ '^[mn]\d$';
SELECT * FROM propagated;
SELECT tr_metrics_fold(100000) > 0 AS folded;
-- A batch that does not exist.
SELECT t_try($$SELECT tr_stop_batch(t_id('no such batch'), 'tester')$$);

-- ---------------------------------------------------------------- totals
SELECT labels, n FROM t_counters WHERE name = 'taskrunner_dependency_propagations_total';

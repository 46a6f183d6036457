-- The history event of a Paused task that is canceled or fails: "canceled"
-- and "status" (tr_move_tasks once named both "resumed", as it tested "from
-- Paused" before "to Canceled").
\set VERBOSITY terse
SET client_min_messages = warning;

SELECT t_create('bug', t_task('p1'), t_task('p2'), t_task('c2', t_deps('p2')));
SELECT code FROM tr_pause_task(t_id('p1'), 'tester');
SELECT code FROM tr_pause_task(t_id('c2'), 'tester');
-- DELETE /tasks/{id} of a paused task.
SELECT code FROM tr_cancel_task(t_id('p1'), 'tester');
-- A paused task whose required parent fails.
SELECT t_start('p2');
SELECT code FROM tr_patch_task(t_id('p2'), 'Failure', NULL, NULL, false, NULL, 'boom', NULL, NULL, 'executor');
SELECT task, event, from_status, to_status FROM t_events
WHERE task IN ('p1', 'c2') AND from_status = 'Paused';

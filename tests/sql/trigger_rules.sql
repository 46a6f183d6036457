-- trigger_rules: a child's trigger_rule decided in tr_finish_task, in the
-- transaction of each parent's end (API.md, "Trigger rules and outputs"):
-- every rule, the Skipped status (terminal, no action fires, seen by its
-- children), /blockers, the task output set by PATCH, and the transitions
-- to Skipped written by tr_after_migrate.
\set VERBOSITY terse
SET client_min_messages = warning;

CREATE FUNCTION t_rtask(name text, rule text, deps jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT t_task(name, deps) || jsonb_build_object('trigger_rule', rule)
$$;
CREATE TEMP VIEW r_tasks AS
SELECT t.local_id AS task, t.status, t.open_parents AS open, t.par_ok AS ok,
       t.par_failed AS failed, t.par_skipped AS skipped, t_named(t.failure_reason) AS reason
FROM tasks t ORDER BY t.seq;

-- The transitions to Skipped (tr_after_migrate, run by scripts/migrate).
SELECT from_status, to_status FROM task_transitions WHERE to_status = 'Skipped' ORDER BY 1;
SELECT tr_is_terminal('Skipped') AS skipped_is_terminal;

-- ---------------------------------------------------------------- the decision table
SELECT r, s, tr_rule_state(r, o, k, f, sk) AS state
FROM (VALUES ('all_success', 'two open'), ('all_success', 'one ok, one open'),
             ('all_success', 'all ok'), ('all_success', 'one failed'),
             ('all_done', 'one open'), ('all_done', 'all ended'),
             ('none_failed', 'ok and skipped'), ('none_failed', 'one failed'),
             ('one_success', 'one ok, one open'), ('one_success', 'none ok, all ended'),
             ('one_failed', 'one failed, one open'), ('one_failed', 'none failed, all ended'),
             ('all_failed', 'all failed'), ('all_failed', 'one ok')) AS x (r, s)
CROSS JOIN LATERAL (SELECT CASE s WHEN 'two open' THEN 2 WHEN 'one ok, one open' THEN 1
                                  WHEN 'one open' THEN 1 WHEN 'one failed, one open' THEN 1
                                  ELSE 0 END AS o,
                           CASE WHEN s LIKE '%ok%' AND s NOT LIKE 'none ok%' THEN 1 ELSE 0 END AS k,
                           CASE WHEN s IN ('one failed', 'one failed, one open', 'all failed')
                                THEN 1 ELSE 0 END AS f,
                           CASE WHEN s = 'ok and skipped' THEN 1 ELSE 0 END AS sk) y
ORDER BY r, s;

-- ---------------------------------------------------------------- one_success
-- a, b <- os (one_success): starts as soon as a succeeds, b still running.
SELECT t_create('os', t_task('a'), t_task('b'), t_rtask('os', 'one_success', t_deps('a', 'b')));
-- Waiting: its blocker names the rule and the parents it waits for.
SELECT t_named(body) FROM tr_task_blockers(t_id('os'));
SELECT t_start('a', 'b');
SELECT tr_finish_task(t_id('a'), 'Success', NULL);
SELECT * FROM r_tasks WHERE task IN ('a', 'b', 'os');
-- b's failure later changes nothing for os (requires_success is not used).
SELECT tr_finish_task(t_id('b'), 'Failure', 'boom');
SELECT * FROM r_tasks WHERE task IN ('a', 'b', 'os');

-- one_success with every parent failed: Skipped, naming the deciding parent.
SELECT t_create('os2', t_task('c'), t_task('d'), t_rtask('os2', 'one_success', t_deps('c', 'd')),
                t_rtask('os2k', 'all_success', t_deps('os2')),
                t_rtask('os2n', 'none_failed', t_deps('os2')),
                t_task('os2r', t_deps('os2')), t_task('os2s', t_soft_deps('os2')));
SELECT t_start('c', 'd');
SELECT tr_finish_task(t_id('c'), 'Failure', 'boom');
SELECT * FROM r_tasks WHERE task LIKE 'os2%' OR task IN ('c', 'd');
SELECT tr_finish_task(t_id('d'), 'Canceled', NULL);
-- os2 Skipped; its all_success child Skipped too; none_failed counts it as
-- fine (Pending); a requires_success child without a rule fails; a soft
-- child counts it as finished.
SELECT * FROM r_tasks WHERE task LIKE 'os2%' OR task IN ('c', 'd');
-- No action fired for the Skipped tasks (only c's on_failure, d's nothing:
-- it was Running, canceled: its on_cancel; os2r's on_failure).
SELECT * FROM t_deliveries WHERE task LIKE 'os2%' OR task IN ('c', 'd');
SELECT task, event, from_status, to_status, detail FROM t_events WHERE task = 'os2';

-- ---------------------------------------------------------------- one_failed, all_failed, all_done
SELECT t_create('of', t_task('e'), t_task('f'),
                t_rtask('of', 'one_failed', t_deps('e', 'f')),
                t_rtask('af', 'all_failed', t_deps('e', 'f')),
                t_rtask('ad', 'all_done', t_deps('e', 'f')),
                t_rtask('as', 'all_success', t_deps('e', 'f')));
SELECT t_start('e', 'f');
SELECT tr_finish_task(t_id('e'), 'Failure', 'boom');
SELECT * FROM r_tasks WHERE task IN ('e', 'f', 'of', 'af', 'ad', 'as');
SELECT tr_finish_task(t_id('f'), 'Failure', 'boom');
SELECT * FROM r_tasks WHERE task IN ('e', 'f', 'of', 'af', 'ad', 'as');

-- all_failed with a success: Skipped; one_failed with none: Skipped.
SELECT t_create('af2', t_task('g'), t_rtask('af2', 'all_failed', t_deps('g')),
                t_rtask('of2', 'one_failed', t_deps('g')));
SELECT t_start('g');
SELECT tr_finish_task(t_id('g'), 'Success', NULL);
SELECT * FROM r_tasks WHERE task IN ('g', 'af2', 'of2');

-- ---------------------------------------------------------------- paused
-- A Paused child whose rule can no longer be met ends Skipped; one whose
-- rule is met resumes to Pending.
SELECT t_create('pz', t_task('h'), t_rtask('pz1', 'all_success', t_deps('h')),
                t_rtask('pz2', 'one_failed', t_deps('h')));
SELECT code FROM tr_pause_task(t_id('pz1'), 'tester');
SELECT code FROM tr_pause_task(t_id('pz2'), 'tester');
SELECT t_start('h');
SELECT tr_finish_task(t_id('h'), 'Failure', 'boom');
SELECT * FROM r_tasks WHERE task LIKE 'pz%' OR task = 'h';
SELECT code FROM tr_resume_task(t_id('pz2'), 'tester');
SELECT * FROM r_tasks WHERE task = 'pz2';
-- A Skipped task cannot be paused, canceled or updated.
SELECT t_try($$SELECT tr_cancel_task(t_id('pz1'), 'tester')$$);

-- ---------------------------------------------------------------- output
SELECT t_create('out', t_task('o'));
SELECT t_start('o');
SELECT code, body::jsonb -> 'output' AS output FROM tr_patch_task(
    t_id('o'), NULL, 0, 0, false, NULL, NULL, NULL, NULL, 'tester', NULL, NULL,
    true, '{"file": "s3://b/k", "n": 3}');
SELECT code, body::jsonb -> 'output' AS output, body::jsonb ->> 'status' AS status
FROM tr_patch_task(t_id('o'), 'Success', 0, 0, false, NULL, NULL, NULL, NULL, 'tester', NULL,
                   NULL, true, '[1, 2]');
SELECT body::jsonb -> 'trigger_rule' AS rule FROM tr_get_task(t_id('os'));
SELECT detail FROM task_events WHERE task_id = t_id('o') AND event = 'updated' ORDER BY id;

-- retries: a failed attempt retried by the task's policy (tr_fail_attempt),
-- the backoff (tr_retry_delay_ms), the wait and the release
-- (tr_release_due), callbacks of a superseded attempt, and the re-run of an
-- ended task (tr_rerun_task).
\set VERBOSITY terse
SET client_min_messages = warning;

-- ---------------------------------------------------------------- the backoff
-- No jitter: initial_ms * factor^(n-1), capped at max_ms.
SELECT n, tr_retry_delay_ms('{"initial_ms": 1000, "factor": 2, "max_ms": 5000, "jitter": "none"}', n)
FROM generate_series(1, 5) AS n;
-- Equal jitter: between half the delay and the delay; full jitter (the
-- default): between 0 and the delay. 500 draws each.
SELECT min(d) >= 1000 AND max(d) <= 2000 AS equal_in_range, max(d) - min(d) > 500 AS equal_spread
FROM (SELECT tr_retry_delay_ms('{"jitter": "equal"}', 2) AS d FROM generate_series(1, 500)) x;
SELECT min(d) >= 0 AND max(d) <= 4000 AS full_in_range, max(d) - min(d) > 2000 AS full_spread
FROM (SELECT tr_retry_delay_ms(NULL, 3) AS d FROM generate_series(1, 500)) x;
-- A large n stays at the cap.
SELECT tr_retry_delay_ms('{"initial_ms": 1, "factor": 10, "max_ms": 7, "jitter": "none"}', 100) AS capped;

-- ---------------------------------------------------------------- retried attempts
-- r may retry twice (no jitter: 1 s, then 2 s); child requires its success.
SELECT t_create('b', t_task('r') || '{"max_retries": 2, "retry_backoff": {"initial_ms": 1000,
                 "factor": 2, "max_ms": 3000, "jitter": "none"}}',
                t_task('child', t_deps('r')));
SELECT t_start('r');
SELECT code FROM tr_patch_task(t_id('r'), NULL, 3, 0, false, NULL, NULL, NULL, NULL, 'executor');
-- The first failure: back to Pending for its first retry, not startable
-- for 1 s; no failure webhook, the child still waits, counters kept.
SELECT code FROM tr_patch_task(t_id('r'), 'Failure', NULL, NULL, false, NULL, 'flaky', NULL, NULL,
                               'executor');
CREATE TEMP VIEW r_state AS
SELECT local_id AS task, status, attempt, retry_count, max_retries,
       CASE WHEN not_before IS NOT NULL THEN retry_at - last_updated END AS backoff,
       not_before IS NOT NULL AS waiting, success,
       t_named(failure_reason) AS reason
FROM tasks WHERE id IN (t_id('r'), t_id('child')) ORDER BY seq;
SELECT * FROM r_state;
SELECT task, trigger, outcome, state FROM t_deliveries WHERE task = 'r';
SELECT event, from_status, to_status, detail ->> 'reason' AS why,
       detail ->> 'retry_count' AS retry_count, detail ->> 'failure_reason' AS failure_reason
FROM task_events WHERE task_id = t_id('r') AND event IN ('status', 'retry') ORDER BY id;
-- While it waits, no claim takes it.
SELECT count(*) AS claimed FROM tr_claim(1, 10, 60000);
-- A callback of the attempt that failed is refused.
SELECT t_try($$SELECT tr_count_task(t_id('r'), 1, 0, 1, 'executor')$$) AS put_attempt_1;
SELECT t_try($$SELECT tr_patch_task(t_id('r'), 'Success', NULL, NULL, false, NULL, NULL, NULL, 1,
                                    'executor')$$) AS patch_attempt_1;
-- Its time comes (moved by hand): released, then claimed as attempt 2.
UPDATE tasks SET not_before = now() - interval '1 ms' WHERE id = t_id('r');
SELECT tr_release_due(10) AS released;
SELECT t_name(task_id) AS task, task_attempt FROM tr_claim(1, 10, 60000);
SELECT t_try($$SELECT tr_patch_task(t_id('r'), NULL, 1, 0, false, NULL, NULL, NULL, 1,
                                    'executor')$$) AS patch_attempt_1_again;
SELECT t_try($$SELECT tr_patch_task(t_id('r'), NULL, 1, 0, false, NULL, NULL, NULL, 2,
                                    'executor')$$) AS patch_attempt_2;
-- The second attempt times out: its second retry (2 s), reason timeout.
SELECT tr_move_tasks(ARRAY[t_id('r')], 'Running') IS NOT NULL AS running;
UPDATE tasks SET deadline_at = now() - interval '1 ms' WHERE id = t_id('r');
SELECT tr_expire_tasks(10) AS expired;
SELECT * FROM r_state;
-- The third attempt fails with no retry left: Failure for good, on_failure
-- queued, the child fails by the cascade.
UPDATE tasks SET not_before = now() - interval '1 ms' WHERE id = t_id('r');
SELECT tr_release_due(10) AS released;
SELECT t_name(task_id) AS task, task_attempt FROM tr_claim(1, 10, 60000);
SELECT code FROM tr_patch_task(t_id('r'), 'Failure', NULL, NULL, false, NULL, 'still flaky',
                               NULL, 3, 'executor');
SELECT * FROM r_state;
SELECT task, trigger, outcome, state FROM t_deliveries WHERE task = 'r' AND trigger = 'End';

-- "retryable": false ends the task at once, retries left or not.
SELECT t_create('b2', t_task('final') || '{"max_retries": 5}');
SELECT t_start('final');
SELECT code FROM tr_patch_task(t_id('final'), 'Failure', NULL, NULL, false, NULL, 'bad input',
                               false, NULL, 'executor');
SELECT local_id, status, retry_count FROM tasks WHERE id = t_id('final');
-- An on_start call that finally fails is a failed attempt too.
SELECT t_create('b3', t_task('s') || '{"max_retries": 1}');
SELECT t_name(task_id) AS task, task_attempt FROM tr_claim(1, 10, 60000);
SELECT tr_record_outcomes(jsonb_build_array(jsonb_build_object(
           'id', (SELECT id FROM deliveries WHERE task_id = t_id('s')), 'ok', false,
           'http', 503, 'ms', 5, 'error', 'HTTP 503')));
SELECT local_id, status, retry_count, t_named(failure_reason) AS reason
FROM tasks WHERE id = t_id('s');

-- ---------------------------------------------------------------- re-run
-- Only an ended task can be re-run; a child whose required parent failed
-- cannot run again alone.
SELECT t_try($$SELECT tr_rerun_task(t_id('s'), false, 'operator')$$) AS rerun_pending;
SELECT t_named(t_try($$SELECT tr_rerun_task(t_id('child'), false, 'operator')$$)) AS rerun_child;
-- r with downstream: r is Pending again (retry_count kept), its child is
-- re-armed (Waiting for r).
SELECT code, t_named(body::jsonb ->> 'rearmed') AS rearmed, body::jsonb ->> 'status' AS status,
       body::jsonb ->> 'retry_count' AS retry_count
FROM tr_rerun_task(t_id('r'), true, 'operator');
SELECT * FROM r_state;
SELECT event, actor, from_status, to_status FROM task_events
WHERE task_id IN (t_id('r'), t_id('child')) AND event IN ('rerun', 'status')
  AND id > (SELECT max(id) - 3 FROM task_events)
ORDER BY id;

-- ---------------------------------------------------------------- counted
SELECT name, labels, n FROM t_counters WHERE name = 'taskrunner_task_retries_total';
-- Attempts per ended task, as counted, and as the scrape serves them (the
-- histogram taskrunner_task_attempts): r ended after 3, final after 1, the
-- child (failed by the cascade) after 0; s has not ended.
SELECT name, labels, n FROM t_counters WHERE name = 'taskrunner_task_attempts_observed';
SELECT name, labels, value FROM tr_metrics_scrape(50, 100) WHERE name LIKE 'taskrunner_task_attempts%';

-- claim: how the worker takes tasks (tr_claim), records the outcomes of its
-- webhook calls (tr_record_outcomes), takes queued calls
-- (tr_take_deliveries), times tasks out (tr_expire_tasks) and takes back the
-- calls of a dead worker (tr_recover_deliveries). A test moves time along
-- by setting a delivery's next_at, a task's not_before or deadline_at: the
-- columns that say when, never a status.
\set VERBOSITY terse
SET client_min_messages = warning;

-- The calls a claim or a take returned, as the worker gets them.
CREATE TEMP TABLE calls (n serial, delivery_id bigint, task text, trigger text, outcome text,
                         url text, attempts integer, task_attempt integer, idem_key text,
                         batch_ok boolean);
CREATE FUNCTION pg_temp.keep(c tr_call) RETURNS text
LANGUAGE sql AS $$
    INSERT INTO calls (delivery_id, task, trigger, outcome, url, attempts, task_attempt,
                       idem_key, batch_ok)
    SELECT c.delivery_id, t_name(c.task_id), c.trigger, c.outcome, c.params ->> 'url',
           c.attempts, c.task_attempt, t_named(c.idem_key),
           c.batch_id = (SELECT batch_id FROM tasks WHERE id = c.task_id)
    RETURNING task
$$;
-- The outcome of the last call kept for a task, as the worker reports it.
CREATE FUNCTION pg_temp.outcome(p_task text, p_fields jsonb) RETURNS jsonb
LANGUAGE sql AS $$
    SELECT jsonb_build_object('id', (SELECT delivery_id FROM calls WHERE task = p_task
                                     ORDER BY n DESC LIMIT 1), 'ms', 7) || p_fields
$$;

-- ---------------------------------------------------------------- claim order
-- Highest priority first, then creation order; at most p_limit.
SELECT t_create('order', t_task('c1'), t_task('c2', priority => 5), t_task('c3'),
                t_task('c4', priority => 10), t_task('c5', priority => 5),
                t_task('c6', priority => -1));
SELECT pg_temp.keep(c) AS claimed FROM tr_claim(1, 3, 60000) AS c;
SELECT pg_temp.keep(c) AS claimed FROM tr_claim(1, 10, 60000) AS c;
SELECT task, trigger, url, attempts, task_attempt, idem_key, batch_ok FROM calls ORDER BY n;
-- Each claimed task is Claimed (attempt 1); its start call is a delivery
-- already inflight for the claiming worker, under a lease.
SELECT * FROM t_tasks;
SELECT t_name(task_id) AS task, trigger, state, owner, attempts, attempt,
       lease_until > now() AS leased
FROM deliveries ORDER BY id;
SELECT count(*) AS claimed FROM tr_claim(1, 10, 60000);

-- A start time in the future holds a task back; a past one does not.
SELECT t_create('later', t_task('nb1'), t_task('nb2'));
UPDATE tasks SET not_before = now() + interval '1 hour' WHERE id = t_id('nb1');
UPDATE tasks SET not_before = now() - interval '1 second' WHERE id = t_id('nb2');
SELECT pg_temp.keep(c) AS claimed FROM tr_claim(1, 10, 60000) AS c;
SELECT jsonb_path_query(body::jsonb, '$.blockers[*].type') AS nb1_blocker
FROM tr_task_blockers(t_id('nb1'));

-- ---------------------------------------------------------------- outcomes of start calls
-- 2xx: the task is Running, the delivery done, the attempt an event.
SELECT tr_record_outcomes(jsonb_build_array(pg_temp.outcome('c4', '{"ok": true, "http": 200}')));
SELECT * FROM t_tasks WHERE task = 'c4';
SELECT * FROM t_deliveries WHERE task = 'c4';
SELECT task, event, actor, from_status, to_status, detail::jsonb - 'url' - 'delivery_id' AS detail
FROM t_events WHERE task = 'c4' AND event = 'webhook';

-- A failure with retry_ms: the call is queued again for later, the task
-- stays Claimed, and its blockers say it waits for the retry.
SELECT tr_record_outcomes(jsonb_build_array(
    pg_temp.outcome('c2', '{"ok": false, "http": 500, "error": "HTTP 500", "retry_ms": 60000}')));
SELECT * FROM t_tasks WHERE task = 'c2';
SELECT task, trigger, state, attempts FROM t_deliveries WHERE task = 'c2';
SELECT (SELECT next_at > now() + interval '50 s' FROM deliveries WHERE task_id = t_id('c2'))
           AS retry_later,
       (SELECT last_error FROM deliveries WHERE task_id = t_id('c2')) AS last_error;
SELECT jsonb_path_query(body::jsonb, '$.blockers[*].type') AS c2_blocker
FROM tr_task_blockers(t_id('c2'));
-- Not due yet: nothing to take. Once due, it is taken again (attempt 2,
-- same idempotency key).
SELECT count(*) AS taken FROM tr_take_deliveries(1, 10, 60000);
UPDATE deliveries SET next_at = now() WHERE task_id = t_id('c2') AND state = 'queued';
SELECT pg_temp.keep(c) AS taken FROM tr_take_deliveries(1, 10, 60000) AS c;
SELECT task, trigger, attempts, task_attempt, idem_key FROM calls WHERE task = 'c2' ORDER BY n;

-- The last attempt fails too (no retry_ms): the delivery has failed, the
-- task fails with the reason, its on_failure call is queued.
SELECT tr_record_outcomes(jsonb_build_array(
    pg_temp.outcome('c2', '{"ok": false, "http": 503, "error": "HTTP 503"}')));
SELECT * FROM t_tasks WHERE task = 'c2';
SELECT * FROM t_deliveries WHERE task = 'c2';
SELECT detail::jsonb ->> 'outcome' AS outcome, detail::jsonb -> 'attempt' AS attempt
FROM t_events WHERE task = 'c2' AND event = 'webhook';

-- A start call that fails while its task was canceled meanwhile is dropped,
-- not retried.
SELECT code FROM tr_cancel_task(t_id('c5'), 'tester');
SELECT tr_record_outcomes(jsonb_build_array(
    pg_temp.outcome('c5', '{"ok": false, "http": 0, "error": "connection refused", "retry_ms": 1000}')));
SELECT * FROM t_deliveries WHERE task = 'c5';
SELECT detail::jsonb ->> 'outcome' AS outcome FROM t_events WHERE task = 'c5' AND event = 'webhook';

-- A 2xx whose answer is an action registers it as a cancel action; here the
-- task is canceled later, and both its cancel actions are called.
SELECT tr_record_outcomes(jsonb_build_array(pg_temp.outcome('c1', jsonb_build_object(
    'ok', true, 'http', 200, 'cancel_action', jsonb_build_object(
        'id', t_id('c1/registered'), 'kind', 'Webhook',
        'params', '{"url": "http://127.0.0.1:9/c1/registered", "verb": "Delete"}'::jsonb)))));
SELECT * FROM t_tasks WHERE task = 'c1';
SELECT trigger, position, tr_action_own_params(actions) ->> 'url' AS url FROM actions
WHERE task_id = t_id('c1') AND trigger = 'Cancel' ORDER BY position;
SELECT code FROM tr_cancel_task(t_id('c1'), 'tester');
SELECT task, action, trigger, outcome, state FROM t_deliveries WHERE task = 'c1';

-- ---------------------------------------------------------------- outcomes of end calls
-- c3 starts and succeeds; its on_success call is taken and fails for good:
-- a dead letter, counted in taskrunner_dead_letters_total.
SELECT tr_record_outcomes(jsonb_build_array(pg_temp.outcome('c3', '{"ok": true, "http": 204}')));
SELECT code FROM tr_patch_task(t_id('c3'), 'Success', 1, 0, false, NULL, NULL, NULL, NULL, 'executor');
SELECT pg_temp.keep(c) AS taken FROM tr_take_deliveries(1, 10, 60000) AS c;
SELECT task, trigger, outcome, attempts, idem_key FROM calls WHERE task = 'c3' ORDER BY n;
SELECT tr_record_outcomes(jsonb_build_array(
    pg_temp.outcome('c3', '{"ok": false, "http": 404, "error": "HTTP 404"}')));
SELECT * FROM t_deliveries WHERE task = 'c3';
SELECT * FROM t_tasks WHERE task = 'c3';
SELECT labels, n FROM t_counters WHERE name = 'taskrunner_dead_letters_total';
SELECT code, t_named(body::jsonb -> 0 ->> 'task_id') AS task, body::jsonb -> 0 ->> 'trigger' AS trigger,
       body::jsonb -> 0 -> 'attempts' AS attempts, body::jsonb -> 0 ->> 'last_error' AS last_error
FROM tr_dead_letters(10, 0);

-- ---------------------------------------------------------------- heartbeat timeouts
-- c4 (Running) is past its deadline, c6 not: tr_expire_tasks fails c4 with
-- "Timeout" and queues its on_failure and on_cancel calls.
SELECT tr_record_outcomes(jsonb_build_array(pg_temp.outcome('c6', '{"ok": true, "http": 200}')));
UPDATE tasks SET deadline_at = now() - interval '1 second' WHERE id = t_id('c4');
SELECT tr_expire_tasks(100) AS expired;
SELECT * FROM t_tasks WHERE task IN ('c4', 'c6');
SELECT task, trigger, outcome, state FROM t_deliveries WHERE task = 'c4';
SELECT tr_expire_tasks(100) AS expired;

-- ---------------------------------------------------------------- a dead worker's calls
-- Worker 2 holds its owner lock, as a live worker does, and claims w1 and
-- w2. Worker 1 holds none (it died): tr_recover_deliveries queues its calls
-- again, except nb2's start call, whose task was canceled meanwhile (done,
-- not made again).
SELECT task, trigger, state, attempts FROM t_deliveries WHERE state = 'inflight';
SELECT pg_advisory_lock(tr_worker_lock_class(), 2);
SELECT t_create('crash', t_task('w1'), t_task('w2'));
SELECT pg_temp.keep(c) AS claimed FROM tr_claim(2, 10, 60000) AS c;
SELECT code FROM tr_cancel_task(t_id('nb2'), 'tester');
SELECT tr_recover_deliveries() AS requeued;
SELECT task, trigger, state, attempts FROM t_deliveries
WHERE task IN ('nb2', 'c6', 'w1', 'w2') OR state IN ('inflight', 'queued');
-- Worker 2's lock goes away: its calls come back too.
SELECT pg_advisory_unlock(tr_worker_lock_class(), 2);
SELECT tr_recover_deliveries() AS requeued;
SELECT task, trigger, state FROM t_deliveries WHERE task IN ('w1', 'w2');

-- batches: the list of batches (tr_list_batches: newest first, counts by
-- status, kinds, each filter, paging), a batch's DAG (tr_batch_dag), and a
-- PATCH of priority or expected_count (tr_patch_task): allowed before the
-- start only, audited, refused after.
\set VERBOSITY terse
SET client_min_messages = warning;

-- Three batches, created one after the other.
SELECT t_create('b1', t_task('a1', kind => 'ingest'), t_task('a2', kind => 'report', deps => t_deps('a1')));
UPDATE batches SET created_at = '2026-01-01T00:00:00Z' WHERE id = t_id('b1');
SELECT t_create('b2', t_task('c1', kind => 'ingest'), t_task('c2', kind => 'ingest', deps => t_soft_deps('c1')),
                t_task('c3', kind => 'ingest', deps => t_deps('c1', 'c2')));
UPDATE batches SET created_at = '2026-01-02T00:00:00Z', requester = 'other' WHERE id = t_id('b2');
SELECT t_create('b3', t_task('d1', kind => 'export', timeout => 90));
UPDATE batches SET created_at = '2026-01-03T00:00:00Z' WHERE id = t_id('b3');
SELECT t_start('a1');
SELECT t_put('Failure', 'c1');

-- The summary of each batch, newest first.
CREATE FUNCTION t_batches(p_requester text DEFAULT NULL, p_kind text DEFAULT NULL,
                          p_status task_status DEFAULT NULL, p_name text DEFAULT NULL,
                          p_after timestamptz DEFAULT NULL, p_before timestamptz DEFAULT NULL,
                          p_limit bigint DEFAULT 50, p_offset bigint DEFAULT 0)
RETURNS TABLE (batch text, total bigint, counts text, kinds text, requester text)
LANGUAGE sql AS $$
    SELECT t_named(b ->> 'batch_id'), (b ->> 'total_tasks')::bigint,
           (SELECT string_agg(k || '=' || v, ' ' ORDER BY k)
            FROM jsonb_each_text(b -> 'status_counts') AS s (k, v) WHERE v <> '0'),
           (b -> 'kinds')::text, b ->> 'requester'
    FROM tr_list_batches(p_requester, p_kind, p_status, p_name, p_after, p_before,
                         NULL, NULL, NULL, p_limit, p_offset) r,
         jsonb_array_elements(r.body::jsonb) AS b
$$;
SELECT * FROM t_batches();
-- Every field the original's client reads is there, and this service's.
SELECT string_agg(k, ' ' ORDER BY k) AS fields
FROM tr_list_batches(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 1, 0) r,
     jsonb_object_keys((r.body::jsonb) -> 0) AS k;
SELECT * FROM t_batches(p_requester => 'other');
SELECT * FROM t_batches(p_kind => 'ingest');
SELECT * FROM t_batches(p_status => 'Running');
SELECT * FROM t_batches(p_name => 'd');
SELECT * FROM t_batches(p_after => '2026-01-02T00:00:00Z');
SELECT * FROM t_batches(p_before => '2026-01-02T00:00:00Z');
SELECT * FROM t_batches(p_limit => 1, p_offset => 1);
SELECT * FROM t_batches(p_kind => 'nothing');

-- The DAG of b2: its tasks with their local ids, its links.
SELECT t_named(t ->> 'id') AS task, t ->> 'local_id' AS local_id, t ->> 'status' AS status
FROM tr_batch_dag(t_id('b2')) r, jsonb_array_elements(r.body::jsonb -> 'tasks') AS t;
SELECT t_named(l ->> 'parent_id') AS parent, t_named(l ->> 'child_id') AS child,
       l ->> 'requires_success' AS requires_success
FROM tr_batch_dag(t_id('b2')) r, jsonb_array_elements(r.body::jsonb -> 'links') AS l;
SELECT t_try(format('SELECT tr_batch_dag(%L)', t_id('nope')));

-- PATCH priority: a task not yet started (a2 Waiting, d1 Pending) changes,
-- with its event; a started one (a1) is refused and keeps its priority.
SELECT code, body::jsonb -> 'priority' AS priority, body::jsonb -> 'expected_count' AS expected
FROM tr_patch_task(t_id('a2'), NULL, 0, 0, false, NULL, NULL, NULL, NULL, 'tester', 700, 12);
SELECT code, body::jsonb -> 'priority' AS priority
FROM tr_patch_task(t_id('d1'), NULL, 0, 0, false, NULL, NULL, NULL, NULL, 'tester', -5);
SELECT t_try(format('SELECT tr_patch_task(%L, NULL, 0, 0, false, NULL, NULL, NULL, NULL, %L, 9)',
                    t_id('a1'), 'tester'));
SELECT local_id, priority, expected_count FROM tasks WHERE local_id IN ('a1', 'a2', 'd1') ORDER BY seq;
-- expected_count alone: any task that has not ended; a started one gets its heartbeat.
SELECT code, body::jsonb -> 'expected_count' AS expected
FROM tr_patch_task(t_id('a1'), NULL, 0, 0, false, NULL, NULL, NULL, NULL, 'tester', NULL, 40);
SELECT t_try(format('SELECT tr_patch_task(%L, NULL, 0, 0, false, NULL, NULL, NULL, NULL, %L, NULL, 1)',
                    t_id('c1'), 'tester'));
SELECT * FROM t_events WHERE event = 'updated';

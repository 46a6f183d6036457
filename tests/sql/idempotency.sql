-- idempotency: creating a batch (tr_create_batch) with an Idempotency-Key,
-- and dedupe strategies. A key belongs to a requester: the same key again
-- returns the first answer (code, batch id, body) and creates nothing. A
-- task whose dedupe strategy matches an existing task (same kind, the
-- strategy's status, equal values of its fields) is skipped, and a
-- dependency on it links to that existing task.
\set VERBOSITY terse
SET client_min_messages = warning;

-- Each creation below: its name, the batch id it was given (batch "<name>":
-- t_id('batch <name>'); the responder makes a new one for every request,
-- retries included), and its answer: code, batch (by name), the local ids of
-- the tasks in the body.
CREATE TEMP TABLE batch_names (id uuid PRIMARY KEY, name text);
CREATE TEMP TABLE answers (name text PRIMARY KEY, code integer, batch_id uuid, body jsonb);
-- p_body names the request's body: the responder passes its SHA-256 with
-- the key, and a key reused with another body is refused (TRIK0, 422).
CREATE FUNCTION pg_temp.create(p_name text, p_requester text, p_key text, p_body text,
                               VARIADIC p_tasks jsonb[])
RETURNS TABLE (code integer, batch text, tasks text)
LANGUAGE sql AS $$
    INSERT INTO batch_names VALUES (t_id('batch ' || p_name), p_name);
    INSERT INTO answers
    SELECT p_name, c.code, c.batch_id, c.body::jsonb
    FROM tr_create_batch(t_id('batch ' || p_name), p_requester, p_key,
                         md5(p_body), to_jsonb(p_tasks), p_requester) c;
    SELECT a.code, (SELECT n.name FROM batch_names n WHERE n.id = a.batch_id),
           (SELECT string_agg(e ->> 'local_id', ', ' ORDER BY i)
            FROM jsonb_array_elements(a.body) WITH ORDINALITY AS x (e, i))
    FROM answers a WHERE a.name = p_name;
$$;
CREATE TEMP VIEW stored AS
SELECT (SELECT count(*) FROM batches) AS batches, (SELECT count(*) FROM tasks) AS tasks,
       (SELECT count(*) FROM idempotency_keys) AS keys;

-- ---------------------------------------------------------------- Idempotency-Key
SELECT * FROM pg_temp.create('first', 'billing', 'nightly-1', 'body 1', t_task('a1'), t_task('a2', t_deps('a1')));
SELECT * FROM stored;
-- The retry (same requester and key; new batch and task ids, as the
-- responder makes them): the first answer, nothing created.
SELECT * FROM pg_temp.create('retry', 'billing', 'nightly-1', 'body 1', t_task('a1 again'), t_task('a2 again'));
SELECT (SELECT body FROM answers WHERE name = 'first') = (SELECT body FROM answers WHERE name = 'retry')
           AS same_body;
SELECT * FROM stored;
-- The same key with another body: refused, nothing created.
SELECT t_try($$SELECT * FROM pg_temp.create('misuse', 'billing', 'nightly-1', 'another body',
                                            t_task('m1'))$$) AS misuse;
SELECT * FROM stored;
SELECT b.name AS batch, k.requester, k.key, k.status_code
FROM idempotency_keys k JOIN batch_names b ON b.id = k.batch_id ORDER BY k.requester, k.key;
-- The same key from another requester is another key.
SELECT * FROM pg_temp.create('other requester', 'shipping', 'nightly-1', 'body s1', t_task('s1'));
-- Without a key, every request creates.
SELECT * FROM pg_temp.create('no key 1', 'billing', NULL, NULL, t_task('n1'));
SELECT * FROM pg_temp.create('no key 2', 'billing', NULL, NULL, t_task('n2'));
SELECT * FROM stored;
-- A creation that fails stores nothing, its key neither: the retry creates.
SELECT * FROM pg_temp.create('broken', 'billing', 'nightly-2', 'body x1', t_task('x1', kind => NULL));
SELECT * FROM stored;
SELECT * FROM pg_temp.create('fixed', 'billing', 'nightly-2', 'body x1', t_task('x1'));
SELECT * FROM stored;

-- ---------------------------------------------------------------- dedupe
-- Existing tasks: e1 and e2 (kind "ingest", Pending), e3 (Success), e4
-- (Failure).
SELECT * FROM pg_temp.create('existing', 'billing', NULL, NULL,
    t_task('e1', kind => 'ingest', metadata => '{"tenant": 1, "tags": ["a", "b"]}'),
    t_task('e2', kind => 'ingest', metadata => '{"tenant": 2}'),
    t_task('e3', kind => 'report', metadata => '{"tenant": 1}'),
    t_task('e4', kind => 'export', metadata => '{"tenant": 1}'));
SELECT t_put('Success', 'e3');
SELECT t_put('Failure', 'e4');

-- d1 has e1's kind, status and tenant: skipped, and d2's dependency on it
-- links to e1 (d2 waits for e1). d3 (tenant 3) has no twin: created.
SELECT * FROM pg_temp.create('dedupe', 'billing', NULL, NULL,
    t_task('d1', kind => 'ingest', metadata => '{"tenant": 1, "day": "mon"}',
           dedupe => jsonb_build_array(t_dedupe('ingest', 'Pending', '["tenant"]'))),
    t_task('d2', t_deps('d1')),
    t_task('d3', kind => 'ingest', metadata => '{"tenant": 3}',
           dedupe => jsonb_build_array(t_dedupe('ingest', 'Pending', '["tenant"]'))));
SELECT t_name(parent_id) AS parent, t_name(child_id) AS child, requires_success
FROM task_links WHERE child_id = t_id('d2');
SELECT * FROM t_tasks WHERE task ~ '^d';
SELECT count(*) AS d1_stored FROM tasks WHERE id = t_id('d1');

-- What does not match: another status, another kind, another value, a
-- value that is only contained in the existing one. The second strategy of
-- f5 matches (e2): skipped.
SELECT * FROM pg_temp.create('no twins', 'billing', NULL, NULL,
    t_task('f1', kind => 'ingest', metadata => '{"tenant": 1}',
           dedupe => jsonb_build_array(t_dedupe('ingest', 'Running', '["tenant"]'))),
    t_task('f2', kind => 'ingest', metadata => '{"tenant": 1}',
           dedupe => jsonb_build_array(t_dedupe('report', 'Pending', '["tenant"]'))),
    t_task('f3', kind => 'ingest', metadata => '{"tenant": "1"}',
           dedupe => jsonb_build_array(t_dedupe('ingest', 'Pending', '["tenant"]'))),
    t_task('f4', kind => 'ingest', metadata => '{"tags": ["a"]}',
           dedupe => jsonb_build_array(t_dedupe('ingest', 'Pending', '["tags"]'))),
    t_task('f5', kind => 'ingest', metadata => '{"tenant": 2}',
           dedupe => jsonb_build_array(t_dedupe('ingest', 'Running', '["tenant"]'),
                                       t_dedupe('ingest', 'Pending', '["tenant"]'))));

-- Twins of ended tasks: a dependency on e3's twin (Success) is met at once;
-- on e4's twin (Failure), a child requiring it fails, one that does not is
-- Pending.
SELECT * FROM pg_temp.create('ended twins', 'billing', NULL, NULL,
    t_task('g1', kind => 'report', metadata => '{"tenant": 1}',
           dedupe => jsonb_build_array(t_dedupe('report', 'Success', '["tenant"]'))),
    t_task('g2', t_deps('g1')),
    t_task('g3', kind => 'export', metadata => '{"tenant": 1}',
           dedupe => jsonb_build_array(t_dedupe('export', 'Failure', '["tenant"]'))),
    t_task('g4', t_deps('g3')),
    t_task('g5', t_soft_deps('g3')));
SELECT t_name(parent_id) AS parent, t_name(child_id) AS child, requires_success
FROM task_links WHERE child_id IN (t_id('g2'), t_id('g4'), t_id('g5')) ORDER BY 2;
SELECT * FROM t_tasks WHERE task ~ '^g';

-- Every task skipped: 204 and an empty body; with a key, a retry gets the
-- same 204.
SELECT * FROM pg_temp.create('all skipped', 'billing', 'nightly-3', 'body 3',
    t_task('h1', kind => 'ingest', metadata => '{"tenant": 2}',
           dedupe => jsonb_build_array(t_dedupe('ingest', 'Pending', '["tenant"]'))));
SELECT body FROM answers WHERE name = 'all skipped';
SELECT * FROM pg_temp.create('all skipped again', 'billing', 'nightly-3', 'body 3',
    t_task('h1 again', kind => 'ingest', metadata => '{"tenant": 2}',
           dedupe => jsonb_build_array(t_dedupe('ingest', 'Pending', '["tenant"]'))));
SELECT count(*) AS batches FROM batches WHERE id = t_id('batch all skipped again');

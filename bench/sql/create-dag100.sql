WITH b AS (
    INSERT INTO batches (id, requester) VALUES (gen_random_uuid(), 'bench-ceiling') RETURNING id
), t AS (
    INSERT INTO tasks (id, batch_id, local_id, name, kind, status, priority, timeout,
                       metadata, rules, open_parents)
    SELECT gen_random_uuid(), b.id, 't' || g, 'ceiling ' || g, 'bench-ceiling',
           CASE WHEN g = 1 THEN 'Pending'::task_status ELSE 'Waiting'::task_status END, 0, 86400, NULL, '[]',
           CASE WHEN g = 1 THEN 0 ELSE 1 END
    FROM b, generate_series(1, 100) AS g RETURNING id, local_id
), a AS (
    INSERT INTO actions (id, task_id, kind, trigger, condition, params, position)
    SELECT gen_random_uuid(), t.id, 'Webhook', 'Start', NULL,
           '{"url": "http://127.0.0.1:1/ceiling", "verb": "Post"}', 1
    FROM t RETURNING id
), l AS (
    INSERT INTO task_links (parent_id, child_id, requires_success)
    SELECT p.id, c.id, true
    FROM t c JOIN t p ON p.local_id = 't' || (substr(c.local_id, 2)::integer / 2)
    WHERE c.local_id <> 't1'
    RETURNING 1
)
SELECT pg_notify('taskrunner', 'work') WHERE (SELECT count(*) FROM a) > 0;

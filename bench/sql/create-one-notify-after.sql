WITH b AS (
    INSERT INTO batches (id, requester) VALUES (gen_random_uuid(), 'bench-ceiling') RETURNING id
), t AS (
    INSERT INTO tasks (id, batch_id, local_id, name, kind, status, priority, timeout,
                       metadata, rules, open_parents)
    SELECT gen_random_uuid(), b.id, 't', 'ceiling', 'bench-ceiling', 'Pending', 0, 86400,
           NULL, '[]', 0
    FROM b RETURNING id
), a AS (
    INSERT INTO actions (id, task_id, kind, trigger, condition, params, position)
    SELECT gen_random_uuid(), t.id, 'Webhook', 'Start', NULL,
           '{"url": "http://127.0.0.1:1/ceiling", "verb": "Post"}', 1
    FROM t RETURNING id
)
SELECT count(*) FROM a;
SELECT pg_notify('taskrunner', 'work');

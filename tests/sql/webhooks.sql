-- webhooks: the SQL side of webhooks v2 (API.md, "Webhooks v2 (F8)"):
-- conditions on JSON values (tr_cond_holds), an action's "when" decided in
-- tr_finish_task when its task ends (action_not_fired in the history), the
-- context of a call's placeholders (tr_call_context: only for params with
-- "{{", parents only for "{{parents."), and a call's lease.
\set VERBOSITY terse
SET client_min_messages = warning;

-- ---------------------------------------------------------------- conditions
SELECT c, tr_cond_holds('{"n": 1, "s": "x", "o": {"a": [1, 2]}, "z": null}', c::jsonb) AS holds
FROM (VALUES ('{"path": "n", "equals": 1}'), ('{"path": "n", "equals": 1.0}'),
             ('{"path": "s", "equals": "y"}'), ('{"path": "o.a.1", "in": [5, 2]}'),
             ('{"path": "o.a.9", "in": [5, 2]}'), ('{"path": "o", "equals": {"a": [1, 2]}}'),
             ('{"path": "z", "exists": false}'), ('{"path": "z", "equals": null}'),
             ('{"path": "nope", "exists": false}'), ('{"path": "s", "exists": true}')) AS x (c);
SELECT tr_when_holds(NULL, NULL, NULL) AS no_when,
       tr_when_holds('{"output": {"path": "rows", "equals": 5}}', '{"rows": 5}', NULL) AS output,
       tr_when_holds('{"metadata": {"path": "env", "equals": "prod"}}', NULL, '{"env": "dev"}') AS metadata;

-- ---------------------------------------------------------------- when, at the end
-- a: on_success fires only when output.rows is 5 (its condition is stored
-- with the action, fire_when).
SELECT t_create('w', jsonb_set(t_task('a', metadata => '{"env": "prod"}'), '{actions,1,when}',
                               '{"output": {"path": "rows", "equals": 5}}'),
                jsonb_set(t_task('b', metadata => '{"env": "dev"}'), '{actions,2,when}',
                          '{"metadata": {"path": "env", "equals": "prod"}}'));
SELECT t_named(a.id::text) AS action, a.fire_when FROM actions a WHERE a.fire_when IS NOT NULL;
SELECT t_start('a', 'b');
UPDATE tasks SET output = '{"rows": 4}' WHERE id = t_id('a');
SELECT tr_finish_task(t_id('a'), 'Success', NULL);
SELECT tr_finish_task(t_id('b'), 'Failure', 'boom');
-- Neither fired; each is in its task's history.
SELECT * FROM t_deliveries WHERE task IN ('a', 'b');
SELECT task, event, from_status, to_status, t_named(detail::text) AS detail
FROM t_events WHERE event = 'action_not_fired';
-- And with the condition met, it fires.
SELECT t_create('w2', jsonb_set(t_task('c'), '{actions,1,when}',
                                '{"output": {"path": "rows", "in": [5, 6]}}'));
SELECT t_start('c');
UPDATE tasks SET output = '{"rows": 6}' WHERE id = t_id('c');
SELECT tr_finish_task(t_id('c'), 'Success', NULL);
SELECT * FROM t_deliveries WHERE task = 'c';

-- ---------------------------------------------------------------- the context of placeholders
SELECT tr_call_context(t_id('c'), '{"url": "http://x/", "body": {"a": "plain"}}') AS none;
SELECT t_named(tr_call_context(t_id('c'), '{"url": "http://x/{{task.id}}"}')::text) AS own;
SELECT t_create('p', t_task('p1'), t_task('p2', t_deps('p1')));
UPDATE tasks SET output = '{"file": "f.csv"}' WHERE id = t_id('p1');
SELECT t_named(tr_call_context(t_id('p2'), '{"body": "{{parents.p1.output.file}}"}')::text)
    AS with_parents;
-- task.group: the task's group (null while it has none).
SELECT tr_call_context(t_id('p2'), '{"body": "{{task.group}}"}') -> 'task' ? 'group' AS has_group;

-- ---------------------------------------------------------------- the lease
SELECT tr_call_lease(40000, '{}') AS default_lease,
       tr_call_lease(40000, '{"timeout_ms": 300000}') AS long_call;

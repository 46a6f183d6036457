-- rules: concurrency rules. tr_rule_count counts the tasks that take a place
-- under a rule (same kind, the matcher's status with Claimed counting as
-- Running, equal values of the key's fields); tr_claim starts a task only
-- while every one of its rules has room, and counts the tasks it passed over
-- in taskrunner_tasks_blocked_by_rule_total.
\set VERBOSITY terse
SET client_min_messages = warning;

-- ---------------------------------------------------------------- counting
-- Tasks of kind "ingest" with various metadata, in various statuses.
SELECT t_create('count',
    t_task('k1', kind => 'ingest', metadata => '{"tenant": 1, "zone": "a"}'),
    t_task('k2', kind => 'ingest', metadata => '{"tenant": 1, "zone": "b"}'),
    t_task('k3', kind => 'ingest', metadata => '{"tenant": 2}'),
    t_task('k4', kind => 'ingest', metadata => '{"tenant": 1}'),
    t_task('k5', kind => 'ingest', metadata => '{"tenant": 1}'),
    t_task('k6', kind => 'ingest', metadata => '{"tenant": "1"}'),
    t_task('k7', kind => 'ingest', metadata => NULL),
    t_task('k8', kind => 'report', metadata => '{"tenant": 1}'),
    t_task('k9', kind => 'ingest', metadata => '{"tags": ["x", "y"], "cfg": {"a": 1, "b": 2}}'),
    t_task('k10', kind => 'ingest', metadata => '{"tags": ["x"], "cfg": {"a": 1}}'),
    t_task('k11', kind => 'ingest', metadata => '{"tenant": null}'));
SELECT t_put('Running', 'k1', 'k3', 'k6', 'k7', 'k8', 'k9', 'k10', 'k11');
SELECT t_put('Claimed', 'k2');
SELECT t_put('Success', 'k4');
SELECT local_id AS task, kind, status, metadata FROM tasks ORDER BY seq;

SELECT key, status, tr_rule_count('ingest', status, key::jsonb) AS count
FROM (VALUES
    -- every ingest task Running or Claimed: k1, k2 (Claimed), k3, k6, k7, k9, k10, k11
    ('{}', 'Running'),
    -- tenant 1 (the number): k1 and k2; not k6 (the string "1"), k4 (ended), k8 (report)
    ('{"tenant": 1}', 'Running'),
    ('{"tenant": "1"}', 'Running'),
    ('{"tenant": 1, "zone": "a"}', 'Running'),
    ('{"tenant": 2}', 'Running'),
    ('{"tenant": 3}', 'Running'),
    -- the matcher's status: Pending (k5), Success (k4), Claimed alone (k2)
    ('{"tenant": 1}', 'Pending'),
    ('{"tenant": 1}', 'Success'),
    ('{"tenant": 1}', 'Claimed'),
    -- equal values, not containment: ["x"] is not ["x", "y"], {"a": 1} not {"a": 1, "b": 2}
    ('{"tags": ["x"]}', 'Running'),
    ('{"tags": ["x", "y"]}', 'Running'),
    ('{"cfg": {"a": 1}}', 'Running'),
    -- a null value matches a field that is null (k11), not a missing one (k7)
    ('{"tenant": null}', 'Running')) AS v (key, status);

-- The key of a task for a rule: its values of the rule's fields.
SELECT tr_matcher_key('{"tenant": 1, "zone": "a", "n": 5}', '["tenant", "zone"]') AS key,
       tr_matcher_key('{"tenant": 1}', '[]') AS no_fields,
       tr_matcher_key('{"tenant": 1}', '["zone"]') AS missing_field;

-- ---------------------------------------------------------------- claiming under rules
-- Five "load" tasks of tenant 1 and two of tenant 2, at most 2 running per
-- tenant; one task without rules (tenant 3).
SELECT t_create('claim',
    t_task('a1', kind => 'load', metadata => '{"tenant": 1}',
           rules => jsonb_build_array(t_rule('load', 2, '["tenant"]'))),
    t_task('a2', kind => 'load', metadata => '{"tenant": 1}',
           rules => jsonb_build_array(t_rule('load', 2, '["tenant"]'))),
    t_task('a3', kind => 'load', metadata => '{"tenant": 1}',
           rules => jsonb_build_array(t_rule('load', 2, '["tenant"]'))),
    t_task('a4', kind => 'load', metadata => '{"tenant": 1}',
           rules => jsonb_build_array(t_rule('load', 2, '["tenant"]'))),
    t_task('a5', kind => 'load', metadata => '{"tenant": 1}',
           rules => jsonb_build_array(t_rule('load', 2, '["tenant"]'))),
    t_task('b1', kind => 'load', metadata => '{"tenant": 2}',
           rules => jsonb_build_array(t_rule('load', 2, '["tenant"]'))),
    t_task('b2', kind => 'load', metadata => '{"tenant": 2}',
           rules => jsonb_build_array(t_rule('load', 2, '["tenant"]'))),
    t_task('free', kind => 'load', metadata => '{"tenant": 3}'));
-- The count tasks are out of the way.
SELECT count(*) AS canceled FROM tr_move_tasks(ARRAY(SELECT t_id(task) FROM t_tasks
                                                     WHERE task LIKE 'k%'), 'Canceled');
SELECT tr_metrics_fold(100000) >= 0 AS folded;

-- The first claim takes two of tenant 1 (a3 to a5 are passed over), both of
-- tenant 2, and the task without rules.
SELECT t_name(task_id) AS task, trigger FROM tr_claim(1, 10, 60000);
SELECT task, status FROM t_tasks WHERE task ~ '^(a|b|free)';
SELECT labels, n FROM t_counters WHERE name = 'taskrunner_tasks_blocked_by_rule_total';
-- Nothing has room now: a claim takes nothing and counts the three again.
SELECT count(*) AS claimed FROM tr_claim(1, 10, 60000);
SELECT labels, n FROM t_counters WHERE name = 'taskrunner_tasks_blocked_by_rule_total';
-- What GET /tasks/{id}/blockers says of a3 (counted the same way).
SELECT body::jsonb -> 'blockers' AS blockers FROM tr_task_blockers(t_id('a3'));
-- a1 runs, a2 ends: one place frees up, and one task takes it.
SELECT t_put('Running', 'a1');
SELECT tr_finish_task(t_id('a2'), 'Success', NULL);
SELECT tr_rule_count('load', 'Running', '{"tenant": 1}') AS tenant_1_running;
SELECT t_name(task_id) AS task FROM tr_claim(1, 10, 60000);
SELECT tr_rule_count('load', 'Running', '{"tenant": 1}') AS tenant_1_running;
SELECT task, status FROM t_tasks WHERE task ~ '^(a|b|free)';

-- A limit smaller than the room: only that many are claimed.
SELECT tr_finish_task(t_id('a1'), 'Success', NULL);
SELECT tr_finish_task(t_id('a3'), 'Success', NULL);
SELECT count(*) AS claimed FROM tr_claim(1, 1, 60000);
SELECT task, status FROM t_tasks WHERE task ~ '^a';

-- A rule may name another status: "fewer than 2 Pending reports per
-- tenant". A Pending task counts itself, so two Pending reports hold each
-- other back (2 are not fewer than 2): neither is claimed.
SELECT t_create('pending-rule',
    t_task('p1', kind => 'report', metadata => '{"tenant": 9}',
           rules => jsonb_build_array(t_rule('report', 2, '["tenant"]', 'Pending'))),
    t_task('p2', kind => 'report', metadata => '{"tenant": 9}',
           rules => jsonb_build_array(t_rule('report', 2, '["tenant"]', 'Pending'))));
SELECT count(*) AS claimed FROM tr_claim(2, 10, 60000);
SELECT task, status FROM t_tasks WHERE task ~ '^p';
SELECT tr_rule_count('report', 'Pending', '{"tenant": 9}') AS pending_reports;

-- fair: lanes and fair_by in the claim (API.md, "Fair claiming"). A lane
-- whose rule is full is passed over as a whole, however many tasks it holds;
-- fair_by values take turns, least recently started first; /blockers and the
-- claim decide with the same function; a lane row is never missing while
-- its lane has runnable tasks.
\set VERBOSITY terse
SET client_min_messages = warning;

-- A task with fair_by (the normalized shape adds the member).
CREATE FUNCTION pg_temp.fair(p_task jsonb, p_fields jsonb) RETURNS jsonb
LANGUAGE sql AS $$ SELECT p_task || jsonb_build_object('fair_by', p_fields) $$;

-- ---------------------------------------------------------------- no head-of-line blocking
-- 3,000 tasks of tenant A wait on "one per tenant" (one of them Claimed);
-- a task of tenant B created after them starts at the next claim, even
-- with a scan of 5 candidates.
SELECT t_create('a0', t_task('a0', kind => 'exp', metadata => '{"tenant": "A"}',
                             rules => jsonb_build_array(t_rule('exp', 1, '["tenant"]'))));
SELECT count(*) AS claimed FROM tr_claim(1, 10, 60000);
SELECT code FROM tr_create_batch(gen_random_uuid(), 'tester', NULL, NULL,
    (SELECT jsonb_agg(t_task('a' || i, kind => 'exp', metadata => '{"tenant": "A"}',
                             rules => jsonb_build_array(t_rule('exp', 1, '["tenant"]')))
                      )
     FROM generate_series(1, 3000) i), 'tester');
SELECT t_create('b', t_task('b1', kind => 'exp', metadata => '{"tenant": "B"}',
                            rules => jsonb_build_array(t_rule('exp', 1, '["tenant"]'))));
-- One lane per tenant; blockers: A's waiting tasks are held by the rule, B's is free.
SELECT count(*) AS lanes FROM claim_lanes;
SELECT jsonb_array_length(body::jsonb -> 'blockers') AS a1_blockers FROM tr_task_blockers(t_id('a1'));
SELECT body::jsonb -> 'blockers' AS b1_blockers FROM tr_task_blockers(t_id('b1'));
SELECT t_name(task_id) AS claimed FROM tr_claim(1, 10, 60000, 5);
-- A's lane costs one check per claim: counted once as blocked.
SELECT tr_metrics_fold(100000) >= 0 AS folded;
SELECT n AS blocked FROM t_counters WHERE name = 'taskrunner_tasks_blocked_by_rule_total';
-- B's lane is empty now and dropped; A's stays.
SELECT count(*) AS lanes FROM claim_lanes;
-- A place frees: the oldest waiting task of A takes it.
SELECT tr_finish_task(t_id('a0'), 'Success', NULL);
SELECT t_name(task_id) AS claimed FROM tr_claim(1, 10, 60000);
SELECT (SELECT head_seq FROM claim_lanes) = (SELECT seq FROM tasks WHERE id = t_id('a2'))
       AS head_is_a2;
SELECT count(*) AS canceled FROM tr_move_tasks(ARRAY(SELECT id FROM tasks
                                                     WHERE kind = 'exp' AND status <> 'Success'),
                                               'Canceled');
-- With nothing runnable left, the next claim drops the lane.
SELECT count(*) AS claimed FROM tr_claim(1, 10, 60000);
SELECT count(*) AS lanes FROM claim_lanes;

-- ---------------------------------------------------------------- priority first
-- A higher priority goes first, lane or not; within a priority, older first.
SELECT t_create('prio',
    t_task('p1', kind => 'pr'),
    t_task('p2', kind => 'pr', metadata => '{"t": 1}',
           rules => jsonb_build_array(t_rule('pr', 5, '["t"]'))),
    t_task('p3', kind => 'pr', priority => 5),
    t_task('p4', kind => 'pr', metadata => '{"t": 1}', priority => 5,
           rules => jsonb_build_array(t_rule('pr', 5, '["t"]'))),
    t_task('p5', kind => 'pr'));
SELECT t_name(task_id) AS claimed FROM tr_claim(1, 3, 60000);
SELECT t_name(task_id) AS claimed FROM tr_claim(1, 10, 60000);

-- ---------------------------------------------------------------- fair_by
-- Two tenants share a pool of 2 places; X has 6 tasks, Y 2 created after
-- them. Under fair_by the starts alternate, least recently started first;
-- without fair_by X's older tasks would all go first.
SELECT t_create('fx', VARIADIC ARRAY(
    SELECT pg_temp.fair(t_task('x' || i, kind => 'pool', metadata => '{"tenant": "X"}',
                               rules => jsonb_build_array(t_rule('pool', 2))), '["tenant"]')
    FROM generate_series(1, 6) i));
SELECT t_create('fy', VARIADIC ARRAY(
    SELECT pg_temp.fair(t_task('y' || i, kind => 'pool', metadata => '{"tenant": "Y"}',
                               rules => jsonb_build_array(t_rule('pool', 2))), '["tenant"]')
    FROM generate_series(1, 2) i));
SELECT tr_task_json(t)::jsonb -> 'fair_by' AS fair_by FROM tasks t WHERE t.id = t_id('x1');
SELECT count(*) AS lanes, count(DISTINCT fair_key) AS values FROM claim_lanes;
-- The first two places: X (its oldest task is oldest), then Y (never started).
SELECT t_name(task_id) AS claimed FROM tr_claim(1, 10, 60000);
-- Each freed place goes to the value whose last start is oldest.
CREATE TEMP TABLE starts (n serial, task text);
DO $$
DECLARE
    r record;
BEGIN
    FOR i IN 1..6 LOOP
        SELECT id INTO r FROM tasks WHERE kind = 'pool' AND status = 'Claimed' ORDER BY seq LIMIT 1;
        EXIT WHEN NOT FOUND;
        PERFORM tr_finish_task(r.id, 'Success', NULL);
        INSERT INTO starts (task) SELECT t_name(c.task_id) FROM tr_claim(1, 1, 60000) c;
    END LOOP;
END
$$;
SELECT string_agg(task, ' ' ORDER BY n) AS starts FROM starts;
-- fair_by without rules: tenants take turns in one claim (listed in creation order).
SELECT t_create('fz', VARIADIC ARRAY(
    SELECT pg_temp.fair(t_task('z' || i, kind => 'fz', metadata => jsonb_build_object(
                                   'tenant', CASE WHEN i <= 4 THEN 'P' ELSE 'Q' END)),
                        '["tenant"]')
    FROM generate_series(1, 6) i));
SELECT string_agg(t_name(task_id), ' ' ORDER BY delivery_id) AS claimed FROM tr_claim(1, 4, 60000);

-- ---------------------------------------------------------------- lanes follow the task
-- A task gets its lane when it becomes Pending: after a retry with new
-- metadata it joins the lane of its new values; a paused task's lane row
-- comes back when it is resumed.
SELECT t_create('mv', t_task('m1', kind => 'mv', metadata => '{"t": 1}',
                             rules => jsonb_build_array(t_rule('mv', 1, '["t"]'))));
SELECT lane = tr_lane_key(0, rules, '{"t": 1}', NULL) AS lane_of_t1 FROM tasks WHERE id = t_id('m1');
SELECT code AS paused FROM tr_pause_task(t_id('m1'), 'tester');
SELECT count(*) AS claimed FROM tr_claim(1, 10, 60000);
SELECT count(*) AS mv_lanes FROM claim_lanes l JOIN tasks t ON t.lane = l.id AND t.id = t_id('m1');
SELECT code AS resumed FROM tr_resume_task(t_id('m1'), 'tester');
SELECT count(*) AS mv_lanes FROM claim_lanes l JOIN tasks t ON t.lane = l.id AND t.id = t_id('m1');
SELECT t_name(task_id) AS claimed FROM tr_claim(1, 10, 60000);

-- ---------------------------------------------------------------- plans
-- The claim's lookups use the lane and runnable indexes, also as generic
-- plans (the worker's settings).
CREATE FUNCTION pg_temp.plan(p_sql text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    r text;
    v text := '';
BEGIN
    FOR r IN EXECUTE 'EXPLAIN (COSTS OFF) ' || p_sql LOOP
        v := v || r || E'\n';
    END LOOP;
    RETURN v;
END
$$;
SET plan_cache_mode = force_generic_plan;
SET enable_seqscan = off;
PREPARE lane_head(uuid) AS SELECT * FROM tasks x
    WHERE x.lane = $1 AND x.status = 'Pending' AND x.not_before IS NULL AND x.lane IS NOT NULL
      AND x.held = 0
    ORDER BY x.seq LIMIT 1;
PREPARE free_next(integer) AS SELECT x.priority, x.created_at FROM tasks x
    WHERE x.status = 'Pending' AND x.not_before IS NULL AND x.lane IS NULL AND x.held = 0
    ORDER BY x.priority DESC, x.seq OFFSET $1 LIMIT 1;
SELECT pg_temp.plan(format('EXECUTE lane_head(%L)', gen_random_uuid())) LIKE '%tasks_lane_idx%'
       AS lane_head_by_index;
SELECT pg_temp.plan('EXECUTE free_next(3)') LIKE '%tasks_runnable_idx%' AS free_next_by_index;
-- The lanes in the claim's order: by an index, never a sequential scan
-- (with enable_seqscan off, one would cost a JIT compilation per claim).
PREPARE lane_next(uuid[]) AS
    SELECT l.id, l.priority, l.fair_key, l.head_seq, greatest(f.last_start, l.head_at)
    FROM claim_lanes l LEFT JOIN fair_turns f ON f.fair_key = l.fair_key
    WHERE l.id <> ALL ($1)
    ORDER BY l.priority DESC, greatest(f.last_start, l.head_at), l.head_seq
    LIMIT 1;
SELECT pg_temp.plan('EXECUTE lane_next(''{}'')') NOT LIKE '%Seq Scan%' AS lane_next_by_index;

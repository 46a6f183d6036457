-- metrics: the counters of GET /metrics. Task counters are appended to
-- metric_deltas in the transaction of the change; tr_metrics_fold moves
-- them into metric_counters (per shard) without changing any total;
-- tr_metrics_flush adds what the processes counted in memory;
-- tr_metrics_scrape sums both tables, adds the gauge taskrunner_tasks{status}
-- and reports kinds beyond the first p_max_kinds (by first appearance) as
-- "other".
\set VERBOSITY terse
SET client_min_messages = warning;

-- The totals of a scrape (kinds uncapped), by name and labels.
CREATE TEMP VIEW totals AS
SELECT name, labels, value FROM tr_metrics_scrape(1000, 100);

-- ---------------------------------------------------------------- in the transaction
SELECT count(*) AS deltas FROM metric_deltas;
BEGIN;
SELECT t_create('rolled back', t_task('r1'), t_task('r2'));
SELECT t_start('r1');
SELECT name, labels, n FROM metric_deltas ORDER BY name, labels::text;
ROLLBACK;
-- Rolled back: counted nothing.
SELECT count(*) AS deltas FROM metric_deltas;
SELECT * FROM totals WHERE name <> 'taskrunner_tasks';

-- Committed: counted.
SELECT t_create('kept', t_task('k1'), t_task('k2'), t_task('k3'));
SELECT t_start('k1', 'k2');
SELECT tr_finish_task(t_id('k1'), 'Success', NULL);
SELECT name, labels, n FROM metric_deltas ORDER BY name, labels::text;
SELECT * FROM totals;

-- ---------------------------------------------------------------- folding
CREATE TEMP TABLE before_fold AS SELECT * FROM totals;
SELECT count(*) AS delta_rows FROM metric_deltas;
-- At most p_limit rows at a time; the totals never change.
SELECT tr_metrics_fold(2) AS folded;
SELECT count(*) AS delta_rows FROM metric_deltas;
SELECT tr_metrics_fold(1000) AS folded;
SELECT count(*) AS delta_rows FROM metric_deltas;
SELECT tr_metrics_fold(1000) AS folded;
-- (no row: no total differs)
SELECT * FROM before_fold b FULL JOIN totals t USING (name, labels)
WHERE b.value IS DISTINCT FROM t.value;
SELECT count(*) AS counters, count(DISTINCT shard) AS shards FROM metric_counters;

-- ---------------------------------------------------------------- flushing and shards
-- What a process counted in memory: [name, labels, delta]; a zero delta
-- (sent only for a series the process never wrote, such as a histogram's
-- _sum of observations that rounded to 0) is written as a 0 series. A
-- histogram's buckets come back in the order of their bounds.
SELECT tr_metrics_flush('[["taskrunner_http_requests_total", {"route": "/tasks", "code": "201"}, 4],
                          ["taskrunner_http_requests_total", {"route": "/tasks", "code": "404"}, 0],
                          ["taskrunner_webhook_duration_seconds_bucket", {"le": "10"}, 3],
                          ["taskrunner_webhook_duration_seconds_bucket", {"le": "+Inf"}, 3],
                          ["taskrunner_webhook_duration_seconds_bucket", {"le": "2"}, 1]]');
SELECT tr_metrics_flush('[["taskrunner_http_requests_total", {"route": "/tasks", "code": "201"}, 2]]');
SELECT * FROM totals WHERE name IN ('taskrunner_http_requests_total',
                                    'taskrunner_webhook_duration_seconds_bucket');
-- Rows of other shards (other backends) are summed.
INSERT INTO metric_counters (name, labels, shard, value)
SELECT name, labels, (shard + 1) % 16, 10 FROM metric_counters
WHERE name = 'taskrunner_http_requests_total';
SELECT * FROM totals WHERE name = 'taskrunner_http_requests_total';

-- ---------------------------------------------------------------- the kind cap
-- Tasks of kinds zeta, then alpha, then mid complete, each in its own
-- transaction (so each kind first appears later than the one before).
SELECT t_create('kinds', t_task('z', kind => 'zeta'), t_task('a', kind => 'alpha'),
                t_task('m', kind => 'mid'), t_task('m2', kind => 'mid'));
SELECT tr_finish_task(t_id('z'), 'Canceled', NULL);
SELECT tr_finish_task(t_id('a'), 'Canceled', NULL);
SELECT tr_finish_task(t_id('m'), 'Canceled', NULL);
SELECT tr_finish_task(t_id('m2'), 'Canceled', NULL);
-- Uncapped: every kind ("work" is the kind of k1..k3, first of all).
SELECT labels, value FROM tr_metrics_scrape(50, 100) WHERE name = 'taskrunner_tasks_completed_total';
-- At most 2 kinds: the first two to appear (work, zeta) keep their names;
-- alpha and mid are "other" (alpha, though first by name, came later).
SELECT labels, value FROM tr_metrics_scrape(2, 100) WHERE name = 'taskrunner_tasks_completed_total';
-- At most 1: only "work".
SELECT labels, value FROM tr_metrics_scrape(1, 100) WHERE name = 'taskrunner_tasks_completed_total';
-- Folding keeps the order of first appearance.
SELECT tr_metrics_fold(1000) > 0 AS folded;
SELECT labels, value FROM tr_metrics_scrape(2, 100) WHERE name = 'taskrunner_tasks_completed_total';
-- Labels without a kind are not touched by the cap.
SELECT name, labels, value FROM tr_metrics_scrape(1, 100)
WHERE name IN ('taskrunner_tasks', 'taskrunner_task_status_transitions_total');

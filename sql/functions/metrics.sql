-- metrics: the counters of GET /metrics, totals over every process.
--
-- Task counters are appended to metric_deltas in the transaction of the
-- change (exact: a rolled-back change counts nothing); the responders and the
-- worker flush what they count in memory (HTTP and webhook counts,
-- histograms) about once a second, and each flush also folds the deltas into
-- metric_counters. The scrape sums both tables.

-- Adds p_ns[i] to counter p_names[i]{p_labels[i]} in metric_counters, in
-- this backend's shard. Rows are locked in one fixed order, so two
-- transactions that share a shard wait for each other instead of
-- deadlocking. A zero delta is written too: the processes send one only for
-- a series they never wrote (a histogram's _sum whose observations all
-- rounded to 0 must still exist beside its _count).
CREATE OR REPLACE FUNCTION tr_metrics_write(p_names text[], p_labels jsonb[], p_ns bigint[])
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO metric_counters AS m (name, labels, shard, value)
    SELECT u.name, u.labels, pg_backend_pid() % 16, sum(u.n)
    FROM unnest(p_names, p_labels, p_ns) AS u (name, labels, n)
    GROUP BY u.name, u.labels
    ORDER BY u.name, u.labels
    ON CONFLICT (name, labels, shard) DO UPDATE SET value = m.value + EXCLUDED.value;
END
$$;

-- Counts p_ns[i] in counter p_names[i]{p_labels[i]} as part of the current
-- transaction. Zero deltas are skipped.
CREATE OR REPLACE FUNCTION tr_metrics_add(p_names text[], p_labels jsonb[], p_ns bigint[])
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO metric_deltas (name, labels, n)
    SELECT u.name, u.labels, u.n
    FROM unnest(p_names, p_labels, p_ns) AS u (name, labels, n)
    WHERE u.n <> 0;
END
$$;

CREATE OR REPLACE FUNCTION tr_metric_add(p_name text, p_labels jsonb, p_n bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF p_n <> 0 THEN
        INSERT INTO metric_deltas (name, labels, n) VALUES (p_name, p_labels, p_n);
    END IF;
END
$$;

-- Moves up to p_limit committed deltas into metric_counters (this backend's
-- shard) in one transaction: deleted and added together, so the sum of both
-- tables never changes. Deltas another fold has locked are skipped. Returns
-- how many rows were folded.
CREATE OR REPLACE FUNCTION tr_metrics_fold(p_limit integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_n integer;
BEGIN
    WITH gone AS (
        DELETE FROM metric_deltas
        WHERE ctid = ANY (ARRAY(SELECT ctid FROM metric_deltas LIMIT p_limit
                                FOR UPDATE SKIP LOCKED))
        RETURNING name, labels, n, at
    ), summed AS (
        SELECT g.name, g.labels, sum(g.n)::bigint AS n, min(g.at) AS at, count(*) AS rows
        FROM gone g GROUP BY g.name, g.labels
    ), added AS (
        INSERT INTO metric_counters AS m (name, labels, shard, value, first_at)
        SELECT s.name, s.labels, pg_backend_pid() % 16, s.n, s.at
        FROM summed s
        ORDER BY s.name, s.labels
        ON CONFLICT (name, labels, shard) DO UPDATE
        SET value = m.value + EXCLUDED.value, first_at = least(m.first_at, EXCLUDED.first_at)
    )
    SELECT coalesce(sum(s.rows), 0) INTO v_n FROM summed s;
    RETURN v_n;
END
$$;

-- What the responders and the worker aggregated in memory since their last
-- flush: a JSON array of [name, labels, delta] (shared/metrics.c); then the
-- task counters' deltas and the batch and group counts' deltas
-- (counts.sql) are folded, so those tables stay small.
CREATE OR REPLACE FUNCTION tr_metrics_flush(p_rows jsonb) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM tr_metrics_write(array_agg(e ->> 0), array_agg(e -> 1), array_agg((e ->> 2)::bigint))
    FROM jsonb_array_elements(p_rows) AS e;
    PERFORM tr_metrics_fold(10000);
    PERFORM tr_counts_fold(10000);
END
$$;

-- The totals of GET /metrics: every counter summed over its shards and the
-- deltas not yet folded, the gauge taskrunner_tasks{status} and the gauge
-- taskrunner_webhook_targets_unavailable. Histogram
-- buckets come in the order of their bounds.
--
-- The "kind" label is bounded here, at scrape time: the counters keep every
-- kind exactly, and the first p_max_kinds kinds to appear (by the time their
-- first counter row was written) keep their name while all others are summed
-- into "other". Ranking by first appearance rather than by current count
-- keeps membership fixed for a given bound, so no series ever decreases
-- (which Prometheus would take for a counter reset) and the counters need
-- no registry of kinds that every completion would have to consult.
CREATE OR REPLACE FUNCTION tr_metrics_scrape(p_max_kinds integer, p_max_groups integer)
RETURNS TABLE (name text, labels text, value bigint)
LANGUAGE sql STABLE AS $$
    WITH sums AS (
        SELECT u.name, u.labels, sum(u.value)::bigint AS value, min(u.first_at) AS first_at
        FROM (SELECT m.name, m.labels, m.value, m.first_at FROM metric_counters m
              UNION ALL
              SELECT d.name, d.labels, d.n, d.at FROM metric_deltas d) u
        GROUP BY u.name, u.labels
    ), named AS (
        SELECT k.kind
        FROM (SELECT s.labels ->> 'kind' AS kind, min(s.first_at) AS first_at
              FROM sums s WHERE s.labels ? 'kind' GROUP BY 1) k
        ORDER BY k.first_at, k.kind
        LIMIT p_max_kinds
    ), capped AS (
        SELECT s.name,
               CASE WHEN s.labels ? 'kind'
                         AND NOT EXISTS (SELECT 1 FROM named n WHERE n.kind = s.labels ->> 'kind')
                    THEN s.labels || '{"kind": "other"}' ELSE s.labels END AS labels,
               s.value
        FROM sums s
    ), attempts AS (  -- tasks ended after n start attempts (tr_move_tasks)
        SELECT (s.labels ->> 'attempts')::integer AS n, s.value
        FROM sums s WHERE s.name = 'taskrunner_task_attempts_observed'
    ), samples AS (
        SELECT c.name, c.labels, sum(c.value)::bigint AS value
        FROM capped c WHERE c.name <> 'taskrunner_task_attempts_observed'
        GROUP BY c.name, c.labels
        UNION ALL  -- the histogram taskrunner_task_attempts, cumulative (shared/metrics.c)
        SELECT 'taskrunner_task_attempts_bucket', jsonb_build_object('le', b.le),
               coalesce(sum(a.value) FILTER (WHERE a.n <= b.n), 0)::bigint
        FROM (VALUES ('1', 1), ('2', 2), ('3', 3), ('5', 5), ('10', 10),
                     ('+Inf', 2147483647)) AS b (le, n)
             CROSS JOIN attempts a
        GROUP BY b.le
        UNION ALL
        SELECT 'taskrunner_task_attempts_sum', '{}', sum(a.n * a.value)::bigint * 1000000
        FROM attempts a HAVING count(*) > 0
        UNION ALL
        SELECT 'taskrunner_task_attempts_count', '{}', sum(a.value)::bigint
        FROM attempts a HAVING count(*) > 0
        UNION ALL
        SELECT 'taskrunner_tasks', jsonb_build_object('status', st.status),
               (SELECT count(*) FROM tasks t WHERE t.status = st.status)
        FROM unnest(enum_range(NULL::task_status)) AS st (status)
        UNION ALL  -- tasks of each group not ended: the first p_max_groups groups named
                   -- (by first appearance, so a name never changes series), the rest "other"
        SELECT 'taskrunner_group_tasks',
               jsonb_build_object('group', CASE WHEN g.rank <= p_max_groups THEN g.name
                                                ELSE 'other' END,
                                  'status', c.status),
               sum(c.n)::bigint
        FROM (SELECT u.key, u.status, sum(u.n) AS n
              FROM (SELECT k.key, k.status, k.n FROM task_counts k WHERE k.scope = 'g'
                    UNION ALL
                    SELECT d.key, d.status, d.n FROM task_count_deltas d WHERE d.scope = 'g') u
              WHERE u.status IN ('Waiting', 'Pending', 'Claimed', 'Running', 'Paused')
              GROUP BY 1, 2 HAVING sum(u.n) <> 0) c
        JOIN (SELECT gr.name, row_number() OVER (ORDER BY gr.created_at, gr.name) AS rank
              FROM groups gr) g ON g.name = c.key
        GROUP BY 2
        UNION ALL  -- webhook targets held back by a circuit breaker now
        SELECT 'taskrunner_webhook_targets_unavailable', '{}',
               (SELECT count(*) FROM held_targets)
    )
    SELECT x.name, x.labels::text, x.value
    FROM samples x
    ORDER BY x.name, x.labels - 'le', (x.labels ->> 'le')::float8
$$;

-- 0004: task counters appended as deltas instead of summed at commit.
--
-- Until now a transaction's counter deltas were merged into a
-- transaction-local setting (a JSON object rebuilt on every statement) and
-- written to metric_counters by a deferred trigger at commit: about a third
-- of the database time of a single-task POST /tasks (measured with
-- pg_stat_statements, track = all). Now each counting statement appends one
-- row to metric_deltas, a table without indexes, in the transaction of the
-- change: still exact (a rolled-back change counts nothing), with no row
-- shared between transactions and nothing to do at commit. The rows are
-- folded into metric_counters later (tr_metrics_fold, which the responders'
-- and the worker's periodic flush call), and the scrape sums both tables, so
-- a total never depends on when the last fold ran.

CREATE TABLE metric_deltas (
    name   text NOT NULL,
    labels jsonb NOT NULL,
    n      bigint NOT NULL,
    at     timestamptz NOT NULL DEFAULT now()  -- becomes first_at when folded
);

DROP TRIGGER metric_commits_at_commit ON metric_commits;
DROP FUNCTION tr_metrics_commit();
DROP TABLE metric_commits;

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
CREATE FUNCTION tr_metrics_fold(p_limit integer) RETURNS integer
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

-- The periodic flush of a process (shared/metrics.c) also folds the deltas
-- of the task counters, so the table stays small while anything runs.
CREATE OR REPLACE FUNCTION tr_metrics_flush(p_rows jsonb) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM tr_metrics_write(array_agg(e ->> 0), array_agg(e -> 1), array_agg((e ->> 2)::bigint))
    FROM jsonb_array_elements(p_rows) AS e;
    PERFORM tr_metrics_fold(10000);
END
$$;

-- New tasks: a "created" event each, and the creation counter, in one
-- statement.
CREATE OR REPLACE FUNCTION tr_tasks_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    WITH ev AS (
        INSERT INTO task_events (task_id, event, actor, to_status, detail)
        SELECT n.id, 'created', tr_actor(), n.status,
               jsonb_build_object('batch_id', n.batch_id, 'local_id', n.local_id)
        FROM new_tasks n ORDER BY n.seq
        RETURNING 1
    )
    INSERT INTO metric_deltas (name, labels, n)
    SELECT 'taskrunner_tasks_created_total', '{}', count(*) FROM ev HAVING count(*) > 0;
    RETURN NULL;
END
$$;

-- The scrape of 0002, over the folded counters and the deltas not yet folded.
CREATE OR REPLACE FUNCTION tr_metrics_scrape(p_max_kinds integer)
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
    ), samples AS (
        SELECT c.name, c.labels, sum(c.value)::bigint AS value
        FROM capped c GROUP BY c.name, c.labels
        UNION ALL
        SELECT 'taskrunner_tasks', jsonb_build_object('status', st.status),
               (SELECT count(*) FROM tasks t WHERE t.status = st.status)
        FROM unnest(ARRAY['Waiting', 'Pending', 'Claimed', 'Running', 'Success', 'Failure',
                          'Canceled', 'Paused']) AS st (status)
    )
    SELECT x.name, x.labels::text, x.value
    FROM samples x
    ORDER BY x.name, x.labels - 'le', (x.labels ->> 'le')::float8
$$;

-- Status changes (see 0002): the events, then the transition and completion
-- deltas appended directly.
CREATE OR REPLACE FUNCTION tr_tasks_updated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO task_events (task_id, event, actor, from_status, to_status, detail)
    SELECT n.id,
           CASE WHEN n.status = 'Paused' THEN 'paused'
                WHEN o.status = 'Paused' THEN 'resumed'
                WHEN n.status = 'Canceled' THEN 'canceled'
                ELSE 'status' END,
           tr_actor(), o.status, n.status,
           jsonb_strip_nulls(jsonb_build_object(
               'failure_reason', n.failure_reason,
               'attempt', CASE WHEN n.status = 'Claimed' THEN n.attempt END))
    FROM new_tasks n JOIN old_tasks o ON o.id = n.id
    WHERE n.status <> o.status
    ORDER BY n.seq;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    INSERT INTO metric_deltas (name, labels, n)
    SELECT 'taskrunner_task_status_transitions_total',
           jsonb_build_object('from', o.status, 'to', n.status), count(*)
    FROM new_tasks n JOIN old_tasks o ON o.id = n.id
    WHERE n.status <> o.status
    GROUP BY o.status, n.status
    UNION ALL
    SELECT 'taskrunner_tasks_completed_total',
           jsonb_build_object('outcome', n.status, 'kind', n.kind), count(*)
    FROM new_tasks n JOIN old_tasks o ON o.id = n.id
    WHERE n.status <> o.status AND tr_is_terminal(n.status)
    GROUP BY n.status, n.kind;
    RETURN NULL;
END
$$;

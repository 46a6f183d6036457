-- counts: the number of tasks per batch and per group in each status, with
-- the sums of their success and failures counts (task_counts, migration
-- 0071). Writers append deltas (tr_counts_add; tr_move_tasks and the
-- creation trigger write theirs in their own statements), the processes'
-- periodic flush folds them (tr_counts_fold, from tr_metrics_flush), and
-- readers sum the folded row and the deltas not yet folded (tr_counts):
-- exact in every transaction, and no transaction waits for another's row.

-- Appends a delta of the counts of task status p_status in batch p_batch
-- and, when given, group p_group.
CREATE OR REPLACE FUNCTION tr_counts_add(p_batch uuid, p_group text, p_status task_status,
                                         p_n bigint, p_success bigint, p_failures bigint)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO task_count_deltas (scope, key, status, n, success, failures)
    VALUES ('b', p_batch::text, p_status::text, p_n, p_success, p_failures);
    IF p_group IS NOT NULL THEN
        INSERT INTO task_count_deltas (scope, key, status, n, success, failures)
        VALUES ('g', p_group, p_status::text, p_n, p_success, p_failures);
    END IF;
END
$$;

-- Takes tasks p_ids out of the counts (p_sign -1: soft-deleted, or purged
-- while live) or puts them back (+1: restored): the counts are those of live
-- tasks (API.md: deleted tasks leave counts and group/batch stats).
CREATE OR REPLACE FUNCTION tr_counts_shift(p_ids uuid[], p_sign integer) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF cardinality(p_ids) > 0 THEN
        INSERT INTO task_count_deltas (scope, key, status, n, success, failures)
        SELECT 'b', t.batch_id::text, t.status::text, p_sign * count(*),
               p_sign * sum(t.success), p_sign * sum(t.failures)
        FROM tasks t WHERE t.id = ANY (p_ids)
        GROUP BY t.batch_id, t.status
        UNION ALL
        SELECT 'g', t.grp, t.status::text, p_sign * count(*),
               p_sign * sum(t.success), p_sign * sum(t.failures)
        FROM tasks t WHERE t.id = ANY (p_ids) AND t.grp IS NOT NULL
        GROUP BY t.grp, t.status;
    END IF;
END
$$;

-- The counts of one batch (p_scope 'b', p_key its id) or group ('g', its
-- name), one row per status that ever had a task (n may be 0).
CREATE OR REPLACE FUNCTION tr_counts(p_scope "char", p_key text)
RETURNS TABLE (status text, n bigint, success bigint, failures bigint, last_at timestamptz)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY
    SELECT u.status, sum(u.n)::bigint, sum(u.success)::bigint, sum(u.failures)::bigint,
           max(u.at)
    FROM (SELECT c.status, c.n, c.success, c.failures, c.last_at AS at FROM task_counts c
          WHERE c.scope = p_scope AND c.key = p_key
          UNION ALL
          SELECT d.status, d.n, d.success, d.failures, d.at FROM task_count_deltas d
          WHERE d.scope = p_scope AND d.key = p_key) u
    GROUP BY u.status;
END
$$;

-- Folds up to p_limit deltas into task_counts; returns how many. Rows are
-- upserted in key order, so concurrent folds never deadlock.
CREATE OR REPLACE FUNCTION tr_counts_fold(p_limit integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_n integer;
BEGIN
    WITH gone AS (
        DELETE FROM task_count_deltas
        WHERE ctid = ANY (ARRAY(SELECT ctid FROM task_count_deltas LIMIT p_limit
                                FOR UPDATE SKIP LOCKED))
        RETURNING scope, key, status, n, success, failures, at
    ), summed AS (
        SELECT g.scope, g.key, g.status, sum(g.n)::bigint AS n, sum(g.success)::bigint AS s,
               sum(g.failures)::bigint AS f, max(g.at) AS at, count(*) AS rows
        FROM gone g GROUP BY g.scope, g.key, g.status
    ), added AS (
        INSERT INTO task_counts AS c (scope, key, status, n, success, failures, last_at)
        SELECT s.scope, s.key, s.status, s.n, s.s, s.f, s.at
        FROM summed s
        ORDER BY s.scope, s.key, s.status
        ON CONFLICT (scope, key, status) DO UPDATE
        SET n = c.n + EXCLUDED.n, success = c.success + EXCLUDED.success,
            failures = c.failures + EXCLUDED.failures,
            last_at = greatest(c.last_at, EXCLUDED.last_at)
    )
    SELECT coalesce(sum(s.rows), 0) INTO v_n FROM summed s;
    RETURN v_n;
END
$$;

-- 0071: counts of tasks per batch and per group, kept in the transactions
-- that change them, so GET /batches, GET /groups and GET /groups/{group}
-- read a few rows instead of every task (bench: 1,000,000 tasks).
--
-- As metric_deltas does for the counters: every statement that creates
-- tasks, changes their statuses (tr_move_tasks) or their success/failures
-- counts appends rows to task_count_deltas (no row shared between
-- transactions, so no waiting), and the processes' periodic flush folds them
-- into task_counts (tr_counts_fold). A read sums both (tr_counts). One row
-- per (scope, key, status): scope 'b' (key: the batch id) or 'g' (key: the
-- group); n tasks in that status, the sums of their success and failures
-- counts, and last_at, the last change counted.
CREATE TABLE task_counts (
    scope    "char" NOT NULL,
    key      text NOT NULL,
    status   text NOT NULL,
    n        bigint NOT NULL DEFAULT 0,
    success  bigint NOT NULL DEFAULT 0,
    failures bigint NOT NULL DEFAULT 0,
    last_at  timestamptz,
    PRIMARY KEY (scope, key, status)
);

CREATE TABLE task_count_deltas (
    scope    "char" NOT NULL,
    key      text NOT NULL,
    status   text NOT NULL,
    n        bigint NOT NULL DEFAULT 0,
    success  bigint NOT NULL DEFAULT 0,
    failures bigint NOT NULL DEFAULT 0,
    at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX task_count_deltas_key_idx ON task_count_deltas (scope, key);

-- The kinds of a batch's tasks (the batch list shows them), set as its
-- tasks are inserted (tr_tasks_inserted).
ALTER TABLE batches ADD COLUMN kinds text[] NOT NULL DEFAULT '{}';

-- The counts of the tasks stored before.
INSERT INTO task_counts (scope, key, status, n, success, failures, last_at)
SELECT 'b', batch_id::text, status::text, count(*), sum(success), sum(failures), max(last_updated)
FROM tasks GROUP BY batch_id, status;
INSERT INTO task_counts (scope, key, status, n, success, failures, last_at)
SELECT 'g', grp, status::text, count(*), sum(success), sum(failures), max(last_updated)
FROM tasks WHERE grp IS NOT NULL GROUP BY grp, status;
UPDATE batches b SET kinds = k.kinds
FROM (SELECT batch_id, array_agg(DISTINCT kind ORDER BY kind) AS kinds FROM tasks
      GROUP BY batch_id) k
WHERE k.batch_id = b.id;

-- 0020: task retries (API.md, "Retries (F4)").
--
-- A task's policy (max_retries, retry_backoff) and how many retries it has
-- had; its next attempt's time is retry_at (shown as next_retry_at) and also
-- not_before, the time before which no worker starts it. A task waiting for
-- a time (a retry, later a scheduled start) is Pending with not_before set:
-- it leaves the runnable index, which holds only tasks startable now, and
-- the worker moves it back (not_before = NULL) when the time comes, so
-- waiting tasks cost the claim nothing.
ALTER TABLE tasks ADD COLUMN max_retries integer NOT NULL DEFAULT 0,
                  ADD COLUMN retry_count integer NOT NULL DEFAULT 0,
                  ADD COLUMN retry_backoff jsonb;

DROP INDEX tasks_runnable_idx;
CREATE INDEX tasks_runnable_idx ON tasks (priority DESC, seq)
    WHERE status = 'Pending' AND not_before IS NULL;
CREATE INDEX tasks_not_before_idx ON tasks (not_before)
    WHERE status = 'Pending' AND not_before IS NOT NULL;

-- A failed attempt with retries left goes back to Pending.
INSERT INTO task_transitions (from_status, to_status) VALUES
    ('Claimed', 'Pending'), ('Running', 'Pending');
-- A manual re-run (POST /tasks/{id}/retry): an ended task starts again
-- (Pending, or Waiting until its parents allow it). Only an operator's
-- request makes these: for everything else Failure and Canceled stay
-- terminal (tr_move_tasks takes them only when asked for a re-run).
ALTER TABLE task_transitions ADD COLUMN rerun boolean NOT NULL DEFAULT false;
INSERT INTO task_transitions (from_status, to_status, rerun) VALUES
    ('Failure', 'Pending', true), ('Failure', 'Waiting', true),
    ('Canceled', 'Pending', true), ('Canceled', 'Waiting', true),
    -- a child that was about to start waits for its re-run parent again
    ('Pending', 'Waiting', true);

-- The signatures that take the attempt a callback comes from.
DROP FUNCTION IF EXISTS tr_patch_task(uuid, task_status, bigint, bigint, boolean, jsonb, text, text);
DROP FUNCTION IF EXISTS tr_count_task(uuid, bigint, bigint, text);
DROP FUNCTION IF EXISTS tr_move_tasks(uuid[], task_status, text, integer[]);
DROP FUNCTION IF EXISTS tr_lock_task(uuid, task_status[], text);

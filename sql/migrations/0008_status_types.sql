-- 0008: task statuses and webhook triggers as types, and the allowed status
-- transitions as a table.
--
-- The one SQL definition of both lists (the C side has its own in
-- shared/statuses.h). A new status is an ALTER TYPE ... ADD VALUE plus its
-- rows in task_transitions; tr_move_tasks (sql/functions/statuses.sql) makes
-- every status change and refuses any pair not listed here.
--
-- Every function of the first layout is dropped here and made again from
-- sql/functions/ right after, in the same transaction: several take or
-- compare statuses as text, and their new definitions differ in signature.

DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_proc p
             WHERE p.pronamespace = current_schema()::regnamespace AND p.proname LIKE 'tr\_%'
    LOOP
        EXECUTE format('DROP FUNCTION %s CASCADE', f);  -- with the triggers that use them
    END LOOP;
END
$$;

CREATE TYPE task_status AS ENUM (
    'Waiting', 'Pending', 'Claimed', 'Running', 'Success', 'Failure', 'Canceled', 'Paused');

CREATE TYPE webhook_trigger AS ENUM ('Start', 'End', 'Cancel');

CREATE TABLE task_transitions (
    from_status task_status NOT NULL,
    to_status   task_status NOT NULL,
    PRIMARY KEY (from_status, to_status)
);
INSERT INTO task_transitions (from_status, to_status) VALUES
    -- its last parent finished; paused; a required parent failed; canceled
    ('Waiting', 'Pending'), ('Waiting', 'Paused'), ('Waiting', 'Failure'), ('Waiting', 'Canceled'),
    -- claimed by a worker; paused; a required parent failed; canceled
    ('Pending', 'Claimed'), ('Pending', 'Paused'), ('Pending', 'Failure'), ('Pending', 'Canceled'),
    -- on_start answered 2xx; the executor's outcome (or on_start given up); canceled
    ('Claimed', 'Running'), ('Claimed', 'Success'), ('Claimed', 'Failure'), ('Claimed', 'Canceled'),
    -- the executor's outcome or a heartbeat timeout; canceled
    ('Running', 'Success'), ('Running', 'Failure'), ('Running', 'Canceled'),
    -- resumed (to where its parents put it); a required parent failed; canceled
    ('Paused', 'Waiting'), ('Paused', 'Pending'), ('Paused', 'Failure'), ('Paused', 'Canceled');
-- Success, Failure and Canceled have no way out: they are the terminal statuses.

-- Indexes whose predicate names a status are made again for the new type.
DROP INDEX tasks_runnable_idx;
DROP INDEX tasks_deadline_idx;
ALTER TABLE tasks DROP CONSTRAINT tasks_status_check;
ALTER TABLE tasks ALTER COLUMN status TYPE task_status USING status::task_status;
CREATE INDEX tasks_runnable_idx ON tasks (priority DESC, seq) WHERE status = 'Pending';
CREATE INDEX tasks_deadline_idx ON tasks (deadline_at) WHERE status = 'Running';

ALTER TABLE actions DROP CONSTRAINT actions_trigger_check;
ALTER TABLE actions ALTER COLUMN trigger TYPE webhook_trigger USING trigger::webhook_trigger;
ALTER TABLE deliveries ALTER COLUMN trigger TYPE webhook_trigger USING trigger::webhook_trigger;
ALTER TABLE deliveries ALTER COLUMN outcome TYPE task_status USING outcome::task_status;

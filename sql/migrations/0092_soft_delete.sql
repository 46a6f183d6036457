-- 0092: soft delete (API.md Part 2, "Soft delete and retention (#20)"). A
-- deleted task keeps its rows and answers GET /tasks/{id}, but leaves the
-- lists and counts unless include_deleted=true; a deleted batch leaves
-- GET /batches. The partial index finds them for restore and purge, and
-- costs nothing for the tasks never deleted.

ALTER TABLE tasks ADD COLUMN deleted_at timestamptz;
ALTER TABLE batches ADD COLUMN deleted_at timestamptz;
CREATE INDEX tasks_deleted_idx ON tasks (deleted_at) WHERE deleted_at IS NOT NULL;
-- The first page of GET /tasks reads the live tasks only: were the newest
-- tasks soft-deleted by the million, the full index would have to be walked
-- through all of them (and the planner, seeing few live rows, would sort the
-- whole table instead). include_deleted=true reads both indexes, merged
-- (fcgi/tasks.c). Without deleted tasks, the same index as before.
DROP INDEX IF EXISTS tasks_created_idx;
CREATE INDEX tasks_created_idx ON tasks (created_at DESC, seq DESC) WHERE deleted_at IS NULL;
CREATE INDEX tasks_deleted_created_idx ON tasks (created_at DESC, seq DESC)
    WHERE deleted_at IS NOT NULL;

DROP FUNCTION IF EXISTS tr_batch_stats(uuid);
DROP FUNCTION IF EXISTS tr_list_batches(text, text, task_status, text, timestamptz, timestamptz,
                                        bigint, bigint);

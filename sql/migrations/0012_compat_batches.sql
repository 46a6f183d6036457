-- 0012: what the original service's clients need (docs/API.md, "Compatibility
-- with the original's clients"), and the batch list.
--
-- expected_count: how many items a task expects to process, set on create or
-- by PATCH, only ever returned. The timeout index keeps GET /tasks?timeout=
-- pages newest first from an index whatever the value's rarity. The batch
-- list (GET /batches, newest first, optionally by requester) reads batches
-- in that order from an index.
ALTER TABLE tasks ADD COLUMN expected_count integer CHECK (expected_count >= 0);
CREATE INDEX tasks_timeout_created_idx ON tasks (timeout, created_at DESC, seq DESC);
CREATE INDEX batches_created_idx ON batches (created_at DESC, id DESC);
CREATE INDEX batches_requester_created_idx ON batches (requester, created_at DESC, id DESC);
-- tr_patch_task takes priority and expected_count (sql/functions/tasks.sql).
DROP FUNCTION IF EXISTS tr_patch_task(uuid, task_status, bigint, bigint, boolean, jsonb, text, text);

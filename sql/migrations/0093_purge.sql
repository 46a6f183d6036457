-- 0093: the purge (API.md Part 2, "Soft delete and retention (#20)";
-- sql/functions/purge.sql). What it deletes is found by an index: a task's
-- actions by their shared params (which params no one uses any more), a
-- batch's idempotency keys. The foreign key from deliveries to actions goes:
-- each action deleted would have its deliveries looked for without an index
-- (one scan of the outbox per action); the purge deletes a task's deliveries
-- before its actions, and nothing else deletes actions.

CREATE INDEX actions_params_idx ON actions (params_id) WHERE params_id IS NOT NULL;
CREATE INDEX idempotency_keys_batch_idx ON idempotency_keys (batch_id);
ALTER TABLE deliveries DROP CONSTRAINT IF EXISTS deliveries_action_id_fkey;

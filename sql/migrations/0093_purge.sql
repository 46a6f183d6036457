-- 0093: the purge (API.md Part 2, "Soft delete and retention (#20)";
-- sql/functions/purge.sql). What it deletes is found by an index: a task's
-- actions by their shared params (which params no one uses any more), a
-- batch's idempotency keys.
--
-- The foreign keys that point at tasks and actions go: deleting a task ran
-- four referential checks (links as parent and as child, actions,
-- deliveries), each a query of its own per row, which took 0.3 ms per task,
-- most of the purge's time (a million tasks: five minutes); and the one
-- from deliveries to actions had no index, so each action deleted scanned
-- the whole outbox. Rows are only ever written for a task in the
-- transaction that made it or holds it, and the purge, the one thing that
-- deletes tasks, deletes a task's deliveries, links and actions first, in
-- its transaction. (It also spares every insert of a batch those checks.)

CREATE INDEX actions_params_idx ON actions (params_id) WHERE params_id IS NOT NULL;
CREATE INDEX idempotency_keys_batch_idx ON idempotency_keys (batch_id);
ALTER TABLE deliveries DROP CONSTRAINT IF EXISTS deliveries_action_id_fkey,
                       DROP CONSTRAINT IF EXISTS deliveries_task_id_fkey;
ALTER TABLE actions DROP CONSTRAINT IF EXISTS actions_task_id_fkey;
ALTER TABLE task_links DROP CONSTRAINT IF EXISTS task_links_parent_id_fkey,
                       DROP CONSTRAINT IF EXISTS task_links_child_id_fkey;

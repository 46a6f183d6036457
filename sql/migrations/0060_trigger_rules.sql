-- 0060: trigger rules, the Skipped status and task outputs (API.md, "Trigger
-- rules and outputs").
--
-- Skipped is terminal: a task whose trigger_rule can no longer be met. Its
-- task_transitions rows (Waiting, Pending, Paused -> Skipped) cannot be
-- written here: a value added by ALTER TYPE ... ADD VALUE cannot be used in
-- the transaction that added it, and scripts/migrate applies everything in
-- one. tr_after_migrate (sql/functions/statuses.sql) writes them in the
-- transaction scripts/migrate runs after this one commits. No SQL of this
-- file names 'Skipped' as a value.
ALTER TYPE task_status ADD VALUE IF NOT EXISTS 'Skipped';

-- trigger_rule: NULL (per-link requires_success) or one of the rules.
-- par_ok, par_failed, par_skipped: how many parents ended Success, Failure
-- or Canceled, Skipped; with open_parents (parents not ended) they decide a
-- rule (tr_rule_state) without reading the parents.
ALTER TABLE tasks ADD COLUMN trigger_rule text,
                  ADD COLUMN par_ok integer NOT NULL DEFAULT 0,
                  ADD COLUMN par_failed integer NOT NULL DEFAULT 0,
                  ADD COLUMN par_skipped integer NOT NULL DEFAULT 0,
                  ADD COLUMN output jsonb,
                  ADD CONSTRAINT tasks_trigger_rule_check CHECK (trigger_rule IN (
                      'all_success', 'all_done', 'none_failed', 'one_success',
                      'one_failed', 'all_failed'));

-- tr_patch_task takes the output.
DROP FUNCTION IF EXISTS tr_patch_task(uuid, task_status, bigint, bigint, boolean, jsonb, text,
                                      boolean, integer, text, integer, integer);

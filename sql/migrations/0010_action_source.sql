-- 0010: who chose an action: the task's author (POST /tasks) or its
-- executor (registered by an on_start answer, API.md "Webhooks sent by the
-- worker").
--
-- The worker says so on the call (X-Task-Action-Source: executor, see
-- docs/security.md), so tr_call carries it. Actions registered before this
-- column were numbered from 1000 on (tr_delivery_done_registering).

ALTER TABLE actions ADD COLUMN source text NOT NULL DEFAULT 'author'
    CHECK (source IN ('author', 'executor'));
UPDATE actions SET source = 'executor' WHERE trigger = 'Cancel' AND position >= 1000;

ALTER TYPE tr_call ADD ATTRIBUTE action_source text;

-- 0080: webhooks v2 (API.md, "Webhooks v2 (F8)").
--
-- actions.fire_when: the action's "when" ({"output"|"metadata": {"path",
-- "equals"|"in"|"exists"}}), decided when its task ends (tr_finish_task);
-- NULL: always fires.
ALTER TABLE actions ADD COLUMN fire_when jsonb;

-- tr_call.context: what the placeholders of the call's params read
-- ({"task": {...}, "metadata", "output", "parents": {<local id>: {"output"}}}),
-- built by tr_call_context only for params that hold "{{"; NULL otherwise.
ALTER TYPE tr_call ADD ATTRIBUTE context jsonb;

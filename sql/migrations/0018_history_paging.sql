-- 0018: GET /tasks/{id}/history is paged: tr_task_history takes a page
-- (sql/functions/tasks.sql); the one-argument version goes.
DROP FUNCTION IF EXISTS tr_task_history(uuid);
-- tr_lock_task checks the allowed statuses itself now.
DROP FUNCTION IF EXISTS tr_lock_task(uuid);

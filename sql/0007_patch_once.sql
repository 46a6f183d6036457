-- 0007: PATCH with a final status changes the task row once.
--
-- tr_patch_task (0002) first refreshed the heartbeat, deadline and counts,
-- then tr_finish_task changed the status: two updates of the row, each
-- writing every index of tasks (the deadline is indexed, so neither could
-- be a HOT update) and each firing the audit trigger. A PATCH that ends the
-- task skips the heartbeat now; counts and metadata given with it are still
-- applied first (with tr_finish_task's update there are then still two).
-- The lifecycle of the bench PATCHes {"status": "Success"} only.

CREATE OR REPLACE FUNCTION tr_patch_task(p_id uuid, p_status text, p_new_success bigint,
                              p_new_failures bigint, p_set_metadata boolean, p_metadata jsonb,
                              p_failure_reason text, p_actor text,
                              OUT code integer, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    v_status   text;
    v_success  bigint;
    v_failures bigint;
BEGIN
    PERFORM tr_set_actor(p_actor);
    SELECT status INTO v_status FROM tasks WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        code := 404; body := 'task not found'; RETURN;
    END IF;
    IF v_status NOT IN ('Claimed', 'Running') THEN
        code := 409; body := format('task is %s; only a Claimed or Running task accepts updates', v_status);
        RETURN;
    END IF;
    IF p_status IS NULL THEN
        -- Progress: counts, metadata, and the heartbeat that keeps it alive.
        UPDATE tasks
        SET success = success + coalesce(p_new_success, 0),
            failures = failures + coalesce(p_new_failures, 0),
            metadata = CASE WHEN p_set_metadata THEN p_metadata ELSE metadata END,
            started_at = coalesce(started_at, now()),
            heartbeat_at = now(),
            deadline_at = CASE WHEN status = 'Running'
                               THEN now() + make_interval(secs => timeout) END,
            last_updated = now()
        WHERE id = p_id
        RETURNING success, failures INTO v_success, v_failures;
    ELSIF coalesce(p_new_success, 0) <> 0 OR coalesce(p_new_failures, 0) <> 0
          OR p_set_metadata THEN
        -- The end, with last counts or metadata: those now, the rest (status,
        -- times, deadline) in tr_finish_task; no heartbeat for a task that
        -- ends in this transaction.
        UPDATE tasks
        SET success = success + coalesce(p_new_success, 0),
            failures = failures + coalesce(p_new_failures, 0),
            metadata = CASE WHEN p_set_metadata THEN p_metadata ELSE metadata END,
            started_at = coalesce(started_at, now())
        WHERE id = p_id
        RETURNING success, failures INTO v_success, v_failures;
    ELSE
        -- Only the end (the common PATCH): the row changes once, below.
        UPDATE tasks SET started_at = now() WHERE id = p_id AND started_at IS NULL;
        SELECT success, failures INTO v_success, v_failures FROM tasks WHERE id = p_id;
    END IF;
    PERFORM tr_task_event(p_id, 'updated', v_status, v_status, jsonb_strip_nulls(jsonb_build_object(
        'new_success', coalesce(p_new_success, 0), 'new_failures', coalesce(p_new_failures, 0),
        'success', v_success, 'failures', v_failures, 'status', p_status,
        'metadata_replaced', CASE WHEN p_set_metadata THEN true END)));
    IF p_status IS NOT NULL THEN
        PERFORM tr_finish_task(p_id, p_status,
                               CASE WHEN p_status = 'Failure' THEN p_failure_reason END);
    END IF;
    SELECT 200, tr_task_json(t)::text INTO code, body FROM tasks t WHERE t.id = p_id;
END
$$;

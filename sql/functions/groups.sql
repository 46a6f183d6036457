-- groups: the API's group endpoints (fcgi/groups.c) and the holds of groups
-- and batches (API.md, "Groups, batch controls and preemption").
--
-- A hold keeps the tasks of a group (a batch) from starting without changing
-- their statuses: it sets a bit of tasks.held (1: group, 2: batch) on every
-- task of it, and the claim takes only tasks with held = 0 (claim.sql). The
-- hold's row (groups, batches) is locked FOR UPDATE while the bits change;
-- a creation into a group reads its hold under FOR SHARE of that row
-- (tr_create_batch), so a task created while a pause commits is held too.
-- A task the claim took before the pause committed had started before the
-- hold: the pause's UPDATE waits for the claim's row lock and then sees it
-- Claimed. Every task of the group gets the bit, ended ones included, so a
-- re-run (POST /tasks/{id}/retry) of a held task stays held.

-- The JSON of group p_group's counts (GET /groups/{group}), or NULL when
-- no such group was ever named. The counts come from task_counts
-- (counts.sql); the oldest Pending task from tasks_group_status_idx.
CREATE OR REPLACE FUNCTION tr_group_json(p_group text) RETURNS json
LANGUAGE plpgsql STABLE AS $$
DECLARE
    g groups;
    v json;
BEGIN
    SELECT * INTO g FROM groups WHERE name = p_group;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    SELECT json_build_object(
               'group', g.name, 'paused', g.paused,
               'total', coalesce(sum(c.n), 0),
               'by_status', coalesce(json_object_agg(c.status, c.n ORDER BY c.status)
                                     FILTER (WHERE c.n <> 0), '{}'),
               'success', coalesce(sum(c.success), 0),
               'failures', coalesce(sum(c.failures), 0),
               'oldest_pending_at', (SELECT tr_ts(min(t.created_at)) FROM tasks t
                                     WHERE t.grp = g.name AND t.status = 'Pending'),
               'paused_at', tr_ts(g.paused_at), 'paused_by', g.paused_by)
    INTO v
    FROM tr_counts('g', g.name) c;
    RETURN v;
END
$$;

-- GET /groups/{group}
CREATE OR REPLACE FUNCTION tr_get_group(p_group text, OUT code integer, OUT body text)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    body := tr_group_json(p_group)::text;
    IF body IS NULL THEN
        PERFORM tr_raise_not_found('group');
    END IF;
    code := 200;
END
$$;

-- GET /groups: one page of groups by name, each with its counts (task_counts).
CREATE OR REPLACE FUNCTION tr_list_groups(p_limit bigint, p_offset bigint,
                                          OUT code integer, OUT body text)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    code := 200;
    SELECT coalesce(json_agg(json_build_object(
               'group', g.name, 'total', c.total, 'by_status', c.by_status,
               'paused', g.paused) ORDER BY g.name), '[]')::text
    INTO body
    FROM (SELECT * FROM groups ORDER BY name LIMIT p_limit OFFSET p_offset) g
    CROSS JOIN LATERAL (
        SELECT coalesce(sum(c.n), 0) AS total,
               coalesce(json_object_agg(c.status, c.n ORDER BY c.status)
                        FILTER (WHERE c.n <> 0), '{}') AS by_status
        FROM tr_counts('g', g.name) c) c;
END
$$;

-- The groups of a batch being created (p_tasks, as tr_create_batch takes
-- it): listed in groups if new, and those on hold returned, read under FOR
-- SHARE of their rows (held until the creation commits; a pause waits).
CREATE OR REPLACE FUNCTION tr_groups_for_create(p_tasks jsonb) RETURNS text[]
LANGUAGE plpgsql AS $$
DECLARE
    v_names text[];
    v_held  text[];
BEGIN
    SELECT array_agg(DISTINCT e ->> 'group' ORDER BY e ->> 'group') INTO v_names
    FROM jsonb_array_elements(p_tasks) e WHERE e ->> 'group' IS NOT NULL;
    IF v_names IS NULL THEN
        RETURN '{}';
    END IF;
    INSERT INTO groups (name) SELECT unnest(v_names) ORDER BY 1 ON CONFLICT DO NOTHING;
    SELECT coalesce(array_agg(g.name) FILTER (WHERE g.paused), '{}') INTO v_held
    FROM (SELECT name, paused FROM groups WHERE name = ANY (v_names)
          ORDER BY name FOR SHARE) g;
    RETURN v_held;
END
$$;

-- Sets (p_pause) or clears the hold bit p_bit on the tasks p_where selects
-- (a group's or a batch's: every task of it); writes a p_event history event
-- on each task that has not ended; on a release, lists the lanes of the
-- tasks now free and wakes the workers. Returns how many tasks changed.
CREATE OR REPLACE FUNCTION tr_hold_tasks(p_group text, p_batch uuid, p_bit integer,
                                         p_pause boolean, p_event text, p_detail jsonb)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_n    integer;
    v_free uuid[];
BEGIN
    WITH h AS (
        UPDATE tasks t
        SET held = CASE WHEN p_pause THEN t.held | p_bit ELSE t.held & ~p_bit END
        WHERE (t.grp = p_group OR t.batch_id = p_batch)
          AND (t.held & p_bit <> 0) <> p_pause
        RETURNING t.id, t.seq, t.status, t.held
    ), ev AS (
        INSERT INTO task_events (task_id, event, actor, from_status, to_status, detail)
        SELECT h.id, p_event, tr_actor(), h.status, h.status, p_detail
        FROM h WHERE NOT tr_is_terminal(h.status) ORDER BY h.seq
    )
    SELECT count(*), array_agg(h.id) FILTER (WHERE h.held = 0 AND h.status = 'Pending')
    INTO v_n, v_free FROM h;
    IF v_free IS NOT NULL THEN
        PERFORM tr_lanes_add(v_free);
        PERFORM tr_wake();
    END IF;
    RETURN v_n;
END
$$;

-- POST /groups/{group}/pause and /resume (p_pause false). A group not yet
-- named is made: tasks created into it later are held from the start.
-- Pausing a paused group (resuming a running one) changes nothing.
CREATE OR REPLACE FUNCTION tr_hold_group(p_group text, p_pause boolean, p_actor text,
                                         OUT code integer, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    v_was boolean;
BEGIN
    PERFORM tr_set_actor(p_actor);
    INSERT INTO groups (name) VALUES (p_group) ON CONFLICT DO NOTHING;
    SELECT paused INTO v_was FROM groups WHERE name = p_group FOR UPDATE;
    IF v_was IS DISTINCT FROM p_pause THEN
        UPDATE groups SET paused = p_pause, paused_at = now(), paused_by = p_actor
        WHERE name = p_group;
        PERFORM tr_hold_tasks(p_group, NULL, 1, p_pause,
                              CASE WHEN p_pause THEN 'group_paused' ELSE 'group_resumed' END,
                              jsonb_build_object('group', p_group));
    END IF;
    code := 200;
    body := tr_group_json(p_group)::text;
END
$$;

-- DELETE /groups/{group}: cancels every task of the group that has not
-- ended (their cancel actions fire for those that had started); its
-- tasks that required one of them are canceled too, not failed.
CREATE OR REPLACE FUNCTION tr_cancel_group(p_group text, p_actor text,
                                           OUT code integer, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    PERFORM tr_set_actor(p_actor);
    PERFORM 1 FROM groups WHERE name = p_group FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM tr_raise_not_found('group');
    END IF;
    FOR r IN SELECT id FROM tasks WHERE grp = p_group AND NOT tr_is_terminal(status)
             ORDER BY seq
    LOOP
        PERFORM tr_finish_task(r.id, 'Canceled', NULL, false, NULL, p_group);
    END LOOP;
    code := 200;
    body := tr_group_json(p_group)::text;
END
$$;

-- POST /batches/{id}/pause and /resume (p_pause false): the same hold for
-- a batch. Answers the batch's stats.
CREATE OR REPLACE FUNCTION tr_hold_batch(p_batch uuid, p_pause boolean, p_actor text,
                                         OUT code integer, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    v_was boolean;
BEGIN
    PERFORM tr_set_actor(p_actor);
    SELECT paused INTO v_was FROM batches WHERE id = p_batch FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM tr_raise_not_found('batch');
    END IF;
    IF v_was <> p_pause THEN
        UPDATE batches SET paused = p_pause, paused_at = now(), paused_by = p_actor
        WHERE id = p_batch;
        PERFORM tr_hold_tasks(NULL, p_batch, 2, p_pause,
                              CASE WHEN p_pause THEN 'batch_paused' ELSE 'batch_resumed' END,
                              jsonb_build_object('batch_id', p_batch));
    END IF;
    SELECT s.code, s.body INTO code, body FROM tr_batch_stats(p_batch) s;
END
$$;

-- schedules: the /schedules endpoints (fcgi/schedules.c) and the worker's
-- firing of due schedules (worker/loop.c).
--
-- A schedule's next_fire_at is the first slot of its cron expression neither
-- fired nor skipped. The worker takes the due schedules (tr_due_schedules),
-- validates each one's template again in C (fresh task ids every time) and
-- fires it with tr_fire_schedule, which locks the schedule's row (SKIP
-- LOCKED), applies the catch-up and overlap policies, creates the batch
-- (tr_create_batch) and moves next_fire_at on, all in one transaction: a
-- slot makes one batch whatever the number of workers, and a crash before
-- the commit leaves the slot due. The unique (schedule_id, scheduled_for)
-- of batches would refuse a second batch for a slot in any case.
--
-- A schedule is named in paths by its id or its name (names are never
-- UUIDs). Every change and every firing is written to schedule_events,
-- read by GET /schedules/{id}/history.

-- The id of the schedule p_key names (an id or a name); raises not found.
CREATE OR REPLACE FUNCTION tr_schedule_id(p_key text) RETURNS uuid
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_id uuid;
BEGIN
    IF p_key ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN
        SELECT id INTO v_id FROM schedules WHERE id = p_key::uuid;
    ELSE
        SELECT id INTO v_id FROM schedules WHERE name = p_key;
    END IF;
    IF v_id IS NULL THEN
        PERFORM tr_raise_not_found('schedule');
    END IF;
    RETURN v_id;
END
$$;

-- Locks the schedule p_key names and returns its row; raises not found.
CREATE OR REPLACE FUNCTION tr_lock_schedule(p_key text) RETURNS schedules
LANGUAGE plpgsql AS $$
DECLARE
    s schedules;
BEGIN
    SELECT * INTO s FROM schedules WHERE id = tr_schedule_id(p_key) FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM tr_raise_not_found('schedule');
    END IF;
    RETURN s;
END
$$;

-- The schedule object of the API. next_fire_times: the next five slots
-- after now (those of a paused schedule if it were resumed now).
CREATE OR REPLACE FUNCTION tr_schedule_json(s schedules) RETURNS json
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN json_build_object(
        'id', s.id, 'name', s.name, 'cron', s.cron, 'timezone', s.timezone,
        'overlap', s.overlap, 'catchup', s.catchup, 'paused', s.paused,
        'next_fire_times', (SELECT coalesce(json_agg(tr_ts(t) ORDER BY t), '[]')
                            FROM unnest(tr_cron_next_times(s.spec, s.timezone, now(), 5)) t),
        'last_fired_at', tr_ts(s.last_fired_at), 'last_batch_id', s.last_batch_id,
        'tasks', s.template, 'requester', s.requester,
        'created_at', tr_ts(s.created_at), 'updated_at', tr_ts(s.updated_at));
END
$$;

-- Writes one event of schedule p_id's history, by the current actor.
CREATE OR REPLACE FUNCTION tr_schedule_event(p_id uuid, p_event text, p_slot timestamptz,
                                             p_batch uuid, p_detail jsonb) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO schedule_events (schedule_id, event, slot, batch_id, actor, detail)
    VALUES (p_id, p_event, p_slot, p_batch, tr_actor(), coalesce(p_detail, '{}'))
$$;

-- The problems of a cron expression and a time zone (NULL: not given), as
-- [{"field", "message"}] for the validation answer of the responder.
CREATE OR REPLACE FUNCTION tr_schedule_problems(p_cron text, p_tz text) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v       jsonb := '[]';
    v_why   text;
BEGIN
    IF p_cron IS NOT NULL THEN
        v_why := tr_cron_problem(p_cron);
        IF v_why IS NOT NULL THEN
            v := v || jsonb_build_object('field', 'cron', 'message', v_why);
        END IF;
    END IF;
    IF p_tz IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = p_tz) THEN
        v := v || jsonb_build_object('field', 'timezone', 'message',
                                     format('"%s" is not a known IANA time zone', p_tz));
    END IF;
    RETURN v;
END
$$;

-- POST /schedules: p_template is the batch as given (the responder has
-- validated it, and the cron expression and time zone with
-- tr_schedule_problems). 409 when the name is taken.
CREATE OR REPLACE FUNCTION tr_create_schedule(p_id uuid, p_name text, p_cron text, p_tz text,
                                              p_template jsonb, p_overlap text, p_catchup text,
                                              p_paused boolean, p_requester text, p_actor text,
                                              OUT code integer, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    v_spec jsonb := tr_cron_parse(p_cron);
    s      schedules;
BEGIN
    PERFORM tr_set_actor(p_actor);
    INSERT INTO schedules (id, name, cron, spec, timezone, template, overlap, catchup, paused,
                           next_fire_at, requester)
    VALUES (p_id, p_name, p_cron, v_spec, p_tz, p_template, p_overlap, p_catchup, p_paused,
            tr_cron_next(v_spec, p_tz, now()), p_requester)
    ON CONFLICT (name) DO NOTHING
    RETURNING * INTO s;
    IF NOT FOUND THEN
        PERFORM tr_raise_wrong_state(format('a schedule named "%s" already exists', p_name));
    END IF;
    PERFORM tr_schedule_event(p_id, 'created', NULL, NULL, jsonb_build_object(
        'cron', p_cron, 'timezone', p_tz, 'overlap', p_overlap, 'catchup', p_catchup,
        'paused', p_paused));
    PERFORM tr_wake();
    code := 201;
    body := tr_schedule_json(s)::text;
END
$$;

-- GET /schedules: one page, by name.
CREATE OR REPLACE FUNCTION tr_list_schedules(p_limit bigint, p_offset bigint,
                                             OUT code integer, OUT body text)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    code := 200;
    SELECT coalesce(json_agg(tr_schedule_json(s) ORDER BY s.name), '[]')::text INTO body
    FROM (SELECT * FROM schedules ORDER BY name LIMIT p_limit OFFSET p_offset) s;
END
$$;

-- GET /schedules/{id|name}
CREATE OR REPLACE FUNCTION tr_get_schedule(p_key text, OUT code integer, OUT body text)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    code := 200;
    SELECT tr_schedule_json(s)::text INTO body FROM schedules s WHERE s.id = tr_schedule_id(p_key);
END
$$;

-- PATCH /schedules/{id|name}: each argument that is not NULL replaces its
-- field. A new expression or time zone starts again from the next slot
-- after now; pausing and resuming as POST .../pause and .../resume.
CREATE OR REPLACE FUNCTION tr_patch_schedule(p_key text, p_cron text, p_tz text,
                                             p_template jsonb, p_overlap text, p_catchup text,
                                             p_paused boolean, p_actor text,
                                             OUT code integer, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    s      schedules;
    v_spec jsonb;
BEGIN
    PERFORM tr_set_actor(p_actor);
    s := tr_lock_schedule(p_key);
    v_spec := CASE WHEN p_cron IS NOT NULL THEN tr_cron_parse(p_cron) ELSE s.spec END;
    UPDATE schedules
    SET cron = coalesce(p_cron, cron), spec = v_spec, timezone = coalesce(p_tz, timezone),
        template = coalesce(p_template, template), overlap = coalesce(p_overlap, overlap),
        catchup = coalesce(p_catchup, catchup), paused = coalesce(p_paused, paused),
        next_fire_at = CASE WHEN p_cron IS NOT NULL OR p_tz IS NOT NULL
                            THEN tr_cron_next(v_spec, coalesce(p_tz, timezone), now())
                            ELSE next_fire_at END,
        updated_at = now()
    WHERE id = s.id
    RETURNING * INTO s;
    PERFORM tr_schedule_event(s.id, 'updated', NULL, NULL, jsonb_strip_nulls(jsonb_build_object(
        'cron', p_cron, 'timezone', p_tz, 'tasks', CASE WHEN p_template IS NOT NULL THEN true END,
        'overlap', p_overlap, 'catchup', p_catchup, 'paused', p_paused)));
    PERFORM tr_wake();
    code := 200;
    body := tr_schedule_json(s)::text;
END
$$;

-- DELETE /schedules/{id|name}: the batches it made stay (their schedule_id
-- names a schedule that no longer exists), its history goes with it.
CREATE OR REPLACE FUNCTION tr_delete_schedule(p_key text, p_actor text,
                                              OUT code integer, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    s schedules;
BEGIN
    PERFORM tr_set_actor(p_actor);
    s := tr_lock_schedule(p_key);
    DELETE FROM schedule_events WHERE schedule_id = s.id;
    DELETE FROM schedules WHERE id = s.id;
    code := 204;
    body := '';
END
$$;

-- POST /schedules/{id|name}/pause and /resume. A resumed schedule keeps its
-- next_fire_at: the slots missed while paused are caught up as its catchup
-- says.
CREATE OR REPLACE FUNCTION tr_pause_schedule(p_key text, p_paused boolean, p_actor text,
                                             OUT code integer, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    s schedules;
BEGIN
    PERFORM tr_set_actor(p_actor);
    s := tr_lock_schedule(p_key);
    IF s.paused = p_paused THEN
        PERFORM tr_raise_wrong_state(format('schedule is already %s',
                                            CASE WHEN p_paused THEN 'paused' ELSE 'running' END));
    END IF;
    UPDATE schedules SET paused = p_paused, updated_at = now() WHERE id = s.id RETURNING * INTO s;
    PERFORM tr_schedule_event(s.id, CASE WHEN p_paused THEN 'paused' ELSE 'resumed' END,
                              NULL, NULL, NULL);
    PERFORM tr_wake();
    code := 200;
    body := tr_schedule_json(s)::text;
END
$$;

-- The id and template of the schedule p_key names (POST .../trigger
-- validates the template before firing it).
CREATE OR REPLACE FUNCTION tr_schedule_template(p_key text, OUT id uuid, OUT template jsonb)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    SELECT s.id, s.template INTO id, template FROM schedules s WHERE s.id = tr_schedule_id(p_key);
END
$$;

-- Whether a batch of the schedule is still running: its open_batches
-- without those whose every task has ended.
CREATE OR REPLACE FUNCTION tr_schedule_open_batches(s schedules) RETURNS uuid[]
LANGUAGE sql STABLE AS $$
    SELECT coalesce(array_agg(b ORDER BY n), '{}')
    FROM unnest(s.open_batches) WITH ORDINALITY AS x (b, n)
    WHERE EXISTS (SELECT 1 FROM tasks t WHERE t.batch_id = x.b AND NOT tr_is_terminal(t.status))
$$;

-- Creates the batch of a firing of s for slot p_slot (or of a trigger),
-- its actor schedule:<name>. Returns the tr_create_batch answer.
CREATE OR REPLACE FUNCTION tr_schedule_batch(s schedules, p_slot timestamptz, p_batch uuid,
                                             p_tasks jsonb, OUT code integer,
                                             OUT batch_id uuid, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    v_actor text := 'schedule:' || s.name;
BEGIN
    SELECT c.code, c.batch_id, c.body INTO code, batch_id, body
    FROM tr_create_batch(p_batch, v_actor, NULL, NULL, p_tasks, v_actor) c;
    UPDATE batches b SET schedule_id = s.id, scheduled_for = p_slot WHERE b.id = p_batch;
END
$$;

-- POST /schedules/{id|name}/trigger: fires once now, whatever the overlap
-- policy, with p_tasks the template the responder validated (new ids).
-- Answers as POST /tasks, with the batch id.
CREATE OR REPLACE FUNCTION tr_trigger_schedule(p_key text, p_batch uuid, p_tasks jsonb,
                                               p_actor text, OUT code integer,
                                               OUT batch_id uuid, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    s schedules;
BEGIN
    PERFORM tr_set_actor(p_actor);
    s := tr_lock_schedule(p_key);
    SELECT c.code, c.batch_id, c.body INTO code, batch_id, body
    FROM tr_schedule_batch(s, now(), p_batch, p_tasks) c;
    PERFORM tr_set_actor(p_actor);
    UPDATE schedules
    SET last_fired_at = now(), last_batch_id = p_batch,
        open_batches = tr_schedule_open_batches(s) || p_batch
    WHERE id = s.id;
    PERFORM tr_schedule_event(s.id, 'triggered', now(), p_batch, NULL);
    PERFORM tr_metric_add('taskrunner_schedule_firings_total', '{"outcome": "triggered"}', 1);
END
$$;

-- GET /schedules/{id|name}/history: one page, newest first.
CREATE OR REPLACE FUNCTION tr_schedule_history(p_key text, p_limit bigint, p_offset bigint,
                                               OUT code integer, OUT body text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_id uuid := tr_schedule_id(p_key);
BEGIN
    code := 200;
    SELECT coalesce(json_agg(json_build_object(
               'at', tr_ts(e.at), 'event', e.event, 'slot', tr_ts(e.slot),
               'batch_id', e.batch_id, 'actor', e.actor, 'detail', e.detail)
           ORDER BY e.id DESC), '[]')::text
    INTO body
    FROM (SELECT * FROM schedule_events WHERE schedule_id = v_id
          ORDER BY id DESC LIMIT p_limit OFFSET p_offset) e;
END
$$;

-- ---------------------------------------------------------------- firing

-- The schedules due now (not paused, next_fire_at passed), earliest first,
-- at most p_limit: their slot and template. No lock: tr_fire_schedule
-- takes the row.
CREATE OR REPLACE FUNCTION tr_due_schedules(p_limit integer)
RETURNS TABLE (id uuid, slot timestamptz, template jsonb)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY
    SELECT s.id, s.next_fire_at, s.template FROM schedules s
    WHERE NOT s.paused AND s.next_fire_at <= now()
    ORDER BY s.next_fire_at LIMIT p_limit;
END
$$;

-- Fires schedule p_id for its due slot p_slot, unless another worker has
-- it or has done it (outcome "gone"). p_tasks: the template the worker
-- validated again (new ids), or NULL with p_problems (the validation's
-- [{"field", "message"}]) when it no longer passes: the firing fails,
-- visibly. The catch-up policy picks the slot that fires among those due:
-- "all" the earliest of the last 100, "latest" the last one, "none" the last
-- one if it is less than a minute old (the others are skipped); then the
-- overlap policy: "skip" while a batch of an earlier firing has a task not
-- ended, "cancel_previous" cancels those batches first, "allow" fires.
-- outcome: fired, skipped_overlap, skipped_catchup, failed or gone;
-- delay_ms: from the slot to the batch; more: the schedule is due again
-- already (catch-up of "all").
CREATE OR REPLACE FUNCTION tr_fire_schedule(p_id uuid, p_slot timestamptz, p_batch uuid,
                                            p_tasks jsonb, p_problems jsonb,
                                            OUT outcome text, OUT delay_ms bigint,
                                            OUT more boolean)
LANGUAGE plpgsql AS $$
DECLARE
    s       schedules;
    v_actor text;
    v_slots timestamptz[];
    v_fire  timestamptz;
    v_next  timestamptz;
    v_open  uuid[];
    v_b     uuid;
BEGIN
    more := false;
    -- By the primary key (many schedules may share a slot), then the slot.
    SELECT * INTO s FROM schedules WHERE schedules.id = p_id FOR UPDATE SKIP LOCKED;
    IF NOT FOUND OR s.paused OR s.next_fire_at IS DISTINCT FROM p_slot THEN
        outcome := 'gone';
        RETURN;
    END IF;
    v_actor := 'schedule:' || s.name;
    PERFORM tr_set_actor(v_actor);

    -- Catch-up: which of the due slots fires.
    v_slots := tr_cron_last_times(s.spec, s.timezone, s.next_fire_at - interval '1 microsecond',
                                  now(), CASE WHEN s.catchup = 'all' THEN 100 ELSE 1 END);
    v_fire := v_slots[1];
    IF v_fire IS NULL THEN
        -- The expression no longer gives this slot (a change of the zone's
        -- rules): start again from now.
        v_next := tr_cron_next(s.spec, s.timezone, now());
        outcome := 'skipped_catchup';
        PERFORM tr_schedule_event(s.id, 'skipped', s.next_fire_at, NULL,
                                  '{"reason": "catchup"}');
    ELSE
        IF v_fire > s.next_fire_at THEN
            PERFORM tr_schedule_event(s.id, 'skipped', s.next_fire_at, NULL, jsonb_build_object(
                'reason', 'catchup', 'first', tr_ts(s.next_fire_at), 'before', tr_ts(v_fire)));
        END IF;
        v_next := coalesce(v_slots[2], tr_cron_next(s.spec, s.timezone, v_fire));
        IF s.catchup = 'none' AND now() - v_fire > interval '1 minute' THEN
            PERFORM tr_schedule_event(s.id, 'skipped', v_fire, NULL,
                                      '{"reason": "catchup"}');
            outcome := 'skipped_catchup';
            v_fire := NULL;
        END IF;
    END IF;

    -- Overlap: the batches of earlier firings still running.
    v_open := tr_schedule_open_batches(s);
    IF v_fire IS NOT NULL AND cardinality(v_open) > 0 THEN
        IF s.overlap = 'skip' THEN
            PERFORM tr_schedule_event(s.id, 'skipped', v_fire, NULL, jsonb_build_object(
                'reason', 'overlap', 'running', to_jsonb(v_open)));
            outcome := 'skipped_overlap';
            v_fire := NULL;
        ELSIF s.overlap = 'cancel_previous' THEN
            FOREACH v_b IN ARRAY v_open LOOP
                PERFORM tr_stop_batch(v_b, v_actor);
            END LOOP;
            PERFORM tr_schedule_event(s.id, 'canceled_previous', v_fire, NULL,
                                      jsonb_build_object('batches', to_jsonb(v_open)));
            v_open := '{}';
        END IF;
    END IF;

    IF v_fire IS NOT NULL AND p_tasks IS NULL THEN
        PERFORM tr_schedule_event(s.id, 'failed', v_fire, NULL, jsonb_build_object(
            'reason', 'invalid template', 'fields', coalesce(p_problems, '[]')));
        outcome := 'failed';
    ELSIF v_fire IS NOT NULL THEN
        BEGIN
            PERFORM tr_schedule_batch(s, v_fire, p_batch, p_tasks);
            PERFORM tr_set_actor(v_actor);
            PERFORM tr_schedule_event(s.id, 'fired', v_fire, p_batch, NULL);
            v_open := v_open || p_batch;
            s.last_fired_at := now();
            s.last_batch_id := p_batch;
            outcome := 'fired';
        EXCEPTION WHEN OTHERS THEN
            PERFORM tr_set_actor(v_actor);
            PERFORM tr_schedule_event(s.id, 'failed', v_fire, NULL, jsonb_build_object(
                'reason', SQLERRM, 'sqlstate', SQLSTATE));
            outcome := 'failed';
        END;
        delay_ms := (extract(epoch FROM clock_timestamp() - v_fire) * 1000)::bigint;
    END IF;

    UPDATE schedules
    SET next_fire_at = v_next, open_batches = v_open,
        last_fired_at = s.last_fired_at, last_batch_id = s.last_batch_id
    WHERE schedules.id = s.id;
    PERFORM tr_metric_add('taskrunner_schedule_firings_total',
                          jsonb_build_object('outcome', outcome), 1);
    more := coalesce(v_next <= now(), false);
END
$$;

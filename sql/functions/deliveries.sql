-- deliveries: the outbox of webhook calls. A *delivery* is one call for a
-- task (a row of deliveries), an *attempt* one HTTP try of it:
--   queued -> inflight -> done | dead (end/cancel calls that failed every attempt)
--                              | failed (on_start calls that failed every attempt)
-- The worker takes due deliveries, makes the calls and records their
-- outcomes here; the API reads and replays dead letters. Each attempt's
-- outcome is a "webhook" event of its task, with the actor "worker".

-- The Idempotency-Key of a call: <task>:<trigger>[:<outcome>]:<action>,
-- the same for every attempt.
CREATE OR REPLACE FUNCTION tr_idem_key(p_task uuid, p_trigger webhook_trigger,
                                       p_outcome task_status, p_action uuid)
RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT p_task || ':' || lower(p_trigger::text)
           || CASE WHEN p_trigger = 'End' THEN ':' || lower(p_outcome::text) ELSE '' END
           || ':' || p_action
$$;

-- Takes up to p_limit queued deliveries that are due, oldest first, for
-- p_owner until p_lease from now.
CREATE OR REPLACE FUNCTION tr_take_deliveries(p_owner integer, p_limit integer,
                                              p_lease_ms integer)
RETURNS SETOF tr_call
LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY
    WITH due AS (
        SELECT id, action_id FROM deliveries
        WHERE state = 'queued' AND next_at <= now()
        ORDER BY next_at
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    ), taken AS (
        UPDATE deliveries d
        SET state = 'inflight', attempts = d.attempts + 1, owner = p_owner,
            lease_until = now() + tr_call_lease(p_lease_ms, cp.params)
        FROM due JOIN actions x ON x.id = due.action_id
        CROSS JOIN LATERAL tr_action_call_params(x) cp
        WHERE d.id = due.id
        RETURNING d.*
    )
    -- A cancel call of a preemption reports Preempted, and its key names the
    -- attempt preempted: each preemption's call is another call.
    SELECT k.id, k.task_id, t.batch_id, k.trigger::text,
           CASE WHEN k.preempted THEN 'Preempted' ELSE k.outcome::text END, p.params, k.attempts,
           k.attempt,
           CASE WHEN k.preempted
                THEN k.task_id || ':cancel:preempted:' || k.attempt || ':' || k.action_id
                ELSE tr_idem_key(k.task_id, k.trigger, k.outcome, k.action_id) END,
           a.source, tr_call_context(k.task_id, p.params)
    FROM taken k JOIN tasks t ON t.id = k.task_id JOIN actions a ON a.id = k.action_id
    -- a template's params as they are now, the placeholders' context for them
    CROSS JOIN LATERAL tr_action_call_params(a) p
    ORDER BY k.id;
END
$$;

-- Puts back the deliveries of dead workers (whose owner lock is gone) and
-- those whose lease ran out, so they are made again (same idempotency key).
-- A start call whose task has moved on meanwhile (ended, canceled, or started
-- again) is not made again.
CREATE OR REPLACE FUNCTION tr_recover_deliveries() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_n integer;
BEGIN
    WITH orphaned AS (
        SELECT d.id, d.trigger = 'Start' AND NOT EXISTS (
                   SELECT 1 FROM tasks t WHERE t.id = d.task_id AND t.status = 'Claimed'
                     AND t.attempt = d.attempt) AS moot
        FROM deliveries d
        WHERE d.state = 'inflight'
          AND (d.lease_until < now()
               OR NOT EXISTS (SELECT 1 FROM pg_locks l
                              WHERE l.locktype = 'advisory' AND l.granted
                                AND l.classid = tr_worker_lock_class()::oid
                                AND l.objid = d.owner::oid AND l.objsubid = 2))
        FOR UPDATE OF d SKIP LOCKED
    ), back AS (
        UPDATE deliveries d
        SET state = CASE WHEN o.moot THEN 'done' ELSE 'queued' END,
            finished_at = CASE WHEN o.moot THEN now() END,
            last_error = CASE WHEN o.moot THEN 'task moved on while its worker was gone'
                              ELSE d.last_error END,
            next_at = now(), owner = NULL
        FROM orphaned o WHERE d.id = o.id
        RETURNING NOT o.moot AS requeued
    )
    SELECT count(*) FILTER (WHERE requeued)::integer INTO v_n FROM back;
    RETURN v_n;
END
$$;

-- The "webhook" event of one attempt of delivery d (see tr_webhook_detail).
CREATE OR REPLACE FUNCTION tr_webhook_event(d deliveries, p_outcome text, p_http_status integer,
                                            p_error text, p_duration_ms integer) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO task_events (task_id, event, actor, from_status, to_status, detail)
    SELECT d.task_id, 'webhook', tr_actor(), t.status, t.status,
           tr_webhook_detail(d.id, d.trigger, d.attempts, cp.params ->> 'url', p_outcome,
                             p_http_status, p_error, p_duration_ms)
    FROM tasks t, actions a CROSS JOIN LATERAL tr_action_call_params(a) cp
    WHERE t.id = d.task_id AND a.id = d.action_id;
END
$$;

-- Calls answered 2xx (p_ids, with their HTTP statuses and durations, in
-- delivery order): each delivery is done and its "webhook" event written;
-- the tasks whose start call it was become Running (unless they moved on
-- meanwhile, or started again). Set-based: the worker records every call of
-- a loop pass at once.
CREATE OR REPLACE FUNCTION tr_deliveries_done(p_ids bigint[], p_http integer[], p_ms integer[])
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_tasks    uuid[];
    v_attempts integer[];
BEGIN
    WITH done AS (
        UPDATE deliveries d
        SET state = 'done', finished_at = now(), last_error = NULL, owner = NULL
        WHERE d.id = ANY (p_ids) AND d.state = 'inflight'
        RETURNING d.id, d.task_id, d.action_id, d.trigger, d.attempt, d.attempts
    ), events AS (
        INSERT INTO task_events (task_id, event, actor, from_status, to_status, detail)
        SELECT done.task_id, 'webhook', tr_actor(), t.status, t.status,
               tr_webhook_detail(done.id, done.trigger, done.attempts,
                                 cp.params ->> 'url', 'success', u.http, NULL, u.ms)
        FROM done
        JOIN unnest(p_ids, p_http, p_ms) AS u (id, http, ms) ON u.id = done.id
        JOIN tasks t ON t.id = done.task_id
        JOIN actions a ON a.id = done.action_id
        CROSS JOIN LATERAL tr_action_call_params(a) cp
        ORDER BY done.id
    )
    SELECT array_agg(done.task_id), array_agg(done.attempt)
    INTO v_tasks, v_attempts
    FROM done WHERE done.trigger = 'Start';

    IF v_tasks IS NOT NULL THEN
        PERFORM tr_move_tasks(v_tasks, 'Running', NULL, v_attempts);
    END IF;
END
$$;

-- A start call answered 2xx whose answer registers p_cancel_action (a
-- normalized action) as a cancel action of its task, chosen by the executor
-- (source 'executor': its calls say so); if the task was canceled
-- meanwhile, that action is fired at once. The registration is an event of
-- the task's history (action_registered), its URL masked.
CREATE OR REPLACE FUNCTION tr_delivery_done_registering(p_id bigint, p_cancel_action jsonb,
                                                        p_http_status integer,
                                                        p_duration_ms integer) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_task   uuid;
    v_status task_status;
    v_action uuid;
BEGIN
    SELECT task_id INTO v_task FROM deliveries WHERE id = p_id AND state = 'inflight';
    IF NOT FOUND THEN
        RETURN;
    END IF;
    PERFORM tr_deliveries_done(ARRAY[p_id], ARRAY[p_http_status], ARRAY[p_duration_ms]);
    SELECT status INTO v_status FROM tasks WHERE id = v_task FOR UPDATE;
    INSERT INTO actions (id, task_id, kind, trigger, condition, params, position, source)
    VALUES ((p_cancel_action ->> 'id')::uuid, v_task,
            coalesce(p_cancel_action ->> 'kind', 'Webhook'), 'Cancel', NULL,
            p_cancel_action -> 'params',
            1000 + (SELECT count(*) FROM actions WHERE task_id = v_task), 'executor')
    RETURNING id INTO v_action;
    PERFORM tr_task_event(v_task, 'action_registered', v_status, v_status, jsonb_build_object(
        'delivery_id', p_id, 'action_id', v_action, 'trigger', 'Cancel',
        'url', tr_mask_url(p_cancel_action -> 'params' ->> 'url'),
        'verb', p_cancel_action -> 'params' ->> 'verb'));
    IF v_status = 'Canceled' THEN
        INSERT INTO deliveries (task_id, action_id, trigger, outcome)
        VALUES (v_task, v_action, 'Cancel', 'Canceled');
        PERFORM tr_wake();
    END IF;
END
$$;

-- A start call answered 2xx whose answer was meant as a cancel action but
-- refused (p_reason: not strict JSON, not a valid action, too long to
-- read): the call succeeded all the same (the executor took the task), and
-- the refusal is an event of the task's history (action_refused).
CREATE OR REPLACE FUNCTION tr_delivery_done_refusing(p_id bigint, p_reason text,
                                                     p_http_status integer,
                                                     p_duration_ms integer) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_task   uuid;
    v_status task_status;
BEGIN
    SELECT task_id INTO v_task FROM deliveries WHERE id = p_id AND state = 'inflight';
    IF NOT FOUND THEN
        RETURN;
    END IF;
    PERFORM tr_deliveries_done(ARRAY[p_id], ARRAY[p_http_status], ARRAY[p_duration_ms]);
    SELECT status INTO v_status FROM tasks WHERE id = v_task;
    PERFORM tr_task_event(v_task, 'action_refused', v_status, v_status, jsonb_build_object(
        'delivery_id', p_id, 'trigger', 'Cancel', 'reason', p_reason));
END
$$;

-- A start call answered (2xx, or accepted by a response rule) whose
-- params.response asked more (API.md, "Webhooks v2"): p_set_output stores
-- p_output as the task's output, p_output_refused (why store_output did not)
-- goes into its history (output_not_stored), p_succeed ends the task Success
-- at once (a synchronous task). Both through tr_patch_task, as the
-- executor's PATCH would: same checks (the attempt still current), same
-- history, end actions and propagation. A task that moved on meanwhile is
-- left alone.
CREATE OR REPLACE FUNCTION tr_delivery_done_answer(p_id bigint, p_http_status integer,
                                                   p_duration_ms integer, p_succeed boolean,
                                                   p_set_output boolean, p_output jsonb,
                                                   p_output_refused text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    d         deliveries;
    v_status  task_status;
    v_attempt integer;
BEGIN
    SELECT * INTO d FROM deliveries WHERE id = p_id AND state = 'inflight';
    IF NOT FOUND THEN
        RETURN;
    END IF;
    PERFORM tr_deliveries_done(ARRAY[p_id], ARRAY[p_http_status], ARRAY[p_duration_ms]);
    IF d.trigger <> 'Start' THEN
        RETURN;
    END IF;
    SELECT status, attempt INTO v_status, v_attempt FROM tasks WHERE id = d.task_id FOR UPDATE;
    IF v_status NOT IN ('Claimed', 'Running') OR v_attempt <> d.attempt THEN
        RETURN;
    END IF;
    IF p_output_refused IS NOT NULL THEN
        PERFORM tr_task_event(d.task_id, 'output_not_stored', v_status, v_status,
                              jsonb_build_object('delivery_id', p_id, 'reason', p_output_refused));
    END IF;
    IF p_succeed OR p_set_output THEN
        PERFORM tr_patch_task(d.task_id, CASE WHEN p_succeed THEN 'Success'::task_status END,
                              0, 0, false, NULL, NULL, NULL, d.attempt, 'worker', NULL, NULL,
                              p_set_output, p_output);
    END IF;
END
$$;

-- A call failed (p_error; p_http_status, 0 without an answer; after
-- p_duration_ms). With p_retry_ms it is queued again that much later;
-- without, it has failed for good: a start call fails its task's attempt
-- (retried by the task's policy, or the task fails, fires its failure
-- actions and cascades), an end or cancel call becomes a dead
-- letter (counted in taskrunner_dead_letters_total). A start call of a task
-- that moved on (canceled, or ended by its executor) is not tried again.
CREATE OR REPLACE FUNCTION tr_delivery_failed(p_id bigint, p_error text, p_retry_ms integer,
                                              p_http_status integer, p_duration_ms integer)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    d deliveries;
BEGIN
    IF p_retry_ms IS NOT NULL AND EXISTS (
        SELECT 1 FROM deliveries x JOIN tasks t ON t.id = x.task_id
        WHERE x.id = p_id AND x.trigger = 'Start'
          AND (t.status <> 'Claimed' OR t.attempt <> x.attempt)) THEN
        UPDATE deliveries
        SET state = 'done', owner = NULL, last_error = p_error, finished_at = now()
        WHERE id = p_id AND state = 'inflight'
        RETURNING * INTO d;
        IF FOUND THEN
            PERFORM tr_webhook_event(d, 'dropped', p_http_status, p_error, p_duration_ms);
        END IF;
        RETURN;
    END IF;
    IF p_retry_ms IS NOT NULL THEN
        UPDATE deliveries
        SET state = 'queued', owner = NULL, last_error = p_error,
            next_at = now() + make_interval(secs => p_retry_ms / 1000.0)
        WHERE id = p_id AND state = 'inflight'
        RETURNING * INTO d;
        IF FOUND THEN
            PERFORM tr_webhook_event(d, 'retry', p_http_status, p_error, p_duration_ms);
        END IF;
        RETURN;
    END IF;
    UPDATE deliveries
    SET state = CASE WHEN trigger = 'Start' THEN 'failed' ELSE 'dead' END,
        owner = NULL, last_error = p_error, finished_at = now()
    WHERE id = p_id AND state = 'inflight'
    RETURNING * INTO d;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    PERFORM tr_webhook_event(d, d.state, p_http_status, p_error, p_duration_ms);
    IF d.state = 'dead' THEN
        PERFORM tr_metric_add('taskrunner_dead_letters_total', '{}', 1);
    END IF;
    IF d.trigger = 'Start' AND EXISTS (SELECT 1 FROM tasks WHERE id = d.task_id
                                       AND status = 'Claimed' AND attempt = d.attempt) THEN
        PERFORM tr_fail_attempt(d.task_id,
                                'on_start webhook failed after ' || d.attempts
                                || ' attempts: ' || p_error, 'start_failed');
    END IF;
END
$$;

-- The outcomes of many calls at once (a JSON array of {"id", "ok", "http",
-- "ms", and "cancel_action" or "refused" (a reason), or "error" and
-- "retry_ms"}), in one transaction:
-- the worker records everything that finished in one pass of its loop with
-- one round trip. The outcomes are read into arrays once (joined directly,
-- the JSON array was expanded again for every candidate row), and taken in
-- delivery order so that concurrent callers lock in the same order.
CREATE OR REPLACE FUNCTION tr_record_outcomes(p_outcomes jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    o      record;
    v_ids  bigint[];
    v_http integer[];
    v_ms   integer[];
BEGIN
    PERFORM tr_set_actor('worker');
    -- The common case, all at once: calls answered 2xx whose answer asks
    -- nothing.
    SELECT array_agg(x.id ORDER BY x.id), array_agg(x.http ORDER BY x.id),
           array_agg(x.ms ORDER BY x.id)
    INTO v_ids, v_http, v_ms
    FROM jsonb_to_recordset(p_outcomes)
         AS x (id bigint, ok boolean, http integer, ms integer, cancel_action jsonb,
               refused text, succeed boolean, set_output boolean, output_refused text)
    WHERE x.ok AND x.cancel_action IS NULL AND x.refused IS NULL AND x.succeed IS NULL
      AND x.set_output IS NULL AND x.output_refused IS NULL;
    IF v_ids IS NOT NULL THEN
        PERFORM tr_deliveries_done(v_ids, v_http, v_ms);
    END IF;

    FOR o IN SELECT x.*
             FROM jsonb_to_recordset(p_outcomes)
                  AS x (id bigint, ok boolean, http integer, ms integer, cancel_action jsonb,
                        refused text, error text, retry_ms integer, succeed boolean,
                        set_output boolean, output jsonb, output_refused text)
             WHERE NOT (x.ok AND x.cancel_action IS NULL AND x.refused IS NULL
                        AND x.succeed IS NULL AND x.set_output IS NULL
                        AND x.output_refused IS NULL)
             ORDER BY x.id
    LOOP
        IF o.ok AND (o.succeed OR o.set_output OR o.output_refused IS NOT NULL) THEN
            PERFORM tr_delivery_done_answer(o.id, o.http, o.ms, coalesce(o.succeed, false),
                                            coalesce(o.set_output, false), o.output,
                                            o.output_refused);
        ELSIF o.ok AND o.cancel_action IS NOT NULL THEN
            PERFORM tr_delivery_done_registering(o.id, o.cancel_action, o.http, o.ms);
        ELSIF o.ok THEN
            PERFORM tr_delivery_done_refusing(o.id, o.refused, o.http, o.ms);
        ELSE
            PERFORM tr_delivery_failed(o.id, o.error, o.retry_ms, o.http, o.ms);
        END IF;
    END LOOP;
END
$$;

-- ---------------------------------------------------------------- dead letters

-- GET /dead-letters: end and cancel calls that failed every attempt, newest
-- first, one page.
CREATE OR REPLACE FUNCTION tr_dead_letters(p_limit bigint, p_offset bigint,
                                           OUT code integer, OUT body text)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    code := 200;
    SELECT coalesce(json_agg(tr_dead_letter_json(d) ORDER BY d.finished_at DESC, d.id DESC),
                    '[]')::text
    INTO body
    FROM (SELECT * FROM deliveries WHERE state = 'dead'
          ORDER BY finished_at DESC, id DESC LIMIT p_limit OFFSET p_offset) d;
END
$$;

-- POST /dead-letters/{id}/replay: queues the call again, due now, with a
-- fresh set of attempts (and the same Idempotency-Key). Answers 202 with the
-- dead letter as it was; it leaves the list now, and comes back if every
-- attempt of the replay fails too.
CREATE OR REPLACE FUNCTION tr_replay_dead_letter(p_id bigint, p_actor text,
                                                 OUT code integer, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    d        deliveries;
    v_status task_status;
BEGIN
    PERFORM tr_set_actor(p_actor);
    SELECT * INTO d FROM deliveries WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM tr_raise_not_found('dead letter');
    END IF;
    IF d.state <> 'dead' THEN
        PERFORM tr_raise_wrong_state(format('delivery %s is %s, not a dead letter', p_id, d.state));
    END IF;
    body := tr_dead_letter_json(d)::text;
    UPDATE deliveries
    SET state = 'queued', attempts = 0, next_at = now(), finished_at = NULL, owner = NULL,
        lease_until = NULL
    WHERE id = p_id;
    SELECT status INTO v_status FROM tasks WHERE id = d.task_id;
    PERFORM tr_task_event(d.task_id, 'replay', v_status, v_status, jsonb_build_object(
        'delivery_id', d.id, 'trigger', d.trigger, 'attempts', d.attempts,
        'last_error', d.last_error));
    PERFORM tr_wake();
    code := 202;
END
$$;

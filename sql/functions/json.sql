-- json: the JSON shapes of the API's answers, each defined once: the full
-- task object, an action, a batch's tasks (the answer of POST /tasks), the
-- summary of a list entry, a dead letter, and the detail of a webhook event.
-- A webhook URL is shown with its credentials masked (tr_mask_url) wherever
-- it is shown: only the worker's call uses them.
--
-- The PL/pgSQL functions here keep their plans for the session (a SQL
-- function that cannot be inlined is parsed and planned on every call), and
-- every row they read is found by an index, so a plan made while the tables
-- were small stays good as they grow.

-- The full task object of GET /tasks/{id}, from the task row and what is
-- stored beside it: its actions, its dependencies (JSON arrays) and the
-- requester of its batch. tr_task_json (one task) and tr_batch_tasks_json
-- (a whole batch, set-based) feed it.
CREATE OR REPLACE FUNCTION tr_task_object(t tasks, p_actions json, p_dependencies json,
                                          p_requester text)
RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'id', t.id, 'local_id', t.local_id, 'name', t.name, 'kind', t.kind,
        'status', t.status, 'priority', t.priority, 'timeout', t.timeout,
        'metadata', t.metadata, 'rules', tr_rules_json(t.rules), 'fair_by', t.fair_by,
        'actions', coalesce(p_actions, '[]'), 'dependencies', coalesce(p_dependencies, '[]'),
        'created_at', tr_ts(t.created_at), 'started_at', tr_ts(t.started_at),
        'ended_at', tr_ts(t.ended_at), 'last_updated', tr_ts(t.last_updated),
        'success', t.success, 'failures', t.failures, 'expected_count', t.expected_count,
        'failure_reason', t.failure_reason, 'batch_id', t.batch_id, 'requester', p_requester,
        'max_retries', t.max_retries, 'retry_count', t.retry_count,
        'retry_backoff', coalesce(t.retry_backoff, tr_retry_backoff_default()),
        'next_retry_at', CASE WHEN t.status = 'Pending' THEN tr_ts(t.retry_at) END,
        'scheduled_at', tr_ts(t.scheduled_at),
        'trigger_rule', t.trigger_rule, 'output', t.output, 'group', t.grp,
        'preemptible', t.preemptible, 'deleted_at', tr_ts(t.deleted_at))
$$;

-- A webhook URL with the credentials of its authority ("user:pw@" of
-- "http://user:pw@host/") replaced by "***@": every byte up to the last '@'
-- before the first '/', '?' or '#' after "scheme://", as
-- url_mask_credentials does in C (shared/url.h). NULL stays NULL.
CREATE OR REPLACE FUNCTION tr_mask_url(p_url text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN strpos(p_url, '@') = 0 THEN p_url
                ELSE regexp_replace(p_url, '^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@', '\1***@')
           END
$$;

-- A JSON object (an action's params, a history event's detail) with its
-- "url" member masked by tr_mask_url. STABLE, as to_jsonb is.
CREATE OR REPLACE FUNCTION tr_mask_url_in(p jsonb) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN strpos(p ->> 'url', '@') > 0
                THEN jsonb_set(p, '{url}', to_jsonb(tr_mask_url(p ->> 'url')))
                ELSE p END
$$;

-- A rule as the original service wrote it, the spelling its client requires:
-- {"type": "Concurency", "max_concurency": n, "matcher": {...}} (stored as
-- "Concurrency" / "max_concurrency", the spelling rules.sql and claim.sql
-- read). Other keys pass through.
CREATE OR REPLACE FUNCTION tr_rule_json(r jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN r ->> 'type' = 'Concurrency'
                THEN (r - 'type' - 'max_concurrency')
                     || jsonb_build_object('type', 'Concurency',
                                           'max_concurency', r -> 'max_concurrency')
                ELSE r END
$$;

-- A task's rules array as the task object writes it (tr_rule_json each).
CREATE OR REPLACE FUNCTION tr_rules_json(p_rules jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN jsonb_array_length(p_rules) = 0 THEN p_rules
                ELSE (SELECT jsonb_agg(tr_rule_json(e.r) ORDER BY e.n)
                      FROM jsonb_array_elements(p_rules) WITH ORDINALITY AS e (r, n)) END
$$;

-- STABLE: json_build_object is; declared IMMUTABLE it would never be inlined.
-- p_params: the action's params as its call would be made now
-- (tr_action_call_params: its own, or a template's merged with them, the
-- template's name then shown as "ref").
CREATE OR REPLACE FUNCTION tr_action_json(a actions, p_params jsonb) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN a.template IS NULL AND a.fire_when IS NULL
                THEN json_build_object('id', a.id, 'kind', a.kind, 'trigger', a.trigger,
                                       'condition', a.condition,
                                       'params', tr_mask_url_in(p_params))
                WHEN a.template IS NULL
                THEN json_build_object('id', a.id, 'kind', a.kind, 'trigger', a.trigger,
                                       'condition', a.condition,
                                       'params', tr_mask_url_in(p_params),
                                       'when', a.fire_when)
                WHEN a.fire_when IS NULL
                THEN json_build_object('id', a.id, 'kind', a.kind, 'trigger', a.trigger,
                                       'condition', a.condition,
                                       'params', tr_mask_url_in(p_params),
                                       'ref', a.template)
                ELSE json_build_object('id', a.id, 'kind', a.kind, 'trigger', a.trigger,
                                       'condition', a.condition,
                                       'params', tr_mask_url_in(p_params),
                                       'when', a.fire_when, 'ref', a.template) END
$$;

-- One task. Each parent is looked up by its primary key (a join of links to
-- tasks, planned while tasks was small, once read every task for every
-- dependency). The dependencies subquery is written out here and in
-- tr_batch_tasks_json: a SQL function holding a subquery is never inlined.
CREATE OR REPLACE FUNCTION tr_task_json(t tasks) RETURNS json
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN tr_task_object(t,
        (SELECT json_agg(tr_action_json(a, cp.params) ORDER BY a.position)
         FROM actions a CROSS JOIN LATERAL tr_action_call_params(a) cp WHERE a.task_id = t.id),
        (SELECT json_agg(json_build_object('id', l.parent_id,
                                           'requires_success', l.requires_success)
                         ORDER BY (SELECT p.seq FROM tasks p WHERE p.id = l.parent_id))
         FROM task_links l WHERE l.child_id = t.id),
        (SELECT b.requester FROM batches b WHERE b.id = t.batch_id));
END
$$;

-- Every task of a batch, in creation order, as a JSON array: the answer of
-- POST /tasks; the tasks of the batch document p_tasks, looked up by their
-- ids (a task deduped away was never stored, so it is not found). By id, the
-- best plan is the same whatever the batch, so it is made once
-- (force_generic_plan: in the default mode a plan for a known one-element
-- array always looks cheaper, and was made again on every call); and it
-- never scans a table, so that plan stays good as the tables grow.
CREATE OR REPLACE FUNCTION tr_batch_tasks_json(p_batch uuid, p_tasks jsonb) RETURNS json
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $$
DECLARE
    v_requester text;
    v_ids       uuid[];
BEGIN
    SELECT b.requester INTO v_requester FROM batches b WHERE b.id = p_batch;
    SELECT array_agg((e ->> 'id')::uuid) INTO v_ids FROM jsonb_array_elements(p_tasks) AS e;
    RETURN (
        SELECT coalesce(json_agg(tr_task_object(t,
                   (SELECT json_agg(tr_action_json(a, cp.params) ORDER BY a.position)
                    FROM actions a CROSS JOIN LATERAL tr_action_call_params(a) cp
                    WHERE a.task_id = t.id),
                   (SELECT json_agg(json_build_object('id', l.parent_id,
                                                      'requires_success', l.requires_success)
                                    ORDER BY (SELECT p.seq FROM tasks p WHERE p.id = l.parent_id))
                    FROM task_links l WHERE l.child_id = t.id),
                   v_requester) ORDER BY t.seq), '[]')
        FROM tasks t
        WHERE t.id = ANY (v_ids));
END
$$;

-- The summary object of GET /tasks.
CREATE OR REPLACE FUNCTION tr_task_summary_json(t tasks) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'id', t.id, 'name', t.name, 'kind', t.kind, 'status', t.status,
        'priority', t.priority, 'created_at', tr_ts(t.created_at),
        'started_at', tr_ts(t.started_at), 'ended_at', tr_ts(t.ended_at),
        'success', t.success, 'failures', t.failures, 'expected_count', t.expected_count,
        'batch_id', t.batch_id, 'group', t.grp)
$$;

-- A dead letter as GET /dead-letters shows it.
CREATE OR REPLACE FUNCTION tr_dead_letter_json(d deliveries) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'id', d.id, 'task_id', d.task_id, 'trigger', d.trigger,
        'url', (SELECT tr_mask_url(tr_action_params(a) ->> 'url') FROM actions a
                WHERE a.id = d.action_id),
        'attempts', d.attempts, 'last_error', d.last_error, 'failed_at', tr_ts(d.finished_at))
$$;

-- The detail of a "webhook" event of the audit trail: one HTTP attempt.
-- p_outcome is success, retry, failed (a start call given up), dead (an end
-- or cancel call given up: a dead letter) or dropped (its task moved on);
-- p_http_status is 0 when no HTTP answer came.
CREATE OR REPLACE FUNCTION tr_webhook_detail(p_delivery_id bigint, p_trigger webhook_trigger,
                                             p_attempt integer, p_url text, p_outcome text,
                                             p_http_status integer, p_error text,
                                             p_duration_ms integer)
RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object(
               'delivery_id', p_delivery_id, 'trigger', p_trigger, 'url', tr_mask_url(p_url),
               'attempt', p_attempt, 'outcome', p_outcome,
               'http_status', nullif(p_http_status, 0), 'error', p_error,
               'duration_ms', p_duration_ms))
$$;

-- webhooks: the SQL side of webhooks v2 (API.md, "Webhooks v2 (F8)"): the
-- values a call's placeholders read (filled by the worker in C,
-- worker/call_request.c), and conditions on JSON values (an action's
-- "when", decided in tr_finish_task when its task ends).

-- A condition {"path", "equals"|"in"|"exists"} on p_value. The path is
-- dot-separated keys and array indexes (at most 32 segments, checked at
-- creation); a JSON null counts as absent, as in the worker's response rules
-- (shared/response.c): "exists": false holds for it, "equals" never does.
CREATE OR REPLACE FUNCTION tr_cond_holds(p_value jsonb, p_cond jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN p_cond ? 'exists' THEN (x.v IS NOT NULL) = (p_cond ->> 'exists')::boolean
        WHEN p_cond ? 'equals' THEN coalesce(x.v = p_cond -> 'equals', false)
        WHEN p_cond ? 'in' THEN x.v IS NOT NULL AND EXISTS (
            SELECT 1 FROM jsonb_array_elements(p_cond -> 'in') e WHERE e = x.v)
        ELSE false END
    FROM (SELECT nullif(p_value #> string_to_array(p_cond ->> 'path', '.'), 'null') AS v) x
$$;

-- An action's "when" ({"output": cond} or {"metadata": cond}) on its task's
-- output and metadata as they are when it ends.
CREATE OR REPLACE FUNCTION tr_when_holds(p_when jsonb, p_output jsonb, p_metadata jsonb)
RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT p_when IS NULL
        OR (p_when ? 'output' AND tr_cond_holds(p_output, p_when -> 'output'))
        OR (p_when ? 'metadata' AND tr_cond_holds(p_metadata, p_when -> 'metadata'))
$$;

-- The context of a call's placeholders, as the worker reads it (the tr_call
-- row's "context"): {"task": {id, name, kind, batch_id, group, attempt},
-- "metadata", "output", and, only when the params name a parent,
-- "parents": {<local id>: {"output"}}}. NULL for params without "{{" (the
-- common case costs one text search). Current values: read when the call
-- is taken, for every attempt.
CREATE OR REPLACE FUNCTION tr_call_context(p_task uuid, p_params jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_text text;
    t      tasks;
    v      jsonb;
BEGIN
    v_text := p_params::text;
    IF v_text IS NULL OR strpos(v_text, '{{') = 0 THEN
        RETURN NULL;
    END IF;
    SELECT * INTO t FROM tasks WHERE id = p_task;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    v := jsonb_build_object(
        'task', jsonb_build_object('id', t.id, 'name', t.name, 'kind', t.kind,
                                   'batch_id', t.batch_id, 'attempt', t.attempt,
                                   'group', t.grp),
        'metadata', t.metadata, 'output', t.output);
    IF strpos(v_text, '{{parents.') > 0 THEN
        v := v || jsonb_build_object('parents', (
            SELECT jsonb_object_agg(p.local_id, jsonb_build_object('output', p.output))
            FROM task_links l JOIN tasks p ON p.id = l.parent_id
            WHERE l.child_id = p_task));
    END IF;
    RETURN v;
END
$$;

-- How long a call of action params p_params may be held: the worker's lease
-- (p_lease_ms: its default timeout and a margin), or the action's own
-- timeout_ms and the same margin (worker/loop.c, LEASE_MARGIN_MS).
CREATE OR REPLACE FUNCTION tr_call_lease(p_lease_ms integer, p_params jsonb) RETURNS interval
LANGUAGE sql IMMUTABLE AS $$
    SELECT make_interval(secs => greatest(p_lease_ms,
                                          coalesce((p_params ->> 'timeout_ms')::integer, 0)
                                          + 30000) / 1000.0)
$$;

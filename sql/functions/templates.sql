-- templates: rule templates (/rules) and action templates (/action-templates)
-- of API.md Part 2, "Rule and action templates (F2, F3)": the endpoints, the
-- check of the references of a new batch, and how a reference is read.
--
-- References are live. A rule reference stays {"ref": name} in tasks.rules
-- and every rule check reads it through rule_templates (tr_rules_resolved,
-- called by tr_rules_check and tr_rules_sig), so a new max_concurrency
-- applies at once to every task not started, whichever worker counts. An
-- action reference is an actions row with template = name whose params hold
-- the keys given beside the ref; tr_action_params merges them over the
-- template's when the worker's call row is built (claim.sql, deliveries.sql).
-- Changes are audited in template_events with their actor.

-- ---------------------------------------------------------------- reading references

-- p_rules with each {"ref": name} replaced by the template's rule; a
-- reference to a template deleted since (only a terminal task can hold one)
-- is left out. The common case, no reference, reads no table.
CREATE OR REPLACE FUNCTION tr_rules_resolved(p_rules jsonb) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN NOT p_rules @? '$[*].ref' THEN p_rules
           ELSE (SELECT coalesce(jsonb_agg(coalesce(rt.rule, e.r) ORDER BY e.n)
                                 FILTER (WHERE NOT e.r ? 'ref' OR rt.rule IS NOT NULL), '[]')
                 FROM jsonb_array_elements(p_rules) WITH ORDINALITY AS e (r, n)
                 LEFT JOIN rule_templates rt ON rt.name = e.r ->> 'ref') END
$$;

-- Action a's own params: in its row, or shared in action_params (0091).
CREATE OR REPLACE FUNCTION tr_action_own_params(a actions) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT coalesce(a.params, (SELECT p.params FROM action_params p WHERE p.id = a.params_id))
$$;

-- The params a call of action a is made with: its own, or for a reference
-- the template's with the given keys replacing theirs (one level deep).
CREATE OR REPLACE FUNCTION tr_action_params(a actions) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN a.template IS NULL THEN tr_action_own_params(a)
                ELSE coalesce((SELECT t.params FROM action_templates t WHERE t.name = a.template),
                              '{}') || tr_action_own_params(a) END
$$;

-- The same, as a set of one row for the hot queries (the claim, taking
-- deliveries, recording calls): a set-returning SQL function used in FROM is
-- inlined into the calling query as joins, where the scalar ones above are
-- run once per row by the SQL-function executor (~9 runs a start).
CREATE OR REPLACE FUNCTION tr_action_call_params(a actions) RETURNS TABLE (params jsonb)
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN a.template IS NULL THEN coalesce(a.params, p.params)
                ELSE coalesce(t.params, '{}') || coalesce(a.params, p.params) END
    FROM (SELECT 1) one
    LEFT JOIN action_params p ON a.params IS NULL AND p.id = a.params_id
    LEFT JOIN action_templates t ON t.name = a.template
$$;

-- The lock that keeps the purge from removing shared action params while a
-- batch that uses them is being created: creations hold it shared until
-- they commit (tr_create_batch), the purge takes it alone just to remove
-- the params no action uses (tr_purge). An advisory lock writes nothing,
-- where a row lock on a params row shared by every concurrent creation
-- (FOR KEY SHARE) wrote a multixact each time.
CREATE OR REPLACE FUNCTION tr_params_lock() RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$ SELECT hashtextextended('taskrunner:action_params', 0) $$;

-- The key of params in action_params.
CREATE OR REPLACE FUNCTION tr_params_key(p jsonb) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$
    SELECT sha256(convert_to(p::text, 'UTF8'))
$$;

-- The references of a validated batch (the tr_create_batch document): each
-- template named is locked (FOR SHARE, so that a DELETE cannot pass between
-- this check and the batch's commit); an unknown one raises TRBI0 with its
-- field path as the error's column ("[0].rules[1].ref"), which the C side
-- answers as the problem's field.
CREATE OR REPLACE FUNCTION tr_check_refs(p_tasks jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT format('[%s].rules[%s].ref', x.n - 1, y.m - 1) AS path, y.e ->> 'ref' AS name,
               'rule' AS what
        FROM jsonb_array_elements(p_tasks) WITH ORDINALITY AS x (t, n),
             jsonb_array_elements(x.t -> 'rules') WITH ORDINALITY AS y (e, m)
        WHERE y.e ? 'ref'
        UNION ALL
        SELECT coalesce(y.e ->> 'at', format('[%s]', x.n - 1)) || '.ref', y.e ->> 'ref', 'action'
        FROM jsonb_array_elements(p_tasks) WITH ORDINALITY AS x (t, n),
             jsonb_array_elements(x.t -> 'actions') AS y (e)
        WHERE y.e ? 'ref'
        ORDER BY 1
    LOOP
        IF r.what = 'rule' THEN
            PERFORM 1 FROM rule_templates WHERE name = r.name FOR SHARE;
        ELSE
            PERFORM 1 FROM action_templates WHERE name = r.name FOR SHARE;
        END IF;
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'TRBI0', COLUMN = r.path,
                MESSAGE = format('no %s template named "%s"', r.what, r.name);
        END IF;
    END LOOP;
END
$$;

-- ---------------------------------------------------------------- audit and shapes

CREATE OR REPLACE FUNCTION tr_template_event(p_kind text, p_name text, p_event text,
                                             p_detail jsonb) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO template_events (kind, name, event, actor, detail)
    VALUES (p_kind, p_name, p_event, tr_actor(), coalesce(p_detail, '{}'))
$$;

-- Non-terminal tasks that reference rule template p_name (the first 100 by
-- creation: the list is bounded).
CREATE OR REPLACE FUNCTION tr_rule_users(p_name text, p_limit integer DEFAULT 100) RETURNS uuid[]
LANGUAGE sql STABLE AS $$
    SELECT coalesce(array_agg(u.id ORDER BY u.seq), '{}')
    FROM (SELECT t.id, t.seq FROM task_rule_refs r JOIN tasks t ON t.id = r.task_id
          WHERE r.name = p_name AND NOT tr_is_terminal(t.status)
          ORDER BY t.seq LIMIT p_limit) u
$$;

CREATE OR REPLACE FUNCTION tr_action_template_users(p_name text, p_limit integer DEFAULT 100)
RETURNS uuid[]
LANGUAGE sql STABLE AS $$
    SELECT coalesce(array_agg(u.id ORDER BY u.seq), '{}')
    FROM (SELECT DISTINCT t.id, t.seq FROM actions a JOIN tasks t ON t.id = a.task_id
          WHERE a.template = p_name AND NOT tr_is_terminal(t.status)
          ORDER BY t.seq LIMIT p_limit) u
$$;

CREATE OR REPLACE FUNCTION tr_rule_template_json(rt rule_templates) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT json_build_object('name', rt.name, 'type', rt.rule -> 'type',
                             'max_concurrency', rt.rule -> 'max_concurrency',
                             'matcher', rt.rule -> 'matcher',
                             'tasks_using', to_json(tr_rule_users(rt.name)),
                             'created_at', tr_ts(rt.created_at), 'updated_at', tr_ts(rt.updated_at))
$$;

CREATE OR REPLACE FUNCTION tr_action_template_json(tp action_templates) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT json_build_object('name', tp.name, 'kind', tp.kind,
                             'params', tr_mask_url_in(tp.params),
                             'tasks_using', to_json(tr_action_template_users(tp.name)),
                             'created_at', tr_ts(tp.created_at), 'updated_at', tr_ts(tp.updated_at))
$$;

-- ---------------------------------------------------------------- rule templates

-- PUT /rules/{name}: p_rule is validated and normalized (shared/validate.c).
-- 201 when new, 200 when replaced. A replaced matcher lists the lanes of its
-- runnable tasks again (a lane groups tasks by the values of the matcher's
-- fields); the workers are woken, as a raised limit may let tasks start.
CREATE OR REPLACE FUNCTION tr_put_rule(p_name text, p_rule jsonb, p_actor text,
                                       OUT code integer, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    v_old jsonb;
    v_ids uuid[];
    rt    rule_templates;
BEGIN
    PERFORM tr_set_actor(p_actor);
    SELECT r.rule INTO v_old FROM rule_templates r WHERE r.name = p_name FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO rule_templates (name, rule) VALUES (p_name, p_rule) RETURNING * INTO rt;
        PERFORM tr_template_event('rule', p_name, 'created', jsonb_build_object('rule', p_rule));
        code := 201;
    ELSE
        UPDATE rule_templates r SET rule = p_rule, updated_at = now()
        WHERE r.name = p_name RETURNING * INTO rt;
        PERFORM tr_template_event('rule', p_name, 'replaced',
                                  jsonb_build_object('rule', p_rule, 'before', v_old));
        code := 200;
        IF v_old -> 'matcher' IS DISTINCT FROM p_rule -> 'matcher' THEN
            WITH moved AS (
                UPDATE tasks t SET lane = tr_lane_key(t.priority, t.rules, t.metadata, t.fair_by)
                FROM task_rule_refs r
                WHERE r.name = p_name AND t.id = r.task_id AND t.status = 'Pending'
                RETURNING t.id
            )
            SELECT array_agg(id) INTO v_ids FROM moved;
            IF v_ids IS NOT NULL THEN
                PERFORM tr_lanes_add(v_ids);
            END IF;
        END IF;
        PERFORM tr_wake();
    END IF;
    body := tr_rule_template_json(rt)::text;
END
$$;

CREATE OR REPLACE FUNCTION tr_list_rules(p_limit bigint, p_offset bigint,
                                         OUT code integer, OUT body text)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    code := 200;
    SELECT coalesce(json_agg(tr_rule_template_json(r) ORDER BY r.name), '[]')::text INTO body
    FROM (SELECT * FROM rule_templates ORDER BY name LIMIT p_limit OFFSET p_offset) r;
END
$$;

CREATE OR REPLACE FUNCTION tr_get_rule(p_name text, OUT code integer, OUT body text)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    SELECT 200, tr_rule_template_json(r)::text INTO code, body
    FROM rule_templates r WHERE r.name = p_name;
    IF NOT FOUND THEN
        PERFORM tr_raise_not_found('rule');
    END IF;
END
$$;

-- DELETE /rules/{name}: 204; 409 while a task that has not ended names it.
CREATE OR REPLACE FUNCTION tr_delete_rule(p_name text, p_actor text,
                                          OUT code integer, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    v_old   jsonb;
    v_using uuid[];
BEGIN
    PERFORM tr_set_actor(p_actor);
    SELECT r.rule INTO v_old FROM rule_templates r WHERE r.name = p_name FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM tr_raise_not_found('rule');
    END IF;
    v_using := tr_rule_users(p_name, 3);
    IF cardinality(v_using) > 0 THEN
        PERFORM tr_raise_wrong_state(format(
            'rule "%s" is used by tasks that have not ended (%s); GET /rules/%s lists them',
            p_name, array_to_string(v_using, ', '), p_name));
    END IF;
    DELETE FROM rule_templates WHERE name = p_name;
    DELETE FROM task_rule_refs WHERE name = p_name;
    PERFORM tr_template_event('rule', p_name, 'deleted', jsonb_build_object('before', v_old));
    code := 204;
    body := '';
END
$$;

-- ---------------------------------------------------------------- action templates

-- PUT /action-templates/{name}: p_params validated and normalized (a
-- complete action's params). Calls not yet made use the new params.
CREATE OR REPLACE FUNCTION tr_put_action_template(p_name text, p_kind text, p_params jsonb,
                                                  p_actor text,
                                                  OUT code integer, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    v_old action_templates;
    tp    action_templates;
BEGIN
    PERFORM tr_set_actor(p_actor);
    SELECT * INTO v_old FROM action_templates a WHERE a.name = p_name FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO action_templates (name, kind, params) VALUES (p_name, p_kind, p_params)
        RETURNING * INTO tp;
        PERFORM tr_template_event('action', p_name, 'created',
            jsonb_build_object('kind', p_kind, 'params', tr_mask_url_in(p_params)));
        code := 201;
    ELSE
        UPDATE action_templates a SET kind = p_kind, params = p_params, updated_at = now()
        WHERE a.name = p_name RETURNING * INTO tp;
        PERFORM tr_template_event('action', p_name, 'replaced',
            jsonb_build_object('kind', p_kind, 'params', tr_mask_url_in(p_params),
                               'before', tr_mask_url_in(v_old.params)));
        code := 200;
    END IF;
    body := tr_action_template_json(tp)::text;
END
$$;

CREATE OR REPLACE FUNCTION tr_list_action_templates(p_limit bigint, p_offset bigint,
                                                    OUT code integer, OUT body text)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    code := 200;
    SELECT coalesce(json_agg(tr_action_template_json(a) ORDER BY a.name), '[]')::text INTO body
    FROM (SELECT * FROM action_templates ORDER BY name LIMIT p_limit OFFSET p_offset) a;
END
$$;

CREATE OR REPLACE FUNCTION tr_get_action_template(p_name text, OUT code integer, OUT body text)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    SELECT 200, tr_action_template_json(a)::text INTO code, body
    FROM action_templates a WHERE a.name = p_name;
    IF NOT FOUND THEN
        PERFORM tr_raise_not_found('action template');
    END IF;
END
$$;

-- DELETE /action-templates/{name}: 204; 409 while a task that has not ended
-- names it. The actions of ended tasks that named it keep the params they
-- had (merged into their rows), so their history, task object and a replay
-- of a dead letter still have them.
CREATE OR REPLACE FUNCTION tr_delete_action_template(p_name text, p_actor text,
                                                     OUT code integer, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    v_old   action_templates;
    v_using uuid[];
BEGIN
    PERFORM tr_set_actor(p_actor);
    SELECT * INTO v_old FROM action_templates a WHERE a.name = p_name FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM tr_raise_not_found('action template');
    END IF;
    v_using := tr_action_template_users(p_name, 3);
    IF cardinality(v_using) > 0 THEN
        PERFORM tr_raise_wrong_state(format(
            'action template "%s" is used by tasks that have not ended (%s); '
            'GET /action-templates/%s lists them',
            p_name, array_to_string(v_using, ', '), p_name));
    END IF;
    UPDATE actions a SET params = v_old.params || tr_action_own_params(a), params_id = NULL,
                         template = NULL
    WHERE a.template = p_name;
    DELETE FROM action_templates WHERE name = p_name;
    PERFORM tr_template_event('action', p_name, 'deleted',
        jsonb_build_object('before', jsonb_build_object('kind', v_old.kind,
                                                         'params', tr_mask_url_in(v_old.params))));
    code := 204;
    body := '';
END
$$;

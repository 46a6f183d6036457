-- rules: counting what a concurrency rule allows, and the lanes of runnable
-- work. The worker (tr_claim) and GET /tasks/{id}/blockers decide with the
-- same function (tr_rules_check), so they never disagree.

-- How many tasks take a place under a rule whose matcher is (p_kind,
-- p_status) for the key p_key (tr_matcher_key of the task's metadata): tasks
-- of that kind, in that status (Claimed counting as Running), with the same
-- values of the key's fields. VOLATILE on purpose: each call must see what
-- other workers committed up to the advisory lock its caller just took, not
-- an older snapshot.
CREATE OR REPLACE FUNCTION tr_rule_count(p_kind text, p_status text, p_key jsonb) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_n bigint;
BEGIN
    -- The statuses as constants: an array parameter of task_status would be
    -- sorted at each execution, which costs milliseconds (the enum's order
    -- is looked up), and one OR the other made a generic plan slow as well.
    IF p_status = 'Running' THEN
        SELECT count(*) INTO v_n FROM tasks x
        WHERE x.status IN ('Running', 'Claimed') AND x.kind = p_kind
          AND tr_matches_key(x.metadata, p_key);
    ELSE
        SELECT count(*) INTO v_n FROM tasks x
        WHERE x.status = p_status::task_status AND x.kind = p_kind
          AND tr_matches_key(x.metadata, p_key);
    END IF;
    RETURN v_n;
END
$$;

-- The one decision on a task's rules, for the worker (tr_rules_try) and for
-- GET /tasks/{id}/blockers alike: one row per rule that holds task t back,
-- as (verdict, rule, key, current, max). Without p_try: every full rule
-- (verdict 'full'), counted without locks, as the worker would count now.
-- With p_try (the claim): each rule key is counted under its advisory lock,
-- held until commit, so two workers never both take the last place, and the
-- first rule that holds the task back ends the answer: 'busy' when another
-- transaction is counting that key right now, 'full' when it has no place.
-- The lock is only tried, never waited for: a worker that waited would hold
-- the keys it already has while another waits for those, and each such
-- cycle cost a deadlock_timeout. A busy key is no loss: the transaction
-- holding it counts after every commit before its own count, and a place
-- freed after that count wakes every worker again (NOTIFY). No row: free.
CREATE OR REPLACE FUNCTION tr_rules_check(t tasks, p_try boolean)
RETURNS TABLE (verdict text, rule jsonb, key jsonb, current bigint, max bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_kind text;
    v_st   text;
BEGIN
    -- References to rule templates are read now (templates.sql): live.
    FOR rule IN SELECT jsonb_array_elements(tr_rules_resolved(t.rules)) LOOP
        v_kind := rule -> 'matcher' ->> 'kind';
        v_st := rule -> 'matcher' ->> 'status';
        key := tr_matcher_key(t.metadata, rule -> 'matcher' -> 'fields');
        max := (rule ->> 'max_concurrency')::bigint;
        current := NULL;
        IF p_try AND NOT pg_try_advisory_xact_lock(hashtextextended(
                   'rule:' || v_kind || ':' || v_st || ':' || key::text, 0)) THEN
            verdict := 'busy';
            RETURN NEXT;
            RETURN;
        END IF;
        current := tr_rule_count(v_kind, v_st, key);
        IF current >= max THEN
            verdict := 'full';
            RETURN NEXT;
            IF p_try THEN
                RETURN;
            END IF;
        END IF;
    END LOOP;
END
$$;

-- Whether task t may start now under every one of its rules (tr_rules_check
-- with its locks): 'free', 'full' or 'busy'.
CREATE OR REPLACE FUNCTION tr_rules_try(t tasks) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v text;
BEGIN
    SELECT c.verdict INTO v FROM tr_rules_check(t, true) c LIMIT 1;
    RETURN coalesce(v, 'free');
END
$$;

-- ---------------------------------------------------------------- lanes
--
-- A lane is the runnable work one rule check decides for: tasks of one
-- priority with the same rules, the same values of those rules' fields and
-- the same fair_by values (tr_fair_key). Tasks without rules nor fair_by
-- have no lane (NULL): nothing holds them back.

-- The values of a task's fair_by fields ({"tenant_id": 42}) as text: the
-- value whose turn the rotation keeps; NULL without fair_by.
CREATE OR REPLACE FUNCTION tr_fair_key(p_metadata jsonb, p_fair_by jsonb) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_fair_by IS NOT NULL
                THEN jsonb_build_object('fields', p_fair_by,
                                        'values', tr_matcher_key(p_metadata, p_fair_by))::text
           END
$$;

-- What a rule check depends on: the rules (a template by its name) and the
-- values of their fields (a template's fields as it has them now). Lanes
-- with the same signature get the same verdict. STABLE: it reads templates.
CREATE OR REPLACE FUNCTION tr_rules_sig(p_rules jsonb, p_metadata jsonb) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT p_rules::text || '|'
           || (SELECT coalesce(jsonb_object_agg(f, p_metadata -> f), '{}')
               FROM jsonb_array_elements(tr_rules_resolved(p_rules)) r,
                    jsonb_array_elements_text(coalesce(r -> 'matcher' -> 'fields', '[]')) f)::text
$$;

-- A task's lane (migration 0030 computes the same for tasks of before it).
CREATE OR REPLACE FUNCTION tr_lane_key(p_priority integer, p_rules jsonb, p_metadata jsonb,
                                       p_fair_by jsonb) RETURNS uuid
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN p_rules <> '[]' OR p_fair_by IS NOT NULL
                THEN md5(p_priority::text || '|' || tr_rules_sig(p_rules, p_metadata) || '|'
                         || coalesce(tr_fair_key(p_metadata, p_fair_by), ''))::uuid
           END
$$;

-- rules: counting what a concurrency rule allows. The worker (tr_claim) and
-- GET /tasks/{id}/blockers count with the same function, so they never
-- disagree.

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
    SELECT count(*) INTO v_n FROM tasks x
    WHERE x.kind = p_kind
      AND (x.status = p_status::task_status
           OR (p_status = 'Running' AND x.status = 'Claimed'))
      AND tr_matches_key(x.metadata, p_key);
    RETURN v_n;
END
$$;

-- Whether task t may start now under every one of its rules. Takes the
-- advisory lock of each rule key (held until commit) before counting, so
-- that two workers never both take the last place.
CREATE OR REPLACE FUNCTION tr_rules_allow(t tasks) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    r      jsonb;
    v_key  jsonb;
    v_kind text;
    v_st   text;
BEGIN
    FOR r IN SELECT jsonb_array_elements(t.rules) LOOP
        v_kind := r -> 'matcher' ->> 'kind';
        v_st := r -> 'matcher' ->> 'status';
        v_key := tr_matcher_key(t.metadata, r -> 'matcher' -> 'fields');
        PERFORM pg_advisory_xact_lock(hashtextextended(
            'rule:' || v_kind || ':' || v_st || ':' || v_key::text, 0));
        IF tr_rule_count(v_kind, v_st, v_key) >= (r ->> 'max_concurrency')::bigint THEN
            RETURN false;
        END IF;
    END LOOP;
    RETURN true;
END
$$;

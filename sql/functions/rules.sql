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

-- Whether task t may start now under every one of its rules: 'free' (it
-- may: every rule has a place), 'full' (a rule has none) or 'busy' (another
-- transaction is counting one of its rule keys right now). Each rule key is
-- counted under its advisory lock, held until commit, so two workers never
-- both take the last place; the lock is only tried, never waited for: a
-- worker that waited would hold the keys it already has while another waits
-- for those (rule keys are met in queue order, not in one global order), and
-- each such cycle cost a deadlock_timeout. A busy key is no loss: the
-- transaction holding it counts after every commit before its own count, and
-- a place freed after that count wakes every worker again (NOTIFY).
CREATE OR REPLACE FUNCTION tr_rules_try(t tasks) RETURNS text
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
        IF NOT pg_try_advisory_xact_lock(hashtextextended(
                   'rule:' || v_kind || ':' || v_st || ':' || v_key::text, 0)) THEN
            RETURN 'busy';
        END IF;
        IF tr_rule_count(v_kind, v_st, v_key) >= (r ->> 'max_concurrency')::bigint THEN
            RETURN 'full';
        END IF;
    END LOOP;
    RETURN 'free';
END
$$;

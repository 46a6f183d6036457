-- preemption: a Pending task that only a full concurrency rule keeps from
-- starting takes the slot of a preemptible task of strictly lower priority
-- (API.md, "Groups, batch controls and preemption"). The claim calls
-- tr_preempt_for when a lane's head finds a rule full (claim.sql).
--
-- The limit is never exceeded: every rule key of the task is locked (the
-- advisory locks of tr_rules_check, tried, held until commit) before the
-- counts are read, so no other claim takes a slot of those keys meanwhile;
-- the victim leaves its slot (Pending) and the task takes it in the same
-- transaction.

-- Preempts, for Pending task t, the preemptible Claimed or Running task
-- that holds a slot of the one rule keeping t from starting, if there is
-- such a task of lower priority: the lowest priority, then the most
-- recently started (started_at; one not Running yet counts as the most
-- recent), then the newest. Nothing happens when another rule is full too,
-- when the rule lacks more than one slot (its limit was lowered), when its
-- matcher counts another status than Running, or when a key is being
-- counted by another worker. The victim goes back to Pending (its next
-- claim is a new attempt: its handle is superseded; retry_count and
-- max_retries untouched), its cancel actions fire reporting Preempted, and
-- both tasks' histories say who took whose slot. Returns the victim's id,
-- or NULL.
CREATE OR REPLACE FUNCTION tr_preempt_for(t tasks) RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
    r      jsonb;
    v_kind text;
    v_st   text;
    v_key  jsonb;
    v_n    bigint;
    v_max  bigint;
    v_rule jsonb;
    v_vkey jsonb;
    v      tasks;
BEGIN
    IF t.rules = '[]' OR NOT EXISTS (SELECT 1 FROM tasks x
                                     WHERE x.preemptible AND x.status IN ('Claimed', 'Running')
                                       AND x.priority < t.priority) THEN
        RETURN NULL;
    END IF;
    FOR r IN SELECT jsonb_array_elements(t.rules) LOOP
        v_kind := r -> 'matcher' ->> 'kind';
        v_st := r -> 'matcher' ->> 'status';
        v_key := tr_matcher_key(t.metadata, r -> 'matcher' -> 'fields');
        v_max := (r ->> 'max_concurrency')::bigint;
        IF NOT pg_try_advisory_xact_lock(hashtextextended(
                   'rule:' || v_kind || ':' || v_st || ':' || v_key::text, 0)) THEN
            RETURN NULL;
        END IF;
        v_n := tr_rule_count(v_kind, v_st, v_key);
        IF v_n >= v_max THEN
            IF v_n > v_max OR v_st <> 'Running' OR v_rule IS NOT NULL THEN
                RETURN NULL;
            END IF;
            v_rule := r;
            v_vkey := v_key;
        END IF;
    END LOOP;
    IF v_rule IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT * INTO v FROM tasks x
    WHERE x.preemptible AND x.status IN ('Claimed', 'Running')
      AND x.kind = v_rule -> 'matcher' ->> 'kind' AND x.priority < t.priority
      AND tr_matches_key(x.metadata, v_vkey)
    ORDER BY x.priority, x.started_at DESC NULLS FIRST, x.seq DESC
    LIMIT 1
    FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;

    PERFORM tr_move_tasks(ARRAY[v.id], 'Pending');
    -- A start call waiting for its retry is moot: the attempt is over.
    UPDATE deliveries SET state = 'done', finished_at = now(), last_error = 'attempt preempted'
    WHERE task_id = v.id AND trigger = 'Start' AND state = 'queued';
    INSERT INTO deliveries (task_id, action_id, trigger, attempt, preempted)
    SELECT v.id, a.id, a.trigger, v.attempt, true
    FROM actions a WHERE a.task_id = v.id AND a.trigger = 'Cancel'
    ORDER BY a.position;
    PERFORM tr_task_event(v.id, 'preempted', v.status, 'Pending', jsonb_build_object(
        'by', t.id, 'attempt', v.attempt, 'rule', tr_rule_json(v_rule), 'key', v_vkey));
    PERFORM tr_task_event(t.id, 'preempting', 'Pending', 'Pending', jsonb_build_object(
        'victim', v.id, 'victim_attempt', v.attempt, 'rule', tr_rule_json(v_rule),
        'key', v_vkey));
    PERFORM tr_metric_add('taskrunner_tasks_preempted_total',
                          jsonb_build_object('kind', v.kind), 1);
    PERFORM tr_wake();
    RETURN v.id;
END
$$;

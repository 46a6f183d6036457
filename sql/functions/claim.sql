-- claim: how the worker takes tasks to start, and its timed duties (heartbeat
-- timeouts, how long it may sleep). Any number of workers may run these at
-- once: runnable tasks are taken with FOR UPDATE SKIP LOCKED and every rule
-- key is counted under a transaction-scoped advisory lock that is tried, not
-- waited for (tr_rules_try): no claim ever waits for another.

-- The advisory lock class under which each worker holds its owner id for
-- the life of its session; inflight deliveries of an owner whose lock is gone
-- belong to a dead worker and are taken back at once.
CREATE OR REPLACE FUNCTION tr_worker_lock_class() RETURNS integer
LANGUAGE sql IMMUTABLE AS $$ SELECT 7275 $$;

-- ---------------------------------------------------------------- lanes
--
-- claim_lanes lists every lane (tr_lane_key) that has runnable tasks, with
-- its first one (head_seq, head_at: a hint, corrected by the claim when it
-- finds it stale). A lane row is never missing while its lane has a
-- runnable task: whoever makes a task of a lane runnable calls tr_lanes_add
-- in that transaction, which holds a KEY SHARE lock on the lane row until
-- commit; the claim drops a lane only under FOR UPDATE (tried, SKIP LOCKED),
-- then looks for runnable tasks again with a newer snapshot
-- (tr_lane_drop). A lane dropped meanwhile is inserted again.

-- Makes sure each runnable task of p_ids that has a lane is listed in
-- claim_lanes and its fair_by value in fair_turns; moves a lane's head back
-- when one of them is older than it. Lanes are locked in id order.
CREATE OR REPLACE FUNCTION tr_lanes_add(p_ids uuid[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_lanes uuid[];
    v_prio  integer[];
    v_fair  text[];
    v_seq   bigint[];
    v_at    timestamptz[];
    v_n     integer;
BEGIN
    SELECT array_agg(h.lane ORDER BY h.lane), array_agg(h.priority ORDER BY h.lane),
           array_agg(h.fair ORDER BY h.lane), array_agg(h.seq ORDER BY h.lane),
           array_agg(h.created_at ORDER BY h.lane)
    INTO v_lanes, v_prio, v_fair, v_seq, v_at
    FROM (SELECT DISTINCT ON (t.lane) t.lane, t.priority,
                 tr_fair_key(t.metadata, t.fair_by) AS fair, t.seq, t.created_at
          FROM tasks t
          WHERE t.id = ANY (p_ids) AND t.lane IS NOT NULL
            AND t.status = 'Pending' AND t.not_before IS NULL AND t.held = 0
          ORDER BY t.lane, t.seq) h;
    IF v_lanes IS NULL THEN
        RETURN;
    END IF;
    INSERT INTO fair_turns (fair_key)
    SELECT DISTINCT f FROM unnest(v_fair) f WHERE f IS NOT NULL ORDER BY 1
    ON CONFLICT DO NOTHING;
    FOR i IN 1..10 LOOP
        INSERT INTO claim_lanes (id, priority, fair_key, head_seq, head_at)
        SELECT * FROM unnest(v_lanes, v_prio, v_fair, v_seq, v_at) ORDER BY 1
        ON CONFLICT DO NOTHING;
        SELECT count(*) INTO v_n FROM (SELECT 1 FROM claim_lanes WHERE id = ANY (v_lanes)
                                       ORDER BY id FOR KEY SHARE) k;
        IF v_n = cardinality(v_lanes) THEN
            UPDATE claim_lanes l SET head_seq = h.seq, head_at = h.at
            FROM unnest(v_lanes, v_seq, v_at) AS h (id, seq, at)
            WHERE l.id = h.id AND l.head_seq > h.seq;
            RETURN;
        END IF;
    END LOOP;
    RAISE EXCEPTION 'lanes of % tasks could not be listed', cardinality(p_ids);
END
$$;

-- Moves lane p_lane's head to the task (p_seq, p_at), unless another
-- transaction holds the lane row (the hint then stays as it is).
CREATE OR REPLACE FUNCTION tr_lane_move_head(p_lane uuid, p_seq bigint, p_at timestamptz)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE claim_lanes SET head_seq = p_seq, head_at = p_at
    WHERE id = (SELECT id FROM claim_lanes WHERE id = p_lane FOR NO KEY UPDATE SKIP LOCKED);
END
$$;

-- Drops lane p_lane when it has no runnable task left, as seen after its
-- row is locked (so no transaction that adds to it is in progress); left
-- alone when another transaction holds the row.
CREATE OR REPLACE FUNCTION tr_lane_drop(p_lane uuid) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM claim_lanes WHERE id = p_lane FOR UPDATE SKIP LOCKED;
    IF FOUND THEN
        DELETE FROM claim_lanes l
        WHERE l.id = p_lane
          AND NOT EXISTS (SELECT 1 FROM tasks t
                          WHERE t.lane = p_lane AND t.status = 'Pending'
                            AND t.not_before IS NULL AND t.lane IS NOT NULL
                            AND t.held = 0);
    END IF;
END
$$;

-- ---------------------------------------------------------------- the claim

-- Takes up to p_limit runnable tasks that their rules allow; moves them to
-- Claimed and returns their start calls (already inflight for p_owner until
-- p_lease from now). Order: highest priority first; within a priority, the
-- candidate whose turn is earliest: for a task without fair_by its
-- creation, for a fair_by value the later of its last start and its oldest
-- waiting task's creation (API.md, "Fair claiming"). Candidates are the
-- runnable tasks without a lane, in index order, and the lanes: one rule
-- check (tr_rules_try, the decision /blockers shows) decides for a whole
-- lane, so a full lane is passed over at the cost of one check however many
-- tasks it holds, and its tasks never hide the others. At most p_scan
-- candidates are looked at. A lane passed over because a rule is full
-- counts once in taskrunner_tasks_blocked_by_rule_total; one passed over
-- because another worker is counting its rule key, or starting its fair_by
-- value, right now does not (that worker decides, and the next wake-up
-- looks again). A lane whose rule is full may take the slot of a
-- preemptible task of lower priority (tr_preempt_for). Tasks a group or
-- batch hold keeps back (held <> 0) are never candidates.
CREATE OR REPLACE FUNCTION tr_claim(p_owner integer, p_limit integer, p_lease_ms integer,
                                    p_scan integer DEFAULT 5000) RETURNS SETOF tr_call
LANGUAGE plpgsql AS $$
DECLARE
    t         tasks;
    v_lane    uuid;
    v_prio    integer;
    v_fair    text;
    v_head    bigint;
    v_rank    timestamptz;
    f_prio    integer;          -- the next runnable task without a lane
    f_at      timestamptz;
    v_free    integer := 0;     -- tasks without a lane to claim, together below
    v_ids     uuid[];
    v_claimed uuid[] := '{}';
    v_skip    uuid[] := '{}';   -- lanes done with in this call
    v_fresh   uuid[] := '{}';   -- lanes whose head was corrected in this call
    v_full    text[] := '{}';   -- rule signatures found full in this call
    v_busy    text[] := '{}';   -- rule signatures another transaction is counting
    v_sig     text;
    v_verdict text;
    v_blocked bigint := 0;
    v_steps   integer := 0;
BEGIN
    PERFORM tr_set_actor('worker');
    -- Tasks whose wait is over (a retry's backoff) join the runnable queue.
    PERFORM tr_release_due(1000);
    WHILE cardinality(v_claimed) + v_free < p_limit AND v_steps < p_scan LOOP
        v_steps := v_steps + 1;
        SELECT l.id, l.priority, l.fair_key, l.head_seq, greatest(f.last_start, l.head_at)
        INTO v_lane, v_prio, v_fair, v_head, v_rank
        FROM claim_lanes l LEFT JOIN fair_turns f ON f.fair_key = l.fair_key
        WHERE l.id <> ALL (v_skip)
        ORDER BY l.priority DESC, greatest(f.last_start, l.head_at), l.head_seq
        LIMIT 1;
        IF NOT FOUND THEN
            -- Only tasks without a lane are left: as many as room remains.
            v_free := p_limit - cardinality(v_claimed);
            EXIT;
        END IF;
        SELECT x.priority, x.created_at INTO f_prio, f_at FROM tasks x
        WHERE x.status = 'Pending' AND x.not_before IS NULL AND x.lane IS NULL AND x.held = 0
        ORDER BY x.priority DESC, x.seq
        OFFSET v_free LIMIT 1;
        IF FOUND AND (f_prio > v_prio OR (f_prio = v_prio AND f_at <= v_rank)) THEN
            v_free := v_free + 1;
            CONTINUE;
        END IF;

        -- The lane's first task, as committed now.
        SELECT * INTO t FROM tasks x
        WHERE x.lane = v_lane AND x.status = 'Pending' AND x.not_before IS NULL
          AND x.lane IS NOT NULL AND x.held = 0
        ORDER BY x.seq LIMIT 1;
        IF NOT FOUND THEN
            PERFORM tr_lane_drop(v_lane);
            v_skip := v_skip || v_lane;
            CONTINUE;
        END IF;
        IF t.seq <> v_head THEN
            -- A stale head: corrected, and the lane's turn looked at again.
            PERFORM tr_lane_move_head(v_lane, t.seq, t.created_at);
            IF NOT v_lane = ANY (v_fresh) THEN
                v_fresh := v_fresh || v_lane;
                CONTINUE;
            END IF;
        END IF;

        IF t.rules <> '[]' THEN
            v_sig := tr_rules_sig(t.rules, t.metadata);
            IF v_sig = ANY (v_full) THEN
                v_blocked := v_blocked + 1;
                v_skip := v_skip || v_lane;
                CONTINUE;
            ELSIF v_sig = ANY (v_busy) THEN
                v_skip := v_skip || v_lane;
                CONTINUE;
            END IF;
            v_verdict := tr_rules_try(t);
            IF v_verdict = 'busy' THEN
                v_busy := v_busy || v_sig;
                v_skip := v_skip || v_lane;
                CONTINUE;
            ELSIF v_verdict = 'full' AND tr_preempt_for(t) IS NULL THEN
                v_full := v_full || v_sig;
                v_blocked := v_blocked + 1;
                v_skip := v_skip || v_lane;
                CONTINUE;
            END IF;
            -- (full, and a preemptible task gave its slot up: t takes it)
        END IF;
        -- A fair_by value another worker is starting now is its to start.
        IF v_fair IS NOT NULL THEN
            PERFORM 1 FROM fair_turns WHERE fair_key = v_fair FOR NO KEY UPDATE SKIP LOCKED;
            IF NOT FOUND THEN
                v_skip := v_skip || v_lane;
                CONTINUE;
            END IF;
        END IF;
        SELECT * INTO t FROM tasks x
        WHERE x.lane = v_lane AND x.status = 'Pending' AND x.not_before IS NULL
          AND x.lane IS NOT NULL AND x.held = 0
        ORDER BY x.seq LIMIT 1
        FOR UPDATE SKIP LOCKED;
        IF NOT FOUND THEN                     -- others hold every one of them
            v_skip := v_skip || v_lane;
            CONTINUE;
        END IF;
        -- Claimed at once: the next rule count in this call must see it.
        PERFORM tr_move_tasks(ARRAY[t.id], 'Claimed');
        v_claimed := v_claimed || t.id;
        IF v_fair IS NOT NULL THEN
            -- clock_timestamp: starts within one call take turns too.
            UPDATE fair_turns SET last_start = clock_timestamp() WHERE fair_key = v_fair;
        END IF;
        -- The lane's next task is its head now.
        SELECT * INTO t FROM tasks x
        WHERE x.lane = v_lane AND x.status = 'Pending' AND x.not_before IS NULL
          AND x.lane IS NOT NULL AND x.held = 0
        ORDER BY x.seq LIMIT 1;
        IF FOUND THEN
            PERFORM tr_lane_move_head(v_lane, t.seq, t.created_at);
        ELSE
            PERFORM tr_lane_drop(v_lane);
            v_skip := v_skip || v_lane;
        END IF;
    END LOOP;

    -- Tasks without a lane: the first v_free of them in the same order,
    -- skipping those another worker holds. Driven by the runnable index
    -- alone (looked up by id with a status test, stale statistics once made
    -- the planner walk every Pending entry of that index for each claim).
    IF v_free > 0 THEN
        SELECT array_agg(f.id) INTO v_ids
        FROM (SELECT id FROM tasks
              WHERE status = 'Pending' AND not_before IS NULL AND lane IS NULL AND held = 0
              ORDER BY priority DESC, seq
              LIMIT v_free
              FOR UPDATE SKIP LOCKED) f;
        IF v_ids IS NOT NULL THEN
            v_claimed := v_claimed || ARRAY(SELECT m.id FROM tr_move_tasks(v_ids, 'Claimed') m);
        END IF;
    END IF;

    PERFORM tr_metric_add('taskrunner_tasks_blocked_by_rule_total', '{}', v_blocked);
    RETURN QUERY
    WITH ins AS (
        INSERT INTO deliveries (task_id, action_id, trigger, attempt, state, attempts,
                                lease_until, owner)
        SELECT x.id, s.id, 'Start', x.attempt, 'inflight', 1,
               now() + tr_call_lease(p_lease_ms, s.params), p_owner
        FROM tasks x
        CROSS JOIN LATERAL (SELECT a.id, cp.params FROM actions a
                            CROSS JOIN LATERAL tr_action_call_params(a) cp
                            WHERE a.task_id = x.id AND a.trigger = 'Start'
                            ORDER BY a.position LIMIT 1) s
        WHERE x.id = ANY (v_claimed)
        ORDER BY x.priority DESC, x.seq
        RETURNING *
    )
    SELECT ins.id, ins.task_id, tk.batch_id, ins.trigger::text, ins.outcome::text,
           p.params, ins.attempts, ins.attempt,
           tr_idem_key(ins.task_id, ins.trigger, ins.outcome, ins.action_id),
           a.source, tr_call_context(ins.task_id, p.params)
    FROM ins JOIN tasks tk ON tk.id = ins.task_id JOIN actions a ON a.id = ins.action_id
    -- a template's params as they are now, the placeholders' context for them
    CROSS JOIN LATERAL tr_action_call_params(a) p
    ORDER BY ins.id;
END
$$;

-- Fails the attempt of up to p_limit Running tasks whose heartbeat is older
-- than their timeout: retried when their policy allows, else failed for good
-- with their failure and cancel actions fired. Returns how many.
CREATE OR REPLACE FUNCTION tr_expire_tasks(p_limit integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    r   record;
    v_n integer := 0;
BEGIN
    PERFORM tr_set_actor('worker');
    FOR r IN SELECT id FROM tasks
             WHERE status = 'Running' AND deadline_at < now()
             ORDER BY deadline_at LIMIT p_limit
             FOR UPDATE SKIP LOCKED
    LOOP
        PERFORM tr_fail_attempt(r.id, 'Timeout', 'timeout', true);
        v_n := v_n + 1;
    END LOOP;
    RETURN v_n;
END
$$;

-- How long until the worker has timed work to do (a queued call's retry, a
-- heartbeat deadline, a task's retry time or scheduled start, a schedule's
-- next slot), in ms, capped at p_cap_ms; lets it sleep exactly.
CREATE OR REPLACE FUNCTION tr_next_due_ms(p_cap_ms integer) RETURNS integer
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN greatest(0, least(p_cap_ms,
        (SELECT ceil(extract(epoch FROM (min(next_at) - now())) * 1000)::integer
         FROM deliveries WHERE state = 'queued'),
        (SELECT ceil(extract(epoch FROM (min(deadline_at) - now())) * 1000)::integer
         FROM tasks WHERE status = 'Running'),
        (SELECT ceil(extract(epoch FROM (min(not_before) - now())) * 1000)::integer
         FROM tasks WHERE status = 'Pending' AND not_before IS NOT NULL),
        (SELECT ceil(extract(epoch FROM (min(next_fire_at) - now())) * 1000)::integer
         FROM schedules WHERE NOT paused)));
END
$$;

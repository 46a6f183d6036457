-- 0030: fair claiming (API.md, "Fair claiming").
--
-- Runnable work that a rule or fair_by concerns is organized in lanes: a
-- lane holds the runnable tasks of one priority that have the same rules,
-- the same values of those rules' fields and the same fair_by values, so one
-- rule check decides for the whole lane and a full one is passed over as a
-- whole, whatever its length. tasks.lane names a task's lane (NULL for a
-- task without rules nor fair_by: those stay in the runnable index, always
-- free); claim_lanes lists the lanes that may have runnable tasks, with the
-- position of their first one; fair_turns holds when each fair_by value last
-- started. The functions are in sql/functions/claim.sql.
ALTER TABLE tasks ADD COLUMN fair_by jsonb,   -- metadata field names, or NULL
                  ADD COLUMN lane uuid;       -- tr_lane_key, set when it becomes Pending

CREATE TABLE claim_lanes (
    id       uuid PRIMARY KEY,
    priority integer NOT NULL,
    fair_key text,                   -- tr_fair_key of its tasks; NULL without fair_by
    head_seq bigint NOT NULL,        -- its first runnable task (a hint the claim corrects)
    head_at  timestamptz NOT NULL    -- that task's created_at
);

-- The claim's order of lanes: priority first (see tr_claim).
CREATE INDEX claim_lanes_order_idx ON claim_lanes (priority DESC, head_at, head_seq);

CREATE TABLE fair_turns (
    fair_key   text PRIMARY KEY,
    last_start timestamptz           -- NULL: never started
);

-- The runnable tasks of a lane, oldest first.
CREATE INDEX tasks_lane_idx ON tasks (lane, seq)
    WHERE status = 'Pending' AND not_before IS NULL AND lane IS NOT NULL;
-- The runnable tasks of no lane (no rules, no fair_by): highest priority then oldest.
DROP INDEX tasks_runnable_idx;
CREATE INDEX tasks_runnable_idx ON tasks (priority DESC, seq)
    WHERE status = 'Pending' AND not_before IS NULL AND lane IS NULL;

-- Pending tasks with rules get their lane (the formula of tr_lane_key,
-- without fair_by, which no task had), and runnable ones their lane rows.
UPDATE tasks t
SET lane = md5(t.priority::text || '|' || t.rules::text || '|'
               || (SELECT coalesce(jsonb_object_agg(f, t.metadata -> f), '{}')
                   FROM jsonb_array_elements(t.rules) r,
                        jsonb_array_elements_text(coalesce(r -> 'matcher' -> 'fields', '[]')) f)::text
               || '|')::uuid
WHERE t.status = 'Pending' AND t.rules <> '[]';
INSERT INTO claim_lanes (id, priority, head_seq, head_at)
SELECT DISTINCT ON (lane) lane, priority, seq, created_at FROM tasks
WHERE status = 'Pending' AND not_before IS NULL AND lane IS NOT NULL
ORDER BY lane, seq;

-- 0050: outbound isolation (API.md, "Outbound isolation").
--
-- held_targets lists the webhook targets (scheme://host:port) that a
-- worker's circuit breaker holds back now, shared by every worker and read
-- by /blockers and GET /metrics. A call the worker does not make because
-- its target is held back, or because the worker already has
-- TASKRUNNER_MAX_INFLIGHT_PER_HOST calls in flight to it, is handed back:
-- a start call's task goes back to Pending with wait_target and not_before
-- (outside the runnable index, as a retry's wait), an end or cancel call is
-- queued again with wait_target and next_at, neither spending an attempt.
-- The functions are in sql/functions/targets.sql.
CREATE TABLE held_targets (
    target      text PRIMARY KEY,
    held_until  timestamptz NOT NULL,   -- its cool-down ends: a probe may be made
    cooldown_ms integer NOT NULL,       -- the current cool-down (grows while it stays down)
    failures    integer NOT NULL,       -- consecutive failures that opened the breaker
    held_since  timestamptz NOT NULL DEFAULT now(),
    probe_until timestamptz             -- a probe call is in flight until then
);

ALTER TABLE tasks ADD COLUMN wait_target text;
ALTER TABLE deliveries ADD COLUMN wait_target text;

-- Calls waiting for their target, found by it when it frees or resumes.
CREATE INDEX tasks_wait_target_idx ON tasks (wait_target, not_before)
    WHERE status = 'Pending' AND not_before IS NOT NULL AND wait_target IS NOT NULL;
CREATE INDEX deliveries_wait_target_idx ON deliveries (wait_target, next_at)
    WHERE state = 'queued' AND wait_target IS NOT NULL;

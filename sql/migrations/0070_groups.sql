-- 0070: groups and batch holds (API.md, "Groups, batch controls and
-- preemption (F6, F7)").
--
-- tasks.grp is the client's group (the API's "group"; a reserved word in
-- SQL). groups lists every group ever named, with its hold; batches get
-- theirs. tasks.held says which holds keep a task from starting (bit 1: its
-- group, bit 2: its batch) without touching its status: the claim takes
-- only tasks with held = 0, and the runnable indexes hold only those, so a
-- held group of a million tasks costs the claim nothing. A pause sets the bit
-- on the group's (batch's) tasks under the group's (batch's) row locked FOR
-- UPDATE; a creation into a group reads the group's hold under FOR SHARE of
-- the same row, so a task created while the pause commits is held too.
ALTER TABLE tasks ADD COLUMN grp text,
                  ADD COLUMN held smallint NOT NULL DEFAULT 0;

CREATE TABLE groups (
    name       text PRIMARY KEY,
    paused     boolean NOT NULL DEFAULT false,
    paused_at  timestamptz,                 -- the last pause or resume, and by whom
    paused_by  text,
    created_at timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE batches ADD COLUMN paused boolean NOT NULL DEFAULT false,
                    ADD COLUMN paused_at timestamptz,
                    ADD COLUMN paused_by text;

-- GET /tasks?group= newest first; a group's oldest task in a status.
CREATE INDEX tasks_group_created_idx ON tasks (grp, created_at DESC, seq DESC)
    WHERE grp IS NOT NULL;
CREATE INDEX tasks_group_status_idx ON tasks (grp, status, created_at) WHERE grp IS NOT NULL;

-- The claim's queues hold only tasks no hold keeps back.
DROP INDEX tasks_lane_idx;
CREATE INDEX tasks_lane_idx ON tasks (lane, seq)
    WHERE status = 'Pending' AND not_before IS NULL AND lane IS NOT NULL AND held = 0;
DROP INDEX tasks_runnable_idx;
CREATE INDEX tasks_runnable_idx ON tasks (priority DESC, seq)
    WHERE status = 'Pending' AND not_before IS NULL AND lane IS NULL AND held = 0;

-- Preemption: a preemptible task that holds a slot of a full concurrency
-- rule may be sent back to Pending for a task of strictly higher priority
-- (sql/functions/preemption.sql). The index finds the candidates, which are
-- few: started preemptible tasks. A cancel call made because of a preemption
-- reports "Preempted" (no task status: outcome stays NULL).
ALTER TABLE tasks ADD COLUMN preemptible boolean NOT NULL DEFAULT false;
CREATE INDEX tasks_preemptible_idx ON tasks (kind, priority)
    WHERE preemptible AND status IN ('Claimed', 'Running');
ALTER TABLE deliveries ADD COLUMN preempted boolean NOT NULL DEFAULT false;

-- tr_metrics_scrape takes the bound of group names.
DROP FUNCTION IF EXISTS tr_metrics_scrape(integer);

-- tr_finish_task takes the group being canceled (p_stop_group).
DROP FUNCTION IF EXISTS tr_finish_task(uuid, task_status, text, boolean, uuid);

-- tr_list_batches takes the filters group, schedule_id and paused.
DROP FUNCTION IF EXISTS tr_list_batches(text, text, task_status, text, timestamptz, timestamptz,
                                        bigint, bigint);

-- 0040: scheduled starts and cron schedules (API.md, "Scheduled start and
-- cron schedules (F5)").
--
-- A task's scheduled_at is shown as given; the wait itself is not_before
-- (0020): a Pending task with not_before set stays out of the runnable index
-- until the worker releases it (tr_release_due), as a retry's backoff does.
--
-- A schedule creates a batch from its template (the "tasks" of POST /tasks,
-- kept as given and validated again by the worker at each firing) at every
-- slot of its cron expression. next_fire_at is the first slot neither fired
-- nor skipped; the worker fires a due schedule, creates its batch and moves
-- next_fire_at on in one transaction, holding the schedule's row, and the
-- unique (schedule_id, scheduled_for) of batches makes the slot the key of
-- its batch: one batch per slot whatever the number of workers or crashes.
ALTER TABLE tasks ADD COLUMN scheduled_at timestamptz;

CREATE TABLE schedules (
    id            uuid PRIMARY KEY,
    name          text NOT NULL UNIQUE,         -- usable in paths instead of the id
    cron          text NOT NULL,                -- as given
    spec          jsonb NOT NULL,               -- the parsed expression (tr_cron_parse)
    timezone      text NOT NULL,                -- IANA name
    template      jsonb NOT NULL,               -- the batch, as given
    overlap       text NOT NULL CHECK (overlap IN ('skip', 'allow', 'cancel_previous')),
    catchup       text NOT NULL CHECK (catchup IN ('none', 'latest', 'all')),
    paused        boolean NOT NULL DEFAULT false,
    next_fire_at  timestamptz,                  -- first slot not yet fired or skipped
    open_batches  uuid[] NOT NULL DEFAULT '{}', -- batches made that may still be running
    last_fired_at timestamptz,
    last_batch_id uuid,
    requester     text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
-- The worker's due schedules and its sleep (min next_fire_at).
CREATE INDEX schedules_due_idx ON schedules (next_fire_at) WHERE NOT paused;

-- What each schedule did: fired (with its batch), triggered, skipped
-- (overlap or catch-up), failed firings, and the API's changes.
CREATE TABLE schedule_events (
    id          bigserial NOT NULL,
    schedule_id uuid NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    event       text NOT NULL,
    slot        timestamptz,
    batch_id    uuid,
    actor       text NOT NULL,
    detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX schedule_events_schedule_idx ON schedule_events (schedule_id, id);

ALTER TABLE batches ADD COLUMN schedule_id uuid,
                    ADD COLUMN scheduled_for timestamptz;
CREATE UNIQUE INDEX batches_schedule_slot_idx ON batches (schedule_id, scheduled_for)
    WHERE schedule_id IS NOT NULL;

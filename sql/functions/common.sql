-- common: what every other function file uses: timestamps as the API writes
-- them, the actor of the audit trail, waking the workers, the project's
-- errors, and the keys of rules and dedupe strategies.

-- RFC 3339 in UTC with microseconds, as the API writes timestamps.
-- STABLE, not IMMUTABLE (AT TIME ZONE depends on settings): a function that
-- claims more than its body allows is never inlined, and costs a call per use.
CREATE OR REPLACE FUNCTION tr_ts(t timestamptz) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;

-- ---------------------------------------------------------------- errors
--
-- The project's own SQLSTATEs, class "TR"; the C side maps each to an HTTP
-- status in one table (shared/db.c) and answers with the message:
--   TRNF0  not found (404)
--   TRWS0  not allowed in the current state (409)
--   TRBI0  bad input the validation in C could not see (400)
--   TRIK0  an Idempotency-Key reused for a different request (422)

CREATE OR REPLACE FUNCTION tr_raise_not_found(p_what text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'TRNF0', MESSAGE = p_what || ' not found';
END
$$;

CREATE OR REPLACE FUNCTION tr_raise_wrong_state(p_message text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'TRWS0', MESSAGE = p_message;
END
$$;

-- ---------------------------------------------------------------- actor and wake-up

-- Who makes the changes of the current transaction, for the audit trail:
-- every function that changes tasks sets it first (transaction-local).
CREATE OR REPLACE FUNCTION tr_set_actor(p_actor text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('taskrunner.actor', coalesce(nullif(p_actor, ''), 'anonymous'), true);
END
$$;

CREATE OR REPLACE FUNCTION tr_actor() RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT coalesce(nullif(current_setting('taskrunner.actor', true), ''), 'system')
$$;

-- Wakes the workers (NOTIFY taskrunner) when the transaction commits. A
-- responder session sets taskrunner.defer_notify and sends the NOTIFY itself
-- right after its commit instead: a transaction that notifies holds a
-- database-wide lock from its commit's start to its end, so notifying commits
-- that wait for the disk would be made one at a time. The change itself is
-- durable either way, and a lost wake-up is covered by the workers' poll.
CREATE OR REPLACE FUNCTION tr_wake() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('taskrunner.defer_notify', true), '') <> 'on' THEN
        PERFORM pg_notify('taskrunner', 'work');
    END IF;
END
$$;

-- ---------------------------------------------------------------- matcher keys

-- The values of a matcher's fields in a task's metadata, as a JSON object
-- ({} when no fields are listed): the key of a rule or dedupe strategy.
CREATE OR REPLACE FUNCTION tr_matcher_key(metadata jsonb, fields jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(jsonb_object_agg(f, metadata -> f), '{}')
    FROM jsonb_array_elements_text(coalesce(fields, '[]')) AS f
$$;

-- Whether metadata holds exactly the values of key (the result of
-- tr_matcher_key): equality per field, not containment. The containment test
-- comes first so that the GIN index on metadata can narrow the search.
CREATE OR REPLACE FUNCTION tr_matches_key(metadata jsonb, key jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(metadata, '{}') @> key
       AND NOT EXISTS (SELECT 1 FROM jsonb_each(key) AS k
                       WHERE metadata -> k.key IS DISTINCT FROM k.value)
$$;

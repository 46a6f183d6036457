-- 0011: an Idempotency-Key remembers what request it was used for (the
-- SHA-256 of its body, hex), so that a reuse with another request is refused
-- (422) instead of answered with the first one's answer. Keys stored before
-- have none and still replay as before.
ALTER TABLE idempotency_keys ADD COLUMN request_digest text;
DROP FUNCTION IF EXISTS tr_create_batch(uuid, text, text, jsonb, text);

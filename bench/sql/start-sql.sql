-- The database side of starting 64 waiting tasks as a worker does it, with
-- no HTTP: tr_claim (Pending -> Claimed, start calls inflight), then
-- tr_record_outcomes of 64 answers 200 (calls done, tasks Running), with the
-- worker session's settings (asynchronous commit, generic plans). The
-- ceiling of start throughput that the schema and its audit trail allow
-- (scripts/bench, throughput phase).
SET synchronous_commit = off;
SET plan_cache_mode = force_generic_plan;
SELECT tr_record_outcomes((SELECT jsonb_agg(jsonb_build_object('id', c.delivery_id, 'ok', true,
                                                              'http', 200, 'ms', 1))
                           FROM tr_claim(1, 64, 60000) c));

-- 0110: the signatures of functions that issues 13 and 15 both changed,
-- merged into one (tr_list_batches takes group, schedule_id and paused, and
-- include_deleted). A database that ran either branch's version alone has
-- that overload; it goes, and sql/functions/batches.sql makes the merged one.
DROP FUNCTION IF EXISTS tr_list_batches(text, text, task_status, text, timestamptz, timestamptz,
                                        text, uuid, boolean, bigint, bigint);
DROP FUNCTION IF EXISTS tr_list_batches(text, text, task_status, text, timestamptz, timestamptz,
                                        bigint, bigint, boolean);

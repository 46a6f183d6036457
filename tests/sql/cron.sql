-- cron: parsing cron expressions (tr_cron_parse) and their fire times in a
-- time zone (tr_cron_next, tr_cron_next_times, tr_cron_last_times), the DST
-- rules of the contract included: a local time in the spring-forward gap
-- fires at the first minute after the gap, a local time repeated by the
-- fall-back fires once, at its first occurrence.
\set VERBOSITY terse
SET client_min_messages = warning;
SET timezone = 'UTC';

-- The values a spec allows in each field, as lists.
CREATE FUNCTION t_cron(p_expr text) RETURNS text
LANGUAGE sql AS $$
    SELECT format('sec %s min %s hour %s dom %s%s mon %s dow %s%s',
        (SELECT array_agg(i) FROM generate_series(0, 59) i WHERE tr_bit((s ->> 'sec')::bigint, i)),
        (SELECT array_agg(i) FROM generate_series(0, 59) i WHERE tr_bit((s ->> 'min')::bigint, i)),
        (SELECT array_agg(i) FROM generate_series(0, 23) i WHERE tr_bit((s ->> 'hour')::bigint, i)),
        (SELECT array_agg(i) FROM generate_series(1, 31) i WHERE tr_bit((s ->> 'dom')::bigint, i)),
        CASE WHEN (s ->> 'dom_any')::boolean THEN ' (any)' ELSE '' END,
        (SELECT array_agg(i) FROM generate_series(1, 12) i WHERE tr_bit((s ->> 'mon')::bigint, i)),
        (SELECT array_agg(i) FROM generate_series(0, 6) i WHERE tr_bit((s ->> 'dow')::bigint, i)),
        CASE WHEN (s ->> 'dow_any')::boolean THEN ' (any)' ELSE '' END)
    FROM tr_cron_parse(p_expr) s
$$;
-- The next n fire times of p_expr in zone p_tz after p_after, as local
-- times with their offset.
CREATE FUNCTION t_next(p_expr text, p_tz text, p_after timestamptz, p_n integer) RETURNS text
LANGUAGE sql AS $$
    SELECT string_agg(to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS"Z"') || ' ('
                      || to_char(t AT TIME ZONE p_tz, 'HH24:MI:SS') || ')', ', ' ORDER BY t)
    FROM unnest(tr_cron_next_times(tr_cron_parse(p_expr), p_tz, p_after, p_n)) t
$$;

-- ---------------------------------------------------------------- fields
SELECT t_cron('*/15 2 * * *');
SELECT t_cron('30 */20 8-17/3 1,15 JAN-mar,dec mon-FRI');
SELECT t_cron('0 0 * * 7');                 -- 7 is Sunday
SELECT t_cron('0 0 * * 5-7');
SELECT t_cron('0 0 * * 3/2');               -- a/n: from a to the end (7: Sunday)
SELECT t_cron('5/20 * ? * ?');
SELECT t_cron('@hourly'), t_cron('@weekly');

-- ---------------------------------------------------------------- errors
SELECT e, tr_cron_problem(e) FROM unnest(ARRAY[
    '', '* * * *', '* * * * * * *', '60 * * * *', '* 24 * * *', '* * 0 * *', '* * * 13 *',
    '* * * * 8', '5-1 * * * *', '*/0 * * * *', '*/61 * * * *', '1,,2 * * * *', 'x * * * *',
    '* * * foo *', '* * 30 2 *', '? * * * *', '1-2-3 * * * *', '1/2/3 * * * *']) e;

-- ---------------------------------------------------------------- day of month, day of week
-- Both restricted: either matches (Vixie): the 13th, and every Friday.
SELECT t_next('0 0 13 * 5', 'UTC', '2026-02-01Z', 6);
-- Only one restricted: that one.
SELECT t_next('0 0 13 * *', 'UTC', '2026-02-01Z', 3);
SELECT t_next('0 0 * * 5', 'UTC', '2026-02-01Z', 3);
-- "*/2" counts as restricted (the field is not "*" nor "?"), as in cron-parser.
SELECT t_next('0 0 */10 * 1', 'UTC', '2026-02-01Z', 5);
-- February 29th, four years apart.
SELECT t_next('0 12 29 2 *', 'UTC', '2026-01-01Z', 2);
-- Seconds; strictly after the start.
SELECT t_next('*/20 * * * * *', 'UTC', '2026-02-01 10:00:00Z', 4);
SELECT t_next('*/20 * * * * *', 'UTC', '2026-02-01 10:00:00.5Z', 2);

-- ---------------------------------------------------------------- time zones
SELECT t_next('0 9 * * *', 'Asia/Kolkata', '2026-03-01Z', 2);
SELECT t_next('0 9 * * *', 'America/New_York', '2026-03-07Z', 3);

-- ---------------------------------------------------------------- DST: the gap
-- Europe/Paris, 2026-03-29 02:00 -> 03:00: 02:00, 02:15, 02:30, 02:45 do not
-- exist; they fire once, at 03:00 (the first minute after the gap); the next
-- day is back to 02:00.
SELECT t_next('*/15 2 * * *', 'Europe/Paris', '2026-03-28 12:00Z', 6);
SELECT t_next('30 2 * * *', 'Europe/Paris', '2026-03-28 12:00Z', 3);
-- 03:00 is a slot too: still once.
SELECT t_next('0 2,3 * * *', 'Europe/Paris', '2026-03-28 12:00Z', 4);
-- Every second: from 01:59:58, then 03:00:00 and on.
SELECT t_next('* * * * * *', 'Europe/Paris', '2026-03-29 00:59:57Z', 5);
-- America/New_York, 2026-03-08 02:00 -> 03:00.
SELECT t_next('30 2 * * *', 'America/New_York', '2026-03-07Z', 2);
-- Australia/Lord_Howe moves by 30 minutes: 2026-10-04 02:00 -> 02:30.
SELECT t_next('15 2 * * *', 'Australia/Lord_Howe', '2026-10-03Z', 2);

-- ---------------------------------------------------------------- DST: the repeat
-- Europe/Paris, 2026-10-25 03:00 -> 02:00: 02:00-02:59 occur twice; each
-- slot fires once, at its first occurrence (CEST, UTC+2).
SELECT t_next('*/20 1-3 * * *', 'Europe/Paris', '2026-10-24 22:30Z', 9);
-- From inside the second occurrence: the next is 03:00 CET, not a repeat.
SELECT t_next('*/20 * * * *', 'Europe/Paris', '2026-10-25 01:10Z', 2);
SELECT t_next('* * * * * *', 'Europe/Paris', '2026-10-25 00:59:58Z', 3);
SELECT t_next('0 * * * * *', 'Europe/Paris', '2026-10-25 01:30Z', 2);
-- America/New_York, 2026-11-01 02:00 -> 01:00: 01:30 fires once (EDT).
SELECT t_next('30 1 * * *', 'America/New_York', '2026-10-31Z', 3);

-- ---------------------------------------------------------------- the last fire times
-- The last 3 of a schedule of every second since a week ago (the window
-- grows from now backwards, it does not walk the week), and of a monthly
-- one in a year.
SELECT tr_cron_last_times(tr_cron_parse('* * * * * *'), 'UTC', '2026-02-01Z',
                          '2026-02-08 10:00:00.5Z', 3);
SELECT tr_cron_last_times(tr_cron_parse('0 0 1 * *'), 'UTC', '2025-06-15Z', '2026-02-08Z', 2);
-- Fewer than asked when the interval holds fewer; bounds: after excluded, up to included.
SELECT tr_cron_last_times(tr_cron_parse('0 0 1 * *'), 'UTC', '2026-01-01Z', '2026-03-01Z', 5);

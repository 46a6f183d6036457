-- cron: cron expressions and their fire times, for schedules (schedules.sql).
--
-- tr_cron_parse turns an expression of 5 fields (minute hour day-of-month
-- month day-of-week) or 6 (seconds first) into a spec: one bit mask per
-- field and whether day-of-month and day-of-week are unrestricted ("*" or
-- "?"). Fields take "*", numbers, names (jan..dec, sun..sat, any case; 7 is
-- Sunday too), ranges "a-b", steps "*/n", "a-b/n" and "a/n" (a to the end),
-- and lists of those; "@yearly", "@monthly", "@weekly", "@daily" and
-- "@hourly" stand for their usual expressions. When day-of-month and
-- day-of-week are both restricted a day matches either (Vixie cron).
--
-- Fire times are computed in the schedule's time zone with PostgreSQL's own
-- time-zone data (AT TIME ZONE): the next local time that matches, then the
-- instant it names. A local time that does not exist (the spring-forward
-- gap) fires at the first minute after the gap; one that occurs twice
-- (fall-back) fires once, at its first occurrence.

-- Bit n of mask.
CREATE OR REPLACE FUNCTION tr_bit(p_mask bigint, p_n integer) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$ SELECT (p_mask >> p_n) & 1 = 1 $$;

-- The lowest set bit of mask at or above p_from, up to p_max; -1 if none.
CREATE OR REPLACE FUNCTION tr_bit_next(p_mask bigint, p_from integer, p_max integer)
RETURNS integer
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    FOR i IN p_from .. p_max LOOP
        IF (p_mask >> i) & 1 = 1 THEN
            RETURN i;
        END IF;
    END LOOP;
    RETURN -1;
END
$$;

-- One value of a field: a number or, where p_names is given, a name
-- (p_names[1] is p_first). Raises TRBI0.
CREATE OR REPLACE FUNCTION tr_cron_value(p_text text, p_names text[], p_first integer,
                                         p_what text) RETURNS integer
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v_i integer;
BEGIN
    IF p_text ~ '^[0-9]{1,4}$' THEN
        RETURN p_text::integer;
    END IF;
    v_i := array_position(p_names, lower(p_text));
    IF v_i IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'TRBI0',
            MESSAGE = format('%s: "%s" is not a number%s', p_what, p_text,
                             CASE WHEN p_names IS NOT NULL THEN ' or a name' ELSE '' END);
    END IF;
    RETURN p_first + v_i - 1;
END
$$;

-- One field as a bit mask of the values p_min..p_max it allows (p_max 7 of
-- the day of week is Sunday, bit 0). Raises TRBI0 naming the field.
CREATE OR REPLACE FUNCTION tr_cron_field(p_text text, p_min integer, p_max integer,
                                         p_names text[], p_what text) RETURNS bigint
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v_item  text;
    v_base  text;
    v_parts text[];
    v_lo    integer;
    v_hi    integer;
    v_step  integer;
    v_mask  bigint := 0;
    v_first integer := CASE WHEN p_names IS NULL THEN NULL
                            WHEN p_max = 12 THEN 1 ELSE 0 END;
    v_top   integer := CASE WHEN p_what = 'day-of-week' THEN 7 ELSE p_max END;
BEGIN
    IF p_text = '' OR p_text ~ ',,|^,|,$' THEN
        RAISE EXCEPTION USING ERRCODE = 'TRBI0', MESSAGE = format('%s: empty list item', p_what);
    END IF;
    FOREACH v_item IN ARRAY string_to_array(p_text, ',') LOOP
        v_parts := string_to_array(v_item, '/');
        IF cardinality(v_parts) > 2 OR v_parts[1] = '' THEN
            RAISE EXCEPTION USING ERRCODE = 'TRBI0',
                MESSAGE = format('%s: "%s" is not a value, range or step', p_what, v_item);
        END IF;
        v_base := v_parts[1];
        v_step := 1;
        IF cardinality(v_parts) = 2 THEN
            IF v_parts[2] !~ '^[0-9]{1,4}$' OR v_parts[2]::integer < 1
               OR v_parts[2]::integer > v_top THEN
                RAISE EXCEPTION USING ERRCODE = 'TRBI0',
                    MESSAGE = format('%s: step "%s" must be a number from 1 to %s',
                                     p_what, v_parts[2], v_top);
            END IF;
            v_step := v_parts[2]::integer;
        END IF;
        IF v_base = '*' OR (v_base = '?' AND p_what IN ('day-of-month', 'day-of-week')) THEN
            v_lo := p_min;
            v_hi := p_max;
        ELSIF strpos(v_base, '-') > 0 THEN
            v_lo := tr_cron_value(split_part(v_base, '-', 1), p_names, v_first, p_what);
            v_hi := tr_cron_value(substr(v_base, strpos(v_base, '-') + 1), p_names, v_first,
                                  p_what);
        ELSE
            v_lo := tr_cron_value(v_base, p_names, v_first, p_what);
            v_hi := CASE WHEN cardinality(v_parts) = 2 THEN v_top ELSE v_lo END;
        END IF;
        IF v_lo < p_min OR v_lo > v_top OR v_hi < p_min OR v_hi > v_top THEN
            RAISE EXCEPTION USING ERRCODE = 'TRBI0',
                MESSAGE = format('%s: "%s" is out of range (%s-%s)', p_what, v_item, p_min, v_top);
        END IF;
        IF v_lo > v_hi THEN
            RAISE EXCEPTION USING ERRCODE = 'TRBI0',
                MESSAGE = format('%s: range "%s" goes backwards', p_what, v_item);
        END IF;
        FOR v IN v_lo .. v_hi BY v_step LOOP
            v_mask := v_mask | (1::bigint << (CASE WHEN v = 7 AND p_what = 'day-of-week'
                                                   THEN 0 ELSE v END));
        END LOOP;
    END LOOP;
    RETURN v_mask;
END
$$;

-- The spec of expression p_expr (see the top of this file), or TRBI0 with
-- what is wrong. An expression that matches no time in the next ten years
-- (February 30th) is refused.
CREATE OR REPLACE FUNCTION tr_cron_parse(p_expr text) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_expr   text := btrim(p_expr);
    v_f      text[];
    v_spec   jsonb;
    v_months text[] := '{jan,feb,mar,apr,may,jun,jul,aug,sep,oct,nov,dec}';
    v_days   text[] := '{sun,mon,tue,wed,thu,fri,sat}';
BEGIN
    v_expr := CASE lower(v_expr)
                  WHEN '@yearly' THEN '0 0 1 1 *' WHEN '@annually' THEN '0 0 1 1 *'
                  WHEN '@monthly' THEN '0 0 1 * *' WHEN '@weekly' THEN '0 0 * * 0'
                  WHEN '@daily' THEN '0 0 * * *' WHEN '@midnight' THEN '0 0 * * *'
                  WHEN '@hourly' THEN '0 * * * *' ELSE v_expr END;
    v_f := regexp_split_to_array(v_expr, '\s+');
    IF v_expr = '' OR cardinality(v_f) NOT IN (5, 6) THEN
        RAISE EXCEPTION USING ERRCODE = 'TRBI0',
            MESSAGE = format('expected 5 fields (minute hour day-of-month month day-of-week) '
                             'or 6 (seconds first), got %s',
                             CASE WHEN v_expr = '' THEN 0 ELSE cardinality(v_f) END);
    END IF;
    IF cardinality(v_f) = 5 THEN
        v_f := '{0}'::text[] || v_f;
    END IF;
    v_spec := jsonb_build_object(
        'sec', tr_cron_field(v_f[1], 0, 59, NULL, 'second'),
        'min', tr_cron_field(v_f[2], 0, 59, NULL, 'minute'),
        'hour', tr_cron_field(v_f[3], 0, 23, NULL, 'hour'),
        'dom', tr_cron_field(v_f[4], 1, 31, NULL, 'day-of-month'),
        'mon', tr_cron_field(v_f[5], 1, 12, v_months, 'month'),
        'dow', tr_cron_field(v_f[6], 0, 6, v_days, 'day-of-week'),
        'dom_any', v_f[4] IN ('*', '?'), 'dow_any', v_f[6] IN ('*', '?'));
    IF tr_cron_next_local(v_spec, localtimestamp(0)) IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'TRBI0',
            MESSAGE = 'matches no date (day-of-month and month never meet)';
    END IF;
    RETURN v_spec;
END
$$;

-- What is wrong with p_expr, or NULL when it is a valid expression.
CREATE OR REPLACE FUNCTION tr_cron_problem(p_expr text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
BEGIN
    PERFORM tr_cron_parse(p_expr);
    RETURN NULL;
EXCEPTION WHEN SQLSTATE 'TRBI0' THEN
    RETURN SQLERRM;
END
$$;

-- The first local time at or after p_from (whole seconds) that spec
-- matches, looking at most ten years ahead; NULL if none.
CREATE OR REPLACE FUNCTION tr_cron_next_local(p_spec jsonb, p_from timestamp) RETURNS timestamp
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v_sec   bigint := (p_spec ->> 'sec')::bigint;
    v_min   bigint := (p_spec ->> 'min')::bigint;
    v_hour  bigint := (p_spec ->> 'hour')::bigint;
    v_dom   bigint := (p_spec ->> 'dom')::bigint;
    v_mon   bigint := (p_spec ->> 'mon')::bigint;
    v_dow   bigint := (p_spec ->> 'dow')::bigint;
    v_domany boolean := (p_spec ->> 'dom_any')::boolean;
    v_dowany boolean := (p_spec ->> 'dow_any')::boolean;
    v_from  timestamp := date_trunc('second', p_from)
                         + CASE WHEN p_from > date_trunc('second', p_from)
                                THEN interval '1 second' ELSE interval '0' END;
    v_day   date := v_from::date;
    v_end   date := v_from::date + 3660;
    v_t     integer := extract(epoch FROM v_from::time)::integer;  -- seconds into the day
    v_h     integer;
    v_m     integer;
    v_s     integer;
    v_hm    integer;
    v_dm    boolean;
    v_wm    boolean;
BEGIN
    WHILE v_day <= v_end LOOP
        IF NOT tr_bit(v_mon, extract(month FROM v_day)::integer) THEN
            v_day := (date_trunc('month', v_day) + interval '1 month')::date;
            v_t := 0;
            CONTINUE;
        END IF;
        v_dm := tr_bit(v_dom, extract(day FROM v_day)::integer);
        v_wm := tr_bit(v_dow, extract(dow FROM v_day)::integer);
        IF (CASE WHEN v_domany AND v_dowany THEN true
                 WHEN v_domany THEN v_wm
                 WHEN v_dowany THEN v_dm
                 ELSE v_dm OR v_wm END) THEN
            -- The first (hour, minute, second) at or after v_t that matches.
            v_h := tr_bit_next(v_hour, v_t / 3600, 23);
            WHILE v_h >= 0 LOOP
                v_hm := CASE WHEN v_h = v_t / 3600 THEN (v_t % 3600) / 60 ELSE 0 END;
                v_m := tr_bit_next(v_min, v_hm, 59);
                WHILE v_m >= 0 LOOP
                    v_s := tr_bit_next(v_sec, CASE WHEN v_h = v_t / 3600 AND v_m = (v_t % 3600) / 60
                                                   THEN v_t % 60 ELSE 0 END, 59);
                    IF v_s >= 0 THEN
                        RETURN v_day + make_interval(hours => v_h, mins => v_m, secs => v_s);
                    END IF;
                    v_m := tr_bit_next(v_min, v_m + 1, 59);
                END LOOP;
                v_h := tr_bit_next(v_hour, v_h + 1, 23);
            END LOOP;
        END IF;
        v_day := v_day + 1;
        v_t := 0;
    END LOOP;
    RETURN NULL;
END
$$;

-- The instant local time p_local names in zone p_tz: its first occurrence
-- when it occurs twice, the first minute after the gap when it does not
-- exist.
CREATE OR REPLACE FUNCTION tr_cron_instant(p_local timestamp, p_tz text) RETURNS timestamptz
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_u  timestamptz := p_local AT TIME ZONE p_tz;
    v_w  timestamp;   -- a UTC wall time
    v_c  timestamptz;
    v_m  timestamp;
BEGIN
    IF (v_u AT TIME ZONE p_tz) <> p_local THEN
        -- In a gap: the first whole local minute after it that exists.
        v_m := date_trunc('minute', p_local);
        FOR i IN 1 .. 1440 LOOP
            v_m := v_m + interval '1 minute';
            IF ((v_m AT TIME ZONE p_tz) AT TIME ZONE p_tz) = v_m THEN
                RETURN v_m AT TIME ZONE p_tz;
            END IF;
        END LOOP;
        RETURN v_u;
    END IF;
    -- Occurring twice: with the offset in force a few hours earlier, if
    -- that names the same local time at an earlier instant.
    v_w := p_local - ((v_u - interval '3 hours') AT TIME ZONE p_tz
                      - (v_u - interval '3 hours') AT TIME ZONE 'UTC');
    v_c := v_w AT TIME ZONE 'UTC';
    IF v_c < v_u AND (v_c AT TIME ZONE p_tz) = p_local THEN
        RETURN v_c;
    END IF;
    RETURN v_u;
END
$$;

-- The first fire time of spec in zone p_tz strictly after p_after; NULL if
-- none in the next ten years.
CREATE OR REPLACE FUNCTION tr_cron_next(p_spec jsonb, p_tz text, p_after timestamptz)
RETURNS timestamptz
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_l   timestamp := date_trunc('second', p_after AT TIME ZONE p_tz) + interval '1 second';
    v_u   timestamptz;
    v_off interval;
    v_lo  timestamptz;
    v_hi  timestamptz;
    v_mid timestamptz;
BEGIN
    FOR i IN 1 .. 100 LOOP
        v_l := tr_cron_next_local(p_spec, v_l);
        IF v_l IS NULL THEN
            RETURN NULL;
        END IF;
        v_u := tr_cron_instant(v_l, p_tz);
        IF v_u > p_after THEN
            RETURN v_u;
        END IF;
        -- A local time met again after a fall-back: its first occurrence
        -- is past, as are those of every local time before the end of the
        -- repeated window (the transition, found to the second between the
        -- two instants, under the earlier offset).
        v_off := v_l - (v_u AT TIME ZONE 'UTC');
        v_lo := v_u;
        v_hi := p_after;
        WHILE v_hi - v_lo > interval '1 second' LOOP
            v_mid := v_lo + (v_hi - v_lo) / 2;
            IF (v_mid AT TIME ZONE p_tz) - (v_mid AT TIME ZONE 'UTC') = v_off THEN
                v_lo := v_mid;
            ELSE
                v_hi := v_mid;
            END IF;
        END LOOP;
        v_l := greatest(v_l + interval '1 second',
                        date_trunc('second', (v_hi AT TIME ZONE 'UTC') + v_off));
    END LOOP;
    RETURN NULL;
END
$$;

-- The next p_n fire times after p_after, in order.
CREATE OR REPLACE FUNCTION tr_cron_next_times(p_spec jsonb, p_tz text, p_after timestamptz,
                                              p_n integer) RETURNS timestamptz[]
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v   timestamptz[] := '{}';
    v_t timestamptz := p_after;
BEGIN
    FOR i IN 1 .. p_n LOOP
        v_t := tr_cron_next(p_spec, p_tz, v_t);
        EXIT WHEN v_t IS NULL;
        v := v || v_t;
    END LOOP;
    RETURN v;
END
$$;

-- The last (at most p_n) fire times in (p_after, p_upto], in order. The
-- window is widened from p_upto backwards, doubling, until it holds p_n of
-- them or reaches p_after, so the cost follows p_n, not the number of fire
-- times since p_after (a worker down for a week under a schedule of every
-- second).
CREATE OR REPLACE FUNCTION tr_cron_last_times(p_spec jsonb, p_tz text, p_after timestamptz,
                                              p_upto timestamptz, p_n integer)
RETURNS timestamptz[]
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_span  interval := interval '1 second';
    v_from  timestamptz;
    v       timestamptz[];
    v_t     timestamptz;
BEGIN
    FOR i IN 1 .. 64 LOOP
        v_from := greatest(p_after, p_upto - v_span);
        v := '{}';
        v_t := tr_cron_next(p_spec, p_tz, v_from);
        -- Keep the last p_n of the window (bounded: the window doubled
        -- from one that held fewer than p_n).
        FOR j IN 1 .. 1000000 LOOP
            EXIT WHEN v_t IS NULL OR v_t > p_upto;
            v := v || v_t;
            IF cardinality(v) > p_n THEN
                v := v[2:];
            END IF;
            v_t := tr_cron_next(p_spec, p_tz, v_t);
        END LOOP;
        IF cardinality(v) >= p_n OR v_from = p_after THEN
            RETURN v;
        END IF;
        v_span := v_span * 2;
    END LOOP;
    RETURN v;
END
$$;

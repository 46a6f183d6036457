/*
 * queries: the worker's queries (see queries.h).
 */
#include "queries.h"

#include <stdio.h>
#include <stdlib.h>

#include "log.h"

/* Set up by the db module on every new connection, before any query:
 * - LISTEN: notifications are the hint that there is work.
 * - Asynchronous commit: what a PostgreSQL crash could lose of the worker's
 *   bookkeeping is redone (a claim or a call is made again; delivery is at
 *   least once), and the commits no longer wait for the disk. Writes the API
 *   acknowledged to clients stay synchronous (the responders' sessions).
 * - Generic plans: the worker's statements (in tr_claim, tr_record_outcomes,
 *   ...) find their rows by primary key or by a partial index, whatever the
 *   parameters; in the default mode PostgreSQL kept planning most of them
 *   again on every call (a custom plan for an empty array or LIMIT 0 always
 *   looks cheaper): 1.1 ms of an empty claim, 0.15 ms once planned for good.
 * - No sequential scans: a plan made once must stay good while the tables
 *   grow; made while tasks was small, a plan could read it whole, and keep
 *   doing so at a million rows until the next ANALYZE. */
static const char SQL_SESSION[] = "LISTEN taskrunner; "
                                  "SET synchronous_commit = off; "
                                  "SET plan_cache_mode = force_generic_plan; "
                                  "SET enable_seqscan = off";
static const char SQL_LOCK_OWNER[] =
    "SELECT pg_try_advisory_lock(tr_worker_lock_class(), $1::integer)";
static const char SQL_CLAIM[] = "SELECT * FROM tr_claim($1::integer, $2::integer, $3::integer)";
static const char SQL_TAKE[] =
    "SELECT * FROM tr_take_deliveries($1::integer, $2::integer, $3::integer)";
static const char SQL_OUTCOMES[] = "SELECT tr_record_outcomes($1::jsonb)";
static const char SQL_EXPIRE[] = "SELECT tr_expire_tasks($1::integer)";
static const char SQL_PURGE[] =
    "SELECT tasks_purged, batches_purged FROM tr_purge($1::bigint, $2::bigint, $3::integer)";
static const char SQL_RECOVER[] = "SELECT tr_recover_deliveries()";
static const char SQL_NEXT_DUE[] = "SELECT tr_next_due_ms($1::integer)";
static const char SQL_DUE_SCHEDULES[] =
    "SELECT id, slot, template::text FROM tr_due_schedules($1::integer)";
static const char SQL_FIRE_SCHEDULE[] =
    "SELECT outcome, delay_ms, more FROM tr_fire_schedule($1::uuid, $2::timestamptz, $3::uuid,"
    " $4::jsonb, $5::jsonb)";
static const char SQL_CALLS_WAIT[] = "SELECT tr_calls_wait($1::jsonb)";
static const char SQL_TARGET_HOLD[] =
    "SELECT tr_target_hold($1::text, $2::integer, $3::integer)";
static const char SQL_TARGET_PROBE[] = "SELECT tr_target_try_probe($1::text, $2::integer)";
static const char SQL_TARGET_RESUME[] = "SELECT tr_target_resume($1::text, $2::integer)";
static const char SQL_TARGET_RELEASE[] = "SELECT tr_target_release($1::text, $2::integer)";
static const char SQL_HELD_TARGETS[] = "SELECT * FROM tr_held_targets()";

/* Runs a query and logs why it failed; the worker only needs to know that. */
static int queries_query(struct db *db, const char *what, const char *sql, int n,
                       const char *const *params, PGresult **res)
{
    struct db_error err;
    if (db_query(db, sql, n, params, res, &err) < 0) {
        log_warn("%s failed: %s (SQLSTATE %s%s%s)", what, err.message,
                 err.sqlstate[0] ? err.sqlstate : "none", err.server_message[0] ? ": " : "",
                 err.server_message);
        return -1;
    }
    return 0;
}

static int queries_int_query(struct db *db, const char *what, const char *sql, int n,
                           const char *const *params, int *out)
{
    PGresult *res;
    if (queries_query(db, what, sql, n, params, &res) < 0)
        return -1;
    *out = PQntuples(res) > 0 ? atoi(PQgetvalue(res, 0, 0)) : 0;
    PQclear(res);
    return 0;
}

void queries_init(struct db *db, const char *dsn)
{
    db_init(db, dsn);
    db_set_session_setup(db, SQL_SESSION);
}

int queries_prepare_session(struct db *db, int *owner)
{
    PGresult *res;
    /* A random id; taken again if another live worker happens to hold it. */
    for (int tries = 0; tries < 16; tries++) {
        char id[16];
        int candidate = 1 + (int)(random() % 2147483646);
        snprintf(id, sizeof id, "%d", candidate);
        const char *params[] = {id};
        if (queries_query(db, "owner lock", SQL_LOCK_OWNER, 1, params, &res) < 0)
            return -1;
        bool got = PQgetvalue(res, 0, 0)[0] == 't';
        PQclear(res);
        if (got) {
            *owner = candidate;
            return 0;
        }
    }
    log_error("could not take an owner id");
    return -1;
}

static int queries_calls(struct db *db, const char *what, const char *sql, int owner, int limit,
                       int lease_ms, PGresult **res)
{
    char o[16], l[16], m[16];
    snprintf(o, sizeof o, "%d", owner);
    snprintf(l, sizeof l, "%d", limit);
    snprintf(m, sizeof m, "%d", lease_ms);
    const char *params[] = {o, l, m};
    return queries_query(db, what, sql, 3, params, res);
}

int queries_claim(struct db *db, int owner, int limit, int lease_ms, PGresult **res)
{
    return queries_calls(db, "claim", SQL_CLAIM, owner, limit, lease_ms, res);
}

int queries_take(struct db *db, int owner, int limit, int lease_ms, PGresult **res)
{
    return queries_calls(db, "take deliveries", SQL_TAKE, owner, limit, lease_ms, res);
}

void queries_outcomes_init(struct queries_outcomes *o)
{
    o->list = NULL;
    o->n = 0;
}

void queries_outcomes_cleanup(struct queries_outcomes *o)
{
    json_object_put(o->list);
    queries_outcomes_init(o);
}

static json_object *outcome_new(struct queries_outcomes *o, long long delivery_id,
                                const struct queries_attempt *a)
{
    if (!o->list)
        o->list = json_object_new_array();
    json_object *x = json_object_new_object();
    json_object_object_add(x, "id", json_object_new_int64(delivery_id));
    json_object_object_add(x, "http", json_object_new_int64(a->http_status));
    json_object_object_add(x, "ms", json_object_new_int64(a->duration_ms));
    json_object_array_add(o->list, x);
    o->n++;
    return x;
}

void queries_outcome_done(struct queries_outcomes *o, long long delivery_id,
                        json_object *cancel_action, const char *refusal,
                        const struct queries_attempt *a, const struct queries_done_extra *e)
{
    json_object *x = outcome_new(o, delivery_id, a);
    json_object_object_add(x, "ok", json_object_new_boolean(1));
    if (cancel_action)
        json_object_object_add(x, "cancel_action", json_object_get(cancel_action));
    if (refusal)
        json_object_object_add(x, "refused", json_object_new_string(refusal));
    if (e && e->succeed)
        json_object_object_add(x, "succeed", json_object_new_boolean(1));
    if (e && e->set_output) {
        json_object_object_add(x, "set_output", json_object_new_boolean(1));
        json_object_object_add(x, "output", json_object_get(e->output));
    }
    if (e && e->output_refused)
        json_object_object_add(x, "output_refused", json_object_new_string(e->output_refused));
}

void queries_outcome_failed(struct queries_outcomes *o, long long delivery_id, const char *error,
                          int retry_ms, const struct queries_attempt *a)
{
    json_object *x = outcome_new(o, delivery_id, a);
    json_object_object_add(x, "ok", json_object_new_boolean(0));
    json_object_object_add(x, "error", json_object_new_string(error ? error : "unknown error"));
    if (retry_ms >= 0)
        json_object_object_add(x, "retry_ms", json_object_new_int(retry_ms));
}

int queries_outcomes_flush(struct db *db, struct queries_outcomes *o)
{
    if (o->n == 0)
        return 0;
    const char *params[] = {json_object_to_json_string_ext(o->list, JSON_C_TO_STRING_PLAIN)};
    PGresult *res;
    int rc = queries_query(db, "record outcomes", SQL_OUTCOMES, 1, params, &res);
    if (rc == 0)
        PQclear(res);
    else
        log_warn("%d outcomes not recorded; those calls are made again when their lease ends",
                 o->n);
    queries_outcomes_cleanup(o);
    return rc;
}

int queries_expire(struct db *db, int limit, int *n)
{
    char l[16];
    snprintf(l, sizeof l, "%d", limit);
    const char *params[] = {l};
    return queries_int_query(db, "expire", SQL_EXPIRE, 1, params, n);
}

int queries_purge(struct db *db, long deleted_after_s, long retention_s, int chunk, int *tasks,
                  int *batches)
{
    char d[24], r[24], c[16];
    snprintf(d, sizeof d, "%ld", deleted_after_s);
    snprintf(r, sizeof r, "%ld", retention_s);
    snprintf(c, sizeof c, "%d", chunk);
    const char *params[] = {d, retention_s > 0 ? r : NULL, c};
    PGresult *res;
    *tasks = *batches = 0;
    if (queries_query(db, "purge", SQL_PURGE, 3, params, &res) < 0)
        return -1;
    *tasks = atoi(PQgetvalue(res, 0, 0));
    *batches = atoi(PQgetvalue(res, 0, 1));
    PQclear(res);
    return 0;
}

int queries_recover(struct db *db, int *n)
{
    return queries_int_query(db, "recover", SQL_RECOVER, 0, NULL, n);
}

int queries_next_due_ms(struct db *db, int cap_ms, int *ms)
{
    char c[16];
    snprintf(c, sizeof c, "%d", cap_ms);
    const char *params[] = {c};
    return queries_int_query(db, "next due", SQL_NEXT_DUE, 1, params, ms);
}

int queries_due_schedules(struct db *db, int limit, PGresult **res)
{
    char l[16];
    snprintf(l, sizeof l, "%d", limit);
    const char *params[] = {l};
    return queries_query(db, "due schedules", SQL_DUE_SCHEDULES, 1, params, res);
}

int queries_fire_schedule(struct db *db, const char *id, const char *slot, const char *batch_id,
                          const char *tasks, const char *problems, PGresult **res)
{
    const char *params[] = {id, slot, batch_id, tasks, problems};
    return queries_query(db, "fire schedule", SQL_FIRE_SCHEDULE, 5, params, res);
}

void queries_wait_add(struct queries_outcomes *o, long long delivery_id, const char *target,
                      int wait_ms)
{
    if (!o->list)
        o->list = json_object_new_array();
    json_object *x = json_object_new_object();
    json_object_object_add(x, "id", json_object_new_int64(delivery_id));
    json_object_object_add(x, "target", json_object_new_string(target));
    json_object_object_add(x, "ms", json_object_new_int(wait_ms));
    json_object_array_add(o->list, x);
    o->n++;
}

int queries_waits_flush(struct db *db, struct queries_outcomes *o)
{
    if (o->n == 0)
        return 0;
    const char *params[] = {json_object_to_json_string_ext(o->list, JSON_C_TO_STRING_PLAIN)};
    PGresult *res;
    int rc = queries_query(db, "hand back calls", SQL_CALLS_WAIT, 1, params, &res);
    if (rc == 0)
        PQclear(res);
    else
        log_warn("%d calls not handed back; they are made again when their lease ends", o->n);
    queries_outcomes_cleanup(o);
    return rc;
}

int queries_target_hold(struct db *db, const char *target, int cooldown_ms, int failures)
{
    char c[16], f[16];
    snprintf(c, sizeof c, "%d", cooldown_ms);
    snprintf(f, sizeof f, "%d", failures);
    const char *params[] = {target, c, f};
    PGresult *res;
    if (queries_query(db, "hold target", SQL_TARGET_HOLD, 3, params, &res) < 0)
        return -1;
    PQclear(res);
    return 0;
}

int queries_target_try_probe(struct db *db, const char *target, int ms, bool *granted)
{
    char m[16];
    snprintf(m, sizeof m, "%d", ms);
    const char *params[] = {target, m};
    PGresult *res;
    if (queries_query(db, "probe target", SQL_TARGET_PROBE, 2, params, &res) < 0)
        return -1;
    *granted = PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    return 0;
}

static int target_count(struct db *db, const char *what, const char *sql, const char *target,
                        int limit, int *n)
{
    char l[16];
    snprintf(l, sizeof l, "%d", limit);
    const char *params[] = {target, l};
    return queries_int_query(db, what, sql, 2, params, n);
}

int queries_target_resume(struct db *db, const char *target, int limit, int *n)
{
    return target_count(db, "resume target", SQL_TARGET_RESUME, target, limit, n);
}

int queries_target_release(struct db *db, const char *target, int limit, int *n)
{
    return target_count(db, "release target", SQL_TARGET_RELEASE, target, limit, n);
}

int queries_held_targets(struct db *db, PGresult **res)
{
    return queries_query(db, "held targets", SQL_HELD_TARGETS, 0, NULL, res);
}

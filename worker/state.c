/*
 * state: the worker's queries (see state.h).
 */
#include "state.h"

#include <stdio.h>
#include <stdlib.h>

#include "log.h"

static const char SQL_LISTEN[] = "LISTEN taskrunner";
static const char SQL_LOCK_OWNER[] =
    "SELECT pg_try_advisory_lock(tr_worker_lock_class(), $1::integer)";
static const char SQL_CLAIM[] = "SELECT * FROM tr_claim($1::integer, $2::integer, $3::integer)";
static const char SQL_TAKE[] =
    "SELECT * FROM tr_take_deliveries($1::integer, $2::integer, $3::integer)";
static const char SQL_DONE[] =
    "SELECT tr_delivery_done($1::bigint, $2::jsonb, $3::integer, $4::integer)";
static const char SQL_FAILED[] =
    "SELECT tr_delivery_failed($1::bigint, $2, $3::integer, $4::integer, $5::integer)";
static const char SQL_EXPIRE[] = "SELECT tr_expire_tasks($1::integer)";
static const char SQL_RECOVER[] = "SELECT tr_recover_deliveries()";
static const char SQL_NEXT_DUE[] = "SELECT tr_next_due_ms($1::integer)";

/* Runs a query and logs why it failed; the worker only needs to know that. */
static int state_query(struct db *db, const char *what, const char *sql, int n,
                       const char *const *params, PGresult **res)
{
    struct db_error err;
    if (db_query(db, sql, n, params, res, &err) < 0) {
        log_warn("%s failed: %s (%s)", what, err.message, err.sqlstate);
        return -1;
    }
    return 0;
}

static int state_int_query(struct db *db, const char *what, const char *sql, int n,
                           const char *const *params, int *out)
{
    PGresult *res;
    if (state_query(db, what, sql, n, params, &res) < 0)
        return -1;
    *out = PQntuples(res) > 0 ? atoi(PQgetvalue(res, 0, 0)) : 0;
    PQclear(res);
    return 0;
}

int state_prepare_session(struct db *db, int *owner)
{
    PGresult *res;
    if (state_query(db, "LISTEN", SQL_LISTEN, 0, NULL, &res) < 0)
        return -1;
    PQclear(res);
    /* A random id; taken again if another live worker happens to hold it. */
    for (int tries = 0; tries < 16; tries++) {
        char id[16];
        int candidate = 1 + (int)(random() % 2147483646);
        snprintf(id, sizeof id, "%d", candidate);
        const char *params[] = {id};
        if (state_query(db, "owner lock", SQL_LOCK_OWNER, 1, params, &res) < 0)
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

static int state_calls(struct db *db, const char *what, const char *sql, int owner, int limit,
                       int lease_ms, PGresult **res)
{
    char o[16], l[16], m[16];
    snprintf(o, sizeof o, "%d", owner);
    snprintf(l, sizeof l, "%d", limit);
    snprintf(m, sizeof m, "%d", lease_ms);
    const char *params[] = {o, l, m};
    return state_query(db, what, sql, 3, params, res);
}

int state_claim(struct db *db, int owner, int limit, int lease_ms, PGresult **res)
{
    return state_calls(db, "claim", SQL_CLAIM, owner, limit, lease_ms, res);
}

int state_take(struct db *db, int owner, int limit, int lease_ms, PGresult **res)
{
    return state_calls(db, "take deliveries", SQL_TAKE, owner, limit, lease_ms, res);
}

int state_done(struct db *db, long long delivery_id, const char *cancel_action,
               const struct state_attempt *a)
{
    char id[24], code[16], ms[24];
    snprintf(id, sizeof id, "%lld", delivery_id);
    snprintf(code, sizeof code, "%ld", a->http_status);
    snprintf(ms, sizeof ms, "%lld", a->duration_ms);
    const char *params[] = {id, cancel_action, code, ms};
    PGresult *res;
    if (state_query(db, "delivery done", SQL_DONE, 4, params, &res) < 0)
        return -1;
    PQclear(res);
    return 0;
}

int state_failed(struct db *db, long long delivery_id, const char *error, int retry_ms,
                 const struct state_attempt *a)
{
    char id[24], retry[16], code[16], ms[24];
    snprintf(id, sizeof id, "%lld", delivery_id);
    snprintf(retry, sizeof retry, "%d", retry_ms);
    snprintf(code, sizeof code, "%ld", a->http_status);
    snprintf(ms, sizeof ms, "%lld", a->duration_ms);
    const char *params[] = {id, error, retry_ms >= 0 ? retry : NULL, code, ms};
    PGresult *res;
    if (state_query(db, "delivery failed", SQL_FAILED, 5, params, &res) < 0)
        return -1;
    PQclear(res);
    return 0;
}

int state_expire(struct db *db, int limit, int *n)
{
    char l[16];
    snprintf(l, sizeof l, "%d", limit);
    const char *params[] = {l};
    return state_int_query(db, "expire", SQL_EXPIRE, 1, params, n);
}

int state_recover(struct db *db, int *n)
{
    return state_int_query(db, "recover", SQL_RECOVER, 0, NULL, n);
}

int state_next_due_ms(struct db *db, int cap_ms, int *ms)
{
    char c[16];
    snprintf(c, sizeof c, "%d", cap_ms);
    const char *params[] = {c};
    return state_int_query(db, "next due", SQL_NEXT_DUE, 1, params, ms);
}

/*
 * db: reconnecting libpq connection and SQLSTATE mapping (see db.h).
 */
#include "db.h"

#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <stdio.h>
#include <unistd.h>

#include "log.h"

enum { DB_MAX_TRIES = 4 };

static const char SQL_NOTIFY_WORKERS[] = "SELECT pg_notify('taskrunner', 'work')";

static void db_connect(struct db *db)
{
    /* Short connect timeout: while PostgreSQL is down a request must get its
     * 503 quickly rather than hang. No JIT: the service's statements are
     * short, and a generic plan whose row estimates add up past
     * jit_above_cost was compiled on every call (15 ms for the answer of a
     * one-task POST /tasks once 60,000 tasks were stored). The options come
     * first so that options given in TASKRUNNER_DATABASE_URL win. */
    const char *keys[] = {"options", "dbname", "connect_timeout", "application_name", NULL};
    const char *values[] = {"-c jit=off", db->dsn, "3", "taskrunner", NULL};
    if (db->conn)
        PQfinish(db->conn);
    db->conn = PQconnectdbParams(keys, values, 1);
    db->generation++;
    db->n_prepared = 0;
    if (PQstatus(db->conn) != CONNECTION_OK) {
        log_warn("database connection failed: %s", PQerrorMessage(db->conn));
        PQfinish(db->conn);
        db->conn = NULL;
        return;
    }
    if (db->session_setup) {
        PGresult *r = PQexec(db->conn, db->session_setup);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            log_warn("database session setup failed: %s", PQerrorMessage(db->conn));
            PQfinish(db->conn);
            db->conn = NULL;
        }
        PQclear(r);
    }
}

void db_init(struct db *db, const char *dsn)
{
    db->dsn = xstrdup(dsn);
    db->conn = NULL;
    db->generation = 0;
    db->session_setup = NULL;
    db->n_prepared = 0;
}

void db_set_session_setup(struct db *db, const char *sql)
{
    db->session_setup = sql;
}

int db_notify_workers(struct db *db)
{
    PGresult *res;
    struct db_error err;
    if (db_query(db, SQL_NOTIFY_WORKERS, 0, NULL, &res, &err) < 0)
        return -1;
    PQclear(res);
    return 0;
}

void db_cleanup(struct db *db)
{
    if (db->conn)
        PQfinish(db->conn);
    db->conn = NULL;
    free(db->dsn);
    db->dsn = NULL;
}

/* An idle connection with something to read has either notifications (a
 * worker's LISTEN) or a server hanging up (a restart sends a FATAL, then
 * closes). Find out before sending a query, so that a query is never sent
 * into a dead connection and left in doubt. Notifications stay queued for
 * their reader (PQnotifies). */
static bool db_still_alive(struct db *db)
{
    for (int round = 0; round < 4; round++) {
        struct pollfd pfd = {.fd = PQsocket(db->conn), .events = POLLIN};
        if (pfd.fd < 0)
            return false;
        if (poll(&pfd, 1, 0) <= 0)
            break;
        /* Readable: read it; the FATAL and the end of the stream may come
         * in separate reads, hence the rounds. */
        if (!PQconsumeInput(db->conn) || PQstatus(db->conn) != CONNECTION_OK)
            return false;
        if (pfd.revents & (POLLHUP | POLLERR))
            return false;
    }
    return PQstatus(db->conn) == CONNECTION_OK;
}

bool db_connected(struct db *db)
{
    if (db->conn && db_still_alive(db))
        return true;
    db_connect(db);
    return db->conn != NULL;
}

/* The one place where SQLSTATEs become HTTP statuses: the first entry whose
 * state is a prefix of the SQLSTATE wins. "TR..." are the project's own,
 * raised by the SQL functions (sql/functions/common.sql) with a message
 * meant for the client. */
static const struct {
    const char *state;
    int http;
    const char *message; /* NULL: the server's message */
} DB_ERRORS[] = {
    {"TRNF0", 404, NULL}, /* not found */
    {"TRWS0", 409, NULL}, /* not allowed in the current state */
    {"TRBI0", 400, NULL}, /* bad input */
    {"TRIK0", 422, NULL}, /* an Idempotency-Key reused for another request */
    /* Lock contention that outlived its retries: the request may simply be
     * sent again. */
    {"40P01", 503, "database busy, retry"}, /* deadlock */
    {"40001", 503, "database busy, retry"}, /* serialization failure */
    {"55P03", 503, "database busy, retry"}, /* lock not available */
    {"08", 503, "database unavailable"},    /* connection */
    {"57P", 503, "database unavailable"},   /* shutting down */
    {"53300", 503, "database unavailable"}, /* too many connections */
    {"25006", 503, "database unavailable"}, /* read-only */
    {"22", 400, "invalid value"},           /* a value the database cannot take */
    {"23505", 409, "conflict with an existing record"},
    {"23503", 404, "referenced record not found"},
    {"", 500, "internal database error"},
};

/* Fills err for SQLSTATE state (NULL: no answer from the server) and the
 * server's message (NULL when none). */
static void db_map_error(const char *state, const char *server_message, struct db_error *err)
{
    err->field[0] = '\0';
    snprintf(err->sqlstate, sizeof err->sqlstate, "%s", state ? state : "");
    snprintf(err->server_message, sizeof err->server_message, "%s",
             server_message ? server_message : "");
    if (!state) {
        err->http = 503;
        snprintf(err->message, sizeof err->message, "database unavailable");
        return;
    }
    size_t i = 0;
    while (strncmp(state, DB_ERRORS[i].state, strlen(DB_ERRORS[i].state)) != 0)
        i++; /* the last entry matches every state */
    err->http = DB_ERRORS[i].http;
    snprintf(err->message, sizeof err->message, "%s",
             DB_ERRORS[i].message ? DB_ERRORS[i].message
                                  : (server_message && *server_message ? server_message
                                                                       : "database error"));
}

static bool db_retryable(const char *state)
{
    return state && (strcmp(state, "40P01") == 0 || strcmp(state, "40001") == 0);
}

/* Statement names are "tr" and the index of their text in db->prepared. */
static void db_statement_name(char *name, size_t size, int index)
{
    snprintf(name, size, "tr%d", index);
}

/* Runs sql as the statement prepared for it, preparing it first if this
 * connection has not; unprepared when the table of statements is full. A
 * failed preparation is answered like a failed execution (same result). */
static PGresult *db_exec(struct db *db, const char *sql, int n, const char *const *params,
                         bool prepare)
{
    char name[16];
    int index = 0;
    if (!prepare)
        return PQexecParams(db->conn, sql, n, NULL, params, NULL, NULL, 0);
    while (index < db->n_prepared && db->prepared[index] != sql)
        index++;
    if (index == db->n_prepared) {
        if (index == DB_PREPARED_MAX)
            return PQexecParams(db->conn, sql, n, NULL, params, NULL, NULL, 0);
        db_statement_name(name, sizeof name, index);
        PGresult *prep = PQprepare(db->conn, name, sql, n, NULL);
        if (PQresultStatus(prep) != PGRES_COMMAND_OK)
            return prep;
        PQclear(prep);
        db->prepared[db->n_prepared++] = sql;
    }
    db_statement_name(name, sizeof name, index);
    return PQexecPrepared(db->conn, name, n, params, NULL, NULL, 0);
}

/* Drops every prepared statement of the connection (they are made again on
 * their next use). */
static void db_forget_prepared(struct db *db)
{
    PGresult *r = PQexec(db->conn, "DEALLOCATE ALL");
    PQclear(r);
    db->n_prepared = 0;
}

/* "cached plan must not change result type" (0A000) and an unknown
 * statement (26000): the prepared statements no longer match the schema. */
static bool db_plan_outdated(const char *state)
{
    return state && (strcmp(state, "0A000") == 0 || strcmp(state, "26000") == 0);
}

static int db_run(struct db *db, const char *sql, int n, const char *const *params,
                  bool prepare, PGresult **res, struct db_error *err)
{
    bool prepared_again = false;
    *res = NULL;
    for (int attempt = 0; attempt < DB_MAX_TRIES; attempt++) {
        if (!db_connected(db)) {
            db_map_error(NULL, NULL, err);
            return -1;
        }
        PGresult *r = db_exec(db, sql, n, params, prepare);
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
            *res = r;
            return 0;
        }
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        if (PQstatus(db->conn) != CONNECTION_OK) {
            /* Lost in the middle: the statement may have committed, so it is
             * not sent again; the client retries (with its Idempotency-Key). */
            log_warn("database connection lost during a query: %s", PQerrorMessage(db->conn));
            PQclear(r);
            PQfinish(db->conn);
            db->conn = NULL;
            db_map_error(NULL, NULL, err);
            return -1;
        }
        if (prepare && !prepared_again && db_plan_outdated(state)) {
            prepared_again = true;
            /* A migration changed what a prepared statement returns. */
            log_warn("prepared statements outdated (%s), preparing again", state);
            PQclear(r);
            db_forget_prepared(db);
            continue;
        }
        const char *server_message = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
        if (db_retryable(state) && attempt + 1 < DB_MAX_TRIES) {
            /* Debug only: a retry that succeeds is no event, and one that
             * does not is logged once, with its SQLSTATE, by the caller. */
            log_debug("query failed (%s), trying again: %s", state, server_message);
            PQclear(r);
            usleep(1000u * (unsigned)(attempt + 1));
            continue;
        }
        db_map_error(state, server_message, err);
        /* Bad input the database found names its field path as the
         * error's column (RAISE ... COLUMN, sql/functions/templates.sql). */
        const char *field = PQresultErrorField(r, PG_DIAG_COLUMN_NAME);
        if (err->http == 400 && field && state && strncmp(state, "TR", 2) == 0)
            snprintf(err->field, sizeof err->field, "%s", field);
        PQclear(r);
        return -1;
    }
    db_map_error(NULL, NULL, err); /* (only after a re-preparation on the last try) */
    return -1;
}

int db_query(struct db *db, const char *sql, int n, const char *const *params, PGresult **res,
             struct db_error *err)
{
    return db_run(db, sql, n, params, true, res, err);
}

int db_query_unprepared(struct db *db, const char *sql, int n, const char *const *params,
                        PGresult **res, struct db_error *err)
{
    return db_run(db, sql, n, params, false, res, err);
}

/*
 * db: one libpq connection that reconnects by itself. Queries run with
 * parameters only, as statements prepared once per connection; a lost
 * connection is re-established on the next query, and an error is mapped to
 * the HTTP status it means in one place.
 */
#ifndef TR_DB_H
#define TR_DB_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "util.h"

enum { DB_PREPARED_MAX = 32 };

struct db {
    PGconn *conn;   /* NULL or the current connection */
    char *dsn;
    const char *session_setup; /* run on every new connection (static text), or NULL */
    unsigned generation; /* counts connections made: session state (LISTEN,
                            session locks) must be set up again when it changes */
    /* The statements prepared on conn: statement "trN" is prepared[N]. */
    const char *prepared[DB_PREPARED_MAX];
    int n_prepared;
};

/* Why a query failed: the HTTP status to answer (400, 404, 409, 503, 500),
 * the SQLSTATE ("" when there was no server answer), the message for the
 * client (the server's own for the project's SQLSTATEs, class TR; a fixed
 * one otherwise) and the server's message for the log. */
struct db_error {
    int http;
    char sqlstate[6];
    char message[256];
    char server_message[256];
    char field[256]; /* the field path of a project bad-input error, or "" */
};

/* Prepares db for dsn (copied); it connects on its first query, and again
 * whenever the connection is lost. */
void db_init(struct db *db, const char *dsn);
/* SQL (static text, no parameters; several statements allowed) run on each
 * new connection before any query: LISTEN, SET. */
void db_set_session_setup(struct db *db, const char *sql);
/* Wakes the workers (NOTIFY taskrunner) in a transaction of its own. */
int db_notify_workers(struct db *db) WARN_UNUSED;
void db_cleanup(struct db *db);
/* Whether the connection is up, reconnecting if it is not. */
bool db_connected(struct db *db);

/* Runs sql with n text parameters (NULL entries are SQL NULL). sql must be
 * static text: it is prepared on first use on each connection and known by
 * its address afterwards (parsed and planned once, not on every request);
 * beyond DB_PREPARED_MAX distinct texts it is sent unprepared. Reconnects
 * first when the connection was found closed, and retries deadlocks and
 * serialization failures (safe: every query is one statement, rolled back
 * whole). A connection lost mid-query is not retried: 503. On success
 * *res is the result (the caller PQclears it); on failure *err says why,
 * and nothing was logged of it: the caller logs it once if it should. */
int db_query(struct db *db, const char *sql, int n, const char *const *params, PGresult **res,
             struct db_error *err) WARN_UNUSED;
/* The same, parsed and planned on every call: for a query whose best plan
 * depends on its parameters (optional filters), which a prepared statement's
 * generic plan could not follow. */
int db_query_unprepared(struct db *db, const char *sql, int n, const char *const *params,
                        PGresult **res, struct db_error *err) WARN_UNUSED;

#endif

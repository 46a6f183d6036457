/*
 * state: every database call of the worker. Delivery and task state changes
 * happen only here, each one a function of sql/0003_worker_functions.sql in
 * its own transaction.
 */
#ifndef TR_STATE_H
#define TR_STATE_H

#include <json-c/json.h>
#include <libpq-fe.h>

#include "db.h"
#include "util.h"

/* Prepares db for dsn with the worker's session settings (LISTEN,
 * asynchronous commit, plans), applied on every (re)connection. */
void state_init(struct db *db, const char *dsn);
/* After each (re)connection: takes the owner lock that tells other workers
 * this one is alive. Returns -1 when the database is unreachable. *owner
 * gets a fresh id when the connection is new. */
int state_prepare_session(struct db *db, int *owner) WARN_UNUSED;

/* Claims up to limit runnable tasks; *res holds their start calls. */
int state_claim(struct db *db, int owner, int limit, int lease_ms, PGresult **res) WARN_UNUSED;
/* Takes up to limit due deliveries; *res holds the calls. */
int state_take(struct db *db, int owner, int limit, int lease_ms, PGresult **res) WARN_UNUSED;
/* What one HTTP attempt gave, for the task's audit trail. */
struct state_attempt {
    long http_status;      /* 0 when no answer came */
    long long duration_ms;
};

/* Outcomes of finished calls, gathered during one pass of the loop and
 * recorded together: one round trip and one transaction for all of them. */
struct state_outcomes {
    json_object *list; /* array of outcome objects, or NULL when empty */
    int n;
};

void state_outcomes_init(struct state_outcomes *o);
void state_outcomes_cleanup(struct state_outcomes *o);
/* A call answered 2xx; cancel_action is a normalized action JSON or NULL. */
void state_outcome_done(struct state_outcomes *o, long long delivery_id,
                        const char *cancel_action, const struct state_attempt *a);
/* A call failed: retry after retry_ms, or for good when retry_ms < 0. */
void state_outcome_failed(struct state_outcomes *o, long long delivery_id, const char *error,
                          int retry_ms, const struct state_attempt *a);
/* Records every gathered outcome and empties o. When the database cannot be
 * reached they are dropped: the calls are made again once their lease ends
 * (delivery is at least once). */
int state_outcomes_flush(struct db *db, struct state_outcomes *o) WARN_UNUSED;

/* Fails Running tasks whose heartbeat timed out; *n how many. */
int state_expire(struct db *db, int limit, int *n) WARN_UNUSED;
/* Re-queues deliveries of dead workers and expired leases; *n how many. */
int state_recover(struct db *db, int *n) WARN_UNUSED;
/* Milliseconds until the next retry or heartbeat deadline, at most cap_ms. */
int state_next_due_ms(struct db *db, int cap_ms, int *ms) WARN_UNUSED;

#endif

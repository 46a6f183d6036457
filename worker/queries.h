/*
 * queries: every database call of the worker. Delivery and task state changes
 * happen only here, each one a function of sql/functions/ (claim.sql,
 * deliveries.sql) in its own transaction.
 */
#ifndef TR_QUERIES_H
#define TR_QUERIES_H

#include <json-c/json.h>
#include <libpq-fe.h>
#include <stdbool.h>

#include "db.h"
#include "util.h"

/* Prepares db for dsn with the worker's session settings (LISTEN,
 * asynchronous commit, plans), applied on every (re)connection. */
void queries_init(struct db *db, const char *dsn);
/* After each (re)connection: takes the owner lock that tells other workers
 * this one is alive. Returns -1 when the database is unreachable. *owner
 * gets a fresh id when the connection is new. */
int queries_prepare_session(struct db *db, int *owner) WARN_UNUSED;

/* Claims up to limit runnable tasks; *res holds their start calls. */
int queries_claim(struct db *db, int owner, int limit, int lease_ms, PGresult **res) WARN_UNUSED;
/* Takes up to limit due deliveries; *res holds the calls. */
int queries_take(struct db *db, int owner, int limit, int lease_ms, PGresult **res) WARN_UNUSED;
/* What one HTTP attempt gave, for the task's audit trail. */
struct queries_attempt {
    long http_status;      /* 0 when no answer came */
    long long duration_ms;
};

/* Outcomes of finished calls, gathered during one pass of the loop and
 * recorded together: one round trip and one transaction for all of them. */
struct queries_outcomes {
    json_object *list; /* array of outcome objects, or NULL when empty */
    int n;
};

void queries_outcomes_init(struct queries_outcomes *o);
void queries_outcomes_cleanup(struct queries_outcomes *o);
/* A call answered 2xx. Its answer registers cancel_action (a normalized
 * action, or NULL; o takes a reference of its own), or was meant as an
 * action but refused for the reason refusal (or NULL): either goes into the
 * task's history. */
/* What else a 2xx (or accepted) answer asked (API.md, "Webhooks v2"). */
struct queries_done_extra {
    bool succeed;               /* a response rule said succeed: the task ends Success */
    bool set_output;            /* store_output: output (NULL: JSON null) becomes the task's */
    json_object *output;
    const char *output_refused; /* store_output, but not stored: why */
};

void queries_outcome_done(struct queries_outcomes *o, long long delivery_id,
                        json_object *cancel_action, const char *refusal,
                        const struct queries_attempt *a, const struct queries_done_extra *x);
/* A call failed: retry after retry_ms, or for good when retry_ms < 0. */
void queries_outcome_failed(struct queries_outcomes *o, long long delivery_id, const char *error,
                          int retry_ms, const struct queries_attempt *a);
/* Records every gathered outcome and empties o. When the database cannot be
 * reached they are dropped: the calls are made again once their lease ends
 * (delivery is at least once). */
int queries_outcomes_flush(struct db *db, struct queries_outcomes *o) WARN_UNUSED;

/* Calls taken but not made now (outbound isolation, worker/targets.h),
 * handed back together: each waits wait_ms for target in the database
 * (tr_calls_wait). Gathered in a struct queries_outcomes of their own. */
void queries_wait_add(struct queries_outcomes *o, long long delivery_id, const char *target,
                      int wait_ms);
int queries_waits_flush(struct db *db, struct queries_outcomes *o) WARN_UNUSED;
/* The breaker of target opened, or a probe failed: held back cooldown_ms. */
int queries_target_hold(struct db *db, const char *target, int cooldown_ms,
                        int failures) WARN_UNUSED;
/* Whether this worker may make the probe of held target (for ms). */
int queries_target_try_probe(struct db *db, const char *target, int ms,
                             bool *granted) WARN_UNUSED;
/* target resumed (a probe succeeded): *n calls waiting for it released. */
int queries_target_resume(struct db *db, const char *target, int limit, int *n) WARN_UNUSED;
/* Up to limit calls waiting for target released; *n how many. */
int queries_target_release(struct db *db, const char *target, int limit, int *n) WARN_UNUSED;
/* The held targets: *res rows (target, wait_ms, cooldown_ms). */
int queries_held_targets(struct db *db, PGresult **res) WARN_UNUSED;

/* Fails Running tasks whose heartbeat timed out; *n how many. */
int queries_expire(struct db *db, int limit, int *n) WARN_UNUSED;
/* One chunk of the purge (tr_purge; retention_s 0: off): *tasks and
 * *batches removed (0 when another worker is purging). */
int queries_purge(struct db *db, long deleted_after_s, long retention_s, int chunk, int *tasks,
                  int *batches) WARN_UNUSED;
/* Re-queues deliveries of dead workers and expired leases; *n how many. */
int queries_recover(struct db *db, int *n) WARN_UNUSED;
/* Schedules due now (tr_due_schedules): *res holds id, slot, template. */
int queries_due_schedules(struct db *db, int limit, PGresult **res) WARN_UNUSED;
/* Fires schedule id for its due slot (tr_fire_schedule) with the batch
 * batch_id of tasks (normalized JSON), or, tasks NULL, records a failed
 * firing with problems (JSON array). *res: outcome, delay_ms, more. */
int queries_fire_schedule(struct db *db, const char *id, const char *slot, const char *batch_id,
                          const char *tasks, const char *problems, PGresult **res) WARN_UNUSED;
/* Milliseconds until the next retry, heartbeat deadline, scheduled start or
 * schedule slot, at most cap_ms. */
int queries_next_due_ms(struct db *db, int cap_ms, int *ms) WARN_UNUSED;

#endif

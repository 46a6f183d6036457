/*
 * metrics: the counters of GET /metrics that a process aggregates in memory
 * (HTTP requests in the responders, webhook calls in the worker), handed to
 * the database about once a second, and the Prometheus text exposition of
 * the totals read back from there.
 *
 * Totals live in PostgreSQL (tables metric_counters and metric_deltas,
 * sql/migrations/0001_tables.sql):
 * every responder process and every worker adds its deltas there, and task
 * counters are added in the transaction of each change, so a
 * scrape answered by any responder shows the sum over all of them, and a
 * crashed process loses at most its last unflushed second.
 *
 * A histogram is kept as counters: name_bucket{...,le="<bound>"} (cumulative,
 * with le="+Inf" last), name_sum (in micro-units, so that it stays an
 * integer) and name_count.
 */
#ifndef TR_METRICS_H
#define TR_METRICS_H

#include <stddef.h>

#include "db.h"
#include "util.h"

/* The names the processes add to (the triggers of sql/ add the task ones). */
#define METRIC_HTTP_REQUESTS "taskrunner_http_requests_total"
#define METRIC_HTTP_DURATION "taskrunner_http_request_duration_seconds"
#define METRIC_WEBHOOK_CALLS "taskrunner_webhook_calls_total"
#define METRIC_WEBHOOK_DURATION "taskrunner_webhook_duration_seconds"
#define METRIC_LOOP_DURATION "taskrunner_worker_loop_duration_seconds"
#define METRIC_SCHEDULE_DELAY "taskrunner_schedule_firing_delay_seconds"

/* Counters and histograms of one process; safe to use from any thread. */
struct metrics;

/* A new, empty table (the caller's; release with metrics_free). */
struct metrics *metrics_new(void);
void metrics_free(struct metrics *m);

/*
 * Adds delta to counter name{labels}. labels is NULL or a NULL-terminated
 * list of alternating label names and values, always given in the same order
 * for one name ({"route", "/tasks", "code", "200", NULL}). Strings are copied.
 */
void metrics_add(struct metrics *m, const char *name, const char *const *labels, long long delta);

/*
 * Records one observation of value (seconds) in histogram name{labels}:
 * every bucket whose bound (bounds[0..n_bounds), ascending) is at least
 * value, the +Inf bucket, name_sum (micro-units) and name_count.
 */
void metrics_observe(struct metrics *m, const char *name, const char *const *labels,
                     const double *bounds, size_t n_bounds, double value);

/* The changes since the last flush, for the database. */
struct metrics_batch {
    struct metrics_entry **entries; /* borrowed from the table */
    long long *values;              /* each entry's total when taken */
    size_t n;
    char *json;                     /* [[name, {labels}, delta], ...] (owned) */
};

/* Fills b (the caller's: metrics_batch_cleanup) with every counter changed
 * since the last commit. Returns how many. */
size_t metrics_pending(struct metrics *m, struct metrics_batch *b);
/* Marks the changes of b as stored: they are not pending any more. */
void metrics_commit(struct metrics *m, const struct metrics_batch *b);
void metrics_batch_cleanup(struct metrics_batch *b);

/* Adds the pending changes to the database in one statement, then commits
 * them. On failure they stay pending for the next flush: -1, logged. */
int metrics_flush(struct metrics *m, struct db *db) WARN_UNUSED;

/* ------------------------------------------------------------ exposition */

enum metrics_type { METRICS_COUNTER, METRICS_GAUGE, METRICS_HISTOGRAM };

/* One metric family of the exposition. */
struct metrics_family {
    const char *name;   /* "taskrunner_http_requests_total" */
    enum metrics_type type;
    const char *labels; /* its label names ("route,code"), NULL for none */
    const char *help;
    const double *buckets; /* a histogram's bucket bounds, ascending (+Inf implied) */
    size_t n_buckets;
};

/* Every family GET /metrics shows, in the order shown; *n gets the count. */
const struct metrics_family *metrics_catalog(size_t *n);

/* One stored total, as the scrape reads it: the sample's name (a histogram's
 * with its _bucket, _sum or _count suffix), its labels as a JSON object of
 * strings, and its value. */
struct metrics_sample {
    const char *name;
    const char *labels;
    long long value;
};

/*
 * Appends the Prometheus text exposition (format 0.0.4) of families to out:
 * for each family, HELP and TYPE, then its samples; a histogram's series as
 * one bucket per bound of the family and +Inf (0 where no sample is: no
 * observation was that small), then _sum (in base units) and _count. A
 * counter or gauge without labels and without samples shows 0 (a histogram
 * shows no series until it has one). Samples of no family
 * in the list, or with unreadable labels, are left out. Label values are
 * escaped.
 */
void metrics_render(struct strbuf *out, const struct metrics_family *families,
                    size_t n_families, const struct metrics_sample *samples, size_t n_samples);

/* The bucket bounds (seconds) of the service's histograms. */
extern const double metrics_http_buckets[];
extern const size_t metrics_http_buckets_n;
extern const double metrics_webhook_buckets[];
extern const size_t metrics_webhook_buckets_n;
extern const double metrics_loop_buckets[];
extern const size_t metrics_loop_buckets_n;
extern const double metrics_schedule_buckets[];
extern const size_t metrics_schedule_buckets_n;

#endif

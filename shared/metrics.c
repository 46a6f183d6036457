/*
 * metrics: in-memory counters, their flush to the database, and the
 * Prometheus text exposition (see metrics.h).
 *
 * The table is a chained hash of entries keyed by name and label text (a
 * JSON object, as the database stores labels). Entries are never removed,
 * so a pointer to one stays valid for the life of the table: a flush takes
 * (entry, total) pairs under the lock, writes them without it, and marks
 * them stored under the lock again, so that requests never wait for the
 * database.
 */
#include "metrics.h"

#include <json-c/json.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

struct metrics_entry {
    struct metrics_entry *next; /* in its hash chain */
    char *name;
    char *labels;               /* JSON object text, "{}" without labels */
    unsigned long hash;
    long long value;            /* total since the process started */
    long long stored;           /* the part of value already in the database */
    bool written;               /* a row exists in the database, even at 0 */
};

struct metrics {
    pthread_mutex_t lock;
    struct metrics_entry **chains;
    size_t n_chains;
    struct metrics_entry **all; /* every entry, in creation order */
    size_t n_all, cap_all;
};

static const char SQL_FLUSH[] = "SELECT tr_metrics_flush($1::jsonb)";

enum { INITIAL_CHAINS = 64 };

const double metrics_http_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                       0.25,  0.5,    1,     2.5,  5,     10};
const size_t metrics_http_buckets_n = sizeof metrics_http_buckets / sizeof(double);
const double metrics_webhook_buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                          1,     2.5,  5,     10,   30,  60};
const size_t metrics_webhook_buckets_n = sizeof metrics_webhook_buckets / sizeof(double);
const double metrics_loop_buckets[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                       0.025,  0.05,    0.1,    0.25,  0.5,    1};
const size_t metrics_loop_buckets_n = sizeof metrics_loop_buckets / sizeof(double);
const double metrics_schedule_buckets[] = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75,
                                           1,    2,     5,    10,  30,   60};
const size_t metrics_schedule_buckets_n = sizeof metrics_schedule_buckets / sizeof(double);

/* Start attempts per ended task: counted by the database (tr_move_tasks,
 * sql/functions/statuses.sql), with these very bounds. */
static const double metrics_attempt_buckets[] = {1, 2, 3, 5, 10};

#define BUCKETS(x) metrics_##x##_buckets, sizeof metrics_##x##_buckets / sizeof(double)
#define NO_BUCKETS NULL, 0

static const struct metrics_family catalog[] = {
    {"taskrunner_tasks_created_total", METRICS_COUNTER, NULL, "Tasks created.", NO_BUCKETS},
    {"taskrunner_tasks_completed_total", METRICS_COUNTER, "outcome,kind",
     "Tasks that reached a terminal status, by outcome and kind (kinds beyond "
     "TASKRUNNER_METRICS_MAX_KINDS are \"other\").",
     NO_BUCKETS},
    {"taskrunner_task_status_transitions_total", METRICS_COUNTER, "from,to",
     "Task status changes, by status before and after.", NO_BUCKETS},
    {"taskrunner_tasks_blocked_by_rule_total", METRICS_COUNTER, NULL,
     "Times the worker passed over a runnable task because one of its concurrency rules was "
     "full.",
     NO_BUCKETS},
    {"taskrunner_dependency_propagations_total", METRICS_COUNTER, "parent_outcome",
     "Children touched by the end of a parent task, by the parent's outcome.", NO_BUCKETS},
    {"taskrunner_task_retries_total", METRICS_COUNTER, "kind,reason",
     "Task attempts retried, by kind and why the attempt failed (failure, timeout, "
     "start_failed) or manual (a re-run).",
     NO_BUCKETS},
    {"taskrunner_task_attempts", METRICS_HISTOGRAM, NULL,
     "Start attempts of each task that ended (Success, Failure or Canceled).",
     BUCKETS(attempt)},
    {METRIC_WEBHOOK_CALLS, METRICS_COUNTER, "trigger,outcome",
     "Webhook call attempts made by the worker, by trigger and outcome (success, http_error, "
     "no_answer).",
     NO_BUCKETS},
    {METRIC_WEBHOOK_DURATION, METRICS_HISTOGRAM, "trigger",
     "Duration of webhook call attempts in seconds, by trigger.", BUCKETS(webhook)},
    {"taskrunner_dead_letters_total", METRICS_COUNTER, NULL,
     "End and cancel webhook calls that failed every attempt.", NO_BUCKETS},
    {METRIC_HTTP_REQUESTS, METRICS_COUNTER, "route,code",
     "HTTP requests answered by the responders, by route pattern and status code.", NO_BUCKETS},
    {METRIC_HTTP_DURATION, METRICS_HISTOGRAM, "route",
     "Time the responders took to answer HTTP requests in seconds, by route pattern.",
     BUCKETS(http)},
    {METRIC_LOOP_DURATION, METRICS_HISTOGRAM, NULL,
     "Time the worker spent working per pass of its event loop (the wait excluded) in "
     "seconds.",
     BUCKETS(loop)},
    {"taskrunner_schedule_firings_total", METRICS_COUNTER, "outcome",
     "Schedule firings, by outcome (fired, triggered, skipped_overlap, skipped_catchup, "
     "failed).",
     NO_BUCKETS},
    {METRIC_SCHEDULE_DELAY, METRICS_HISTOGRAM, NULL,
     "Delay from a schedule's slot to the creation of its batch, in seconds.",
     BUCKETS(schedule)},
    {"taskrunner_tasks_purged_total", METRICS_COUNTER, NULL,
     "Tasks removed for good by the purge (soft-deleted, or past the retention).", NO_BUCKETS},
    {"taskrunner_tasks", METRICS_GAUGE, "status", "Tasks by current status.", NO_BUCKETS},
    {"taskrunner_tasks_preempted_total", METRICS_COUNTER, "kind",
     "Tasks preempted (sent back to Pending for a higher-priority task), by kind.",
     NO_BUCKETS},
    {"taskrunner_group_tasks", METRICS_GAUGE, "group,status",
     "Tasks of each group that have not ended, by status (groups beyond "
     "TASKRUNNER_METRICS_MAX_GROUPS are \"other\").",
     NO_BUCKETS},
    {"taskrunner_webhook_targets_unavailable", METRICS_GAUGE, NULL,
     "Webhook targets (scheme, host, port) a worker's circuit breaker holds back now.",
     NO_BUCKETS},
};

const struct metrics_family *metrics_catalog(size_t *n)
{
    *n = sizeof catalog / sizeof catalog[0];
    return catalog;
}

/* ---------------------------------------------------------------- the table */

struct metrics *metrics_new(void)
{
    struct metrics *m = xcalloc(1, sizeof *m);
    pthread_mutex_init(&m->lock, NULL);
    m->n_chains = INITIAL_CHAINS;
    m->chains = xcalloc(m->n_chains, sizeof *m->chains);
    return m;
}

void metrics_free(struct metrics *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_all; i++) {
        free(m->all[i]->name);
        free(m->all[i]->labels);
        free(m->all[i]);
    }
    free(m->all);
    free(m->chains);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

/* FNV-1a over name, a separator and labels. */
static unsigned long key_hash(const char *name, const char *labels)
{
    unsigned long h = 14695981039346656037UL;
    for (const char *p = name; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211UL;
    h = (h ^ 0xffu) * 1099511628211UL;
    for (const char *p = labels; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211UL;
    return h;
}

static void grow_chains(struct metrics *m)
{
    size_t n = m->n_chains * 2;
    struct metrics_entry **chains = xcalloc(n, sizeof *chains);
    for (size_t i = 0; i < m->n_all; i++) {
        struct metrics_entry *e = m->all[i];
        e->next = chains[e->hash % n];
        chains[e->hash % n] = e;
    }
    free(m->chains);
    m->chains = chains;
    m->n_chains = n;
}

/* The entry of name{labels}, created at 0 when new. Called under the lock. */
static struct metrics_entry *entry_get(struct metrics *m, const char *name, const char *labels)
{
    unsigned long h = key_hash(name, labels);
    for (struct metrics_entry *e = m->chains[h % m->n_chains]; e; e = e->next)
        if (e->hash == h && strcmp(e->name, name) == 0 && strcmp(e->labels, labels) == 0)
            return e;
    if (m->n_all == m->n_chains)
        grow_chains(m);
    struct metrics_entry *e = xcalloc(1, sizeof *e);
    e->name = xstrdup(name);
    e->labels = xstrdup(labels);
    e->hash = h;
    e->next = m->chains[h % m->n_chains];
    m->chains[h % m->n_chains] = e;
    if (m->n_all == m->cap_all) {
        m->cap_all = m->cap_all ? m->cap_all * 2 : 64;
        m->all = xrealloc(m->all, m->cap_all * sizeof *m->all);
    }
    m->all[m->n_all++] = e;
    return e;
}

/* Appends s as a JSON string. */
static void json_quote(struct strbuf *b, const char *s)
{
    strbuf_add(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            char esc[2] = {'\\', (char)*p};
            strbuf_add(b, esc, 2);
        } else if (*p < 0x20) {
            strbuf_addf(b, "\\u%04x", *p);
        } else {
            strbuf_add(b, (const char *)p, 1);
        }
    }
    strbuf_add(b, "\"", 1);
}

/* The labels as a JSON object, with "le": le added last when le is set. */
static void labels_json(struct strbuf *b, const char *const *labels, const char *le)
{
    strbuf_adds(b, "{");
    bool first = true;
    for (size_t i = 0; labels && labels[i] && labels[i + 1]; i += 2) {
        if (!first)
            strbuf_adds(b, ", ");
        json_quote(b, labels[i]);
        strbuf_adds(b, ": ");
        json_quote(b, labels[i + 1]);
        first = false;
    }
    if (le) {
        strbuf_adds(b, first ? "\"le\": " : ", \"le\": ");
        json_quote(b, le);
    }
    strbuf_adds(b, "}");
}

void metrics_add(struct metrics *m, const char *name, const char *const *labels, long long delta)
{
    struct strbuf key;
    strbuf_init(&key);
    labels_json(&key, labels, NULL);
    pthread_mutex_lock(&m->lock);
    entry_get(m, name, key.data)->value += delta;
    pthread_mutex_unlock(&m->lock);
    strbuf_cleanup(&key);
}

void metrics_observe(struct metrics *m, const char *name, const char *const *labels,
                     const double *bounds, size_t n_bounds, double value)
{
    char bucket[128], sum[128], count[128];
    snprintf(bucket, sizeof bucket, "%s_bucket", name);
    snprintf(sum, sizeof sum, "%s_sum", name);
    snprintf(count, sizeof count, "%s_count", name);
    if (!(value >= 0)) /* NaN or negative: a clock step; count it as 0 */
        value = 0;
    /* Rounded half up by hand: llround() is all this process would load
     * libm for (~0.3 MB resident in each responder). */
    long long micros = value > 9e12 ? 9000000000000000000LL : (long long)(value * 1e6 + 0.5);

    struct strbuf base;
    strbuf_init(&base);
    labels_json(&base, labels, NULL);
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i <= n_bounds; i++) {
        if (i < n_bounds && bounds[i] < value)
            continue;
        char le[32];
        if (i < n_bounds)
            snprintf(le, sizeof le, "%g", bounds[i]);
        else
            snprintf(le, sizeof le, "+Inf");
        struct strbuf key;
        strbuf_init(&key);
        labels_json(&key, labels, le);
        entry_get(m, bucket, key.data)->value++;
        strbuf_cleanup(&key);
    }
    entry_get(m, sum, base.data)->value += micros;
    entry_get(m, count, base.data)->value++;
    pthread_mutex_unlock(&m->lock);
    strbuf_cleanup(&base);
}

/* ---------------------------------------------------------------- flushing */

size_t metrics_pending(struct metrics *m, struct metrics_batch *b)
{
    memset(b, 0, sizeof *b);
    struct strbuf json;
    strbuf_init(&json);
    strbuf_adds(&json, "[");
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->n_all; i++) {
        struct metrics_entry *e = m->all[i];
        /* A new entry is written even at 0: a histogram whose
         * observations all rounded to 0 µs still needs its _sum. */
        if (e->value == e->stored && e->written)
            continue;
        if (b->n % 64 == 0) {
            b->entries = xrealloc(b->entries, (b->n + 64) * sizeof *b->entries);
            b->values = xrealloc(b->values, (b->n + 64) * sizeof *b->values);
        }
        b->entries[b->n] = e;
        b->values[b->n] = e->value;
        strbuf_adds(&json, b->n ? ", [" : "[");
        json_quote(&json, e->name);
        strbuf_addf(&json, ", %s, %lld]", e->labels, e->value - e->stored);
        b->n++;
    }
    pthread_mutex_unlock(&m->lock);
    strbuf_adds(&json, "]");
    b->json = json.data;
    return b->n;
}

void metrics_commit(struct metrics *m, const struct metrics_batch *b)
{
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < b->n; i++) {
        b->entries[i]->stored = b->values[i];
        b->entries[i]->written = true;
    }
    pthread_mutex_unlock(&m->lock);
}

void metrics_batch_cleanup(struct metrics_batch *b)
{
    free(b->entries);
    free(b->values);
    free(b->json);
    memset(b, 0, sizeof *b);
}

int metrics_flush(struct metrics *m, struct db *db)
{
    struct metrics_batch b;
    int rc = 0;
    if (metrics_pending(m, &b) > 0) {
        const char *params[] = {b.json};
        PGresult *res;
        struct db_error err;
        if (db_query(db, SQL_FLUSH, 1, params, &res, &err) < 0) {
            log_warn("metrics not flushed (kept for the next try): %s", err.message);
            rc = -1;
        } else {
            PQclear(res);
            metrics_commit(m, &b);
        }
    }
    metrics_batch_cleanup(&b);
    return rc;
}

/* ---------------------------------------------------------------- exposition */

/* A sample as the renderer needs it. */
struct parsed {
    const struct metrics_sample *s;
    char *base;   /* label pairs without le, escaped: `route="/x",code="200"` */
    char *le;     /* the le label, or NULL */
    double le_num;
    bool ok;
};

/* Appends v as a label value: backslash, double quote and newline escaped. */
static void prom_escape(struct strbuf *b, const char *v)
{
    for (const char *p = v; *p; p++) {
        if (*p == '\\')
            strbuf_adds(b, "\\\\");
        else if (*p == '"')
            strbuf_adds(b, "\\\"");
        else if (*p == '\n')
            strbuf_adds(b, "\\n");
        else
            strbuf_add(b, p, 1);
    }
}

static void parse_sample(const struct metrics_sample *s, struct parsed *p)
{
    memset(p, 0, sizeof *p);
    p->s = s;
    json_object *o = json_tokener_parse(s->labels ? s->labels : "{}");
    if (!o || !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        return;
    }
    struct strbuf b;
    strbuf_init(&b);
    strbuf_adds(&b, "");
    json_object_object_foreach(o, key, val) {
        const char *v = json_object_is_type(val, json_type_null) ? "" : json_object_get_string(val);
        if (strcmp(key, "le") == 0) {
            p->le = xstrdup(v);
            p->le_num = strcmp(v, "+Inf") == 0 ? INFINITY : strtod(v, NULL);
            continue;
        }
        strbuf_addf(&b, "%s%s=\"", b.len ? "," : "", key);
        prom_escape(&b, v);
        strbuf_adds(&b, "\"");
    }
    json_object_put(o);
    p->base = b.data;
    p->ok = true;
}

/* One sample line: name{base[,le="..."]} value. micro: value is in
 * micro-units, written in base units. */
static void render_line(struct strbuf *out, const char *name, const struct parsed *p,
                        bool with_le, bool micro)
{
    bool has_base = p->base && p->base[0];
    strbuf_adds(out, name);
    if (has_base || with_le) {
        strbuf_addf(out, "{%s", has_base ? p->base : "");
        if (with_le) {
            strbuf_addf(out, "%sle=\"", has_base ? "," : "");
            prom_escape(out, p->le);
            strbuf_adds(out, "\"");
        }
        strbuf_adds(out, "}");
    }
    long long v = p->s->value;
    if (micro)
        strbuf_addf(out, " %s%lld.%06lld\n", v < 0 ? "-" : "", llabs(v) / 1000000,
                    llabs(v) % 1000000);
    else
        strbuf_addf(out, " %lld\n", v);
}

static bool name_is(const struct parsed *p, const char *family, const char *suffix)
{
    size_t n = strlen(family);
    return p->ok && strncmp(p->s->name, family, n) == 0 && strcmp(p->s->name + n, suffix) == 0;
}

/* The bucket of series base with bound le, or NULL when none was stored. */
static const struct parsed *find_bucket(const char *family, const char *base, double le,
                                        const struct parsed *ps, size_t n)
{
    for (size_t j = 0; j < n; j++)
        if (name_is(&ps[j], family, "_bucket") && ps[j].le && ps[j].le_num == le &&
            strcmp(ps[j].base, base) == 0)
            return &ps[j];
    return NULL;
}

static void render_histogram(struct strbuf *out, const struct metrics_family *f,
                             const struct parsed *ps, size_t n)
{
    char bucket[160], sum[160], count[160];
    snprintf(bucket, sizeof bucket, "%s_bucket", f->name);
    snprintf(sum, sizeof sum, "%s_sum", f->name);
    snprintf(count, sizeof count, "%s_count", f->name);
    /* One series per _count sample: its buckets, _sum and _count. */
    for (size_t i = 0; i < n; i++) {
        if (!name_is(&ps[i], f->name, "_count") || ps[i].le)
            continue;
        for (size_t b = 0; b <= f->n_buckets; b++) {
            double le = b < f->n_buckets ? f->buckets[b] : INFINITY;
            char le_text[32];
            if (b < f->n_buckets)
                snprintf(le_text, sizeof le_text, "%g", le);
            else
                snprintf(le_text, sizeof le_text, "+Inf");
            const struct parsed *found = find_bucket(f->name, ps[i].base, le, ps, n);
            struct metrics_sample zero = {.value = 0};
            struct parsed line = {.s = found ? found->s : &zero, .base = ps[i].base,
                                  .le = le_text, .ok = true};
            render_line(out, bucket, &line, true, false);
        }
        for (size_t j = 0; j < n; j++)
            if (name_is(&ps[j], f->name, "_sum") && !ps[j].le &&
                strcmp(ps[j].base, ps[i].base) == 0)
                render_line(out, sum, &ps[j], false, true);
        render_line(out, count, &ps[i], false, false);
    }
}

void metrics_render(struct strbuf *out, const struct metrics_family *families,
                    size_t n_families, const struct metrics_sample *samples, size_t n_samples)
{
    static const char *const type_names[] = {"counter", "gauge", "histogram"};
    struct parsed *ps = xcalloc(n_samples ? n_samples : 1, sizeof *ps);
    for (size_t i = 0; i < n_samples; i++)
        parse_sample(&samples[i], &ps[i]);
    for (size_t k = 0; k < n_families; k++) {
        const struct metrics_family *f = &families[k];
        strbuf_addf(out, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name,
                    type_names[f->type]);
        if (f->type == METRICS_HISTOGRAM) {
            render_histogram(out, f, ps, n_samples);
            continue;
        }
        bool any = false;
        for (size_t i = 0; i < n_samples; i++) {
            if (name_is(&ps[i], f->name, "") && !ps[i].le) {
                render_line(out, f->name, &ps[i], false, false);
                any = true;
            }
        }
        /* A counter or gauge without labels exists from the start: 0, not nothing. */
        if (!any && !f->labels)
            strbuf_addf(out, "%s 0\n", f->name);
    }
    for (size_t i = 0; i < n_samples; i++) {
        free(ps[i].base);
        free(ps[i].le);
    }
    free(ps);
}

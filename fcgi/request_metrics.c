/*
 * request_metrics: the responder's request metrics and their flush thread (see
 * request_metrics.h).
 */
#include "request_metrics.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db.h"
#include "log.h"
#include "metrics.h"
#include "router.h"

struct request_metrics {
    const struct config *cfg;
    struct metrics *metrics; /* shared by every thread of the process */
    pthread_t thread;        /* the flusher */
    pthread_mutex_t lock;    /* guards stopping */
    pthread_cond_t wake;     /* signalled by request_metrics_stop */
    bool stopping;
};

static void flush(struct request_metrics *o, struct db *db)
{
    if (metrics_flush(o->metrics, db) < 0)
        log_debug("request metrics stay in memory until the database answers");
}

static void *flusher_main(void *arg)
{
    struct request_metrics *o = arg;
    struct db db;
    db_init(&db, o->cfg->database_url);
    pthread_mutex_lock(&o->lock);
    while (!o->stopping) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        long long ns = until.tv_nsec + (long long)o->cfg->metrics_flush_ms * 1000000LL;
        until.tv_sec += (time_t)(ns / 1000000000LL);
        until.tv_nsec = (long)(ns % 1000000000LL);
        int rc = pthread_cond_timedwait(&o->wake, &o->lock, &until);
        if (rc != 0 && rc != ETIMEDOUT)
            log_warn("metrics flusher: waiting failed: %s", strerror(rc));
        pthread_mutex_unlock(&o->lock);
        flush(o, &db);
        pthread_mutex_lock(&o->lock);
    }
    pthread_mutex_unlock(&o->lock);
    flush(o, &db); /* what came in while the last one ran */
    db_cleanup(&db);
    return NULL;
}

struct request_metrics *request_metrics_start(const struct config *cfg)
{
    struct request_metrics *o = xcalloc(1, sizeof *o);
    o->cfg = cfg;
    o->metrics = metrics_new();
    pthread_mutex_init(&o->lock, NULL);
    pthread_cond_init(&o->wake, NULL);
    int rc = pthread_create(&o->thread, NULL, flusher_main, o);
    if (rc != 0)
        fatal("could not start the metrics flusher: %s", strerror(rc));
    return o;
}

void request_metrics_record(struct request_metrics *o, const struct request *r, double seconds)
{
    const char *route = router_route_name(r);
    char code[16];
    snprintf(code, sizeof code, "%d", r->status);
    const char *counter_labels[] = {"route", route, "code", code, NULL};
    const char *histogram_labels[] = {"route", route, NULL};
    metrics_add(o->metrics, METRIC_HTTP_REQUESTS, counter_labels, 1);
    metrics_observe(o->metrics, METRIC_HTTP_DURATION, histogram_labels, metrics_http_buckets,
                    metrics_http_buckets_n, seconds);
}

void request_metrics_stop(struct request_metrics *o)
{
    if (!o)
        return;
    pthread_mutex_lock(&o->lock);
    o->stopping = true;
    pthread_cond_signal(&o->wake);
    pthread_mutex_unlock(&o->lock);
    pthread_join(o->thread, NULL);
}

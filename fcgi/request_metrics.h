/*
 * request_metrics: the responder's own metrics. Each answered request counts in
 * taskrunner_http_requests_total{route,code} and
 * taskrunner_http_request_duration_seconds{route} (route: the pattern of
 * the route table, so the label stays bounded), in one table shared by the
 * process's threads. A background thread with its own database connection
 * adds them to the totals (shared/metrics.h) every
 * TASKRUNNER_METRICS_FLUSH_MS, and once more when the responder stops.
 */
#ifndef TR_REQUEST_METRICS_H
#define TR_REQUEST_METRICS_H

#include "config.h"
#include "request.h"

struct request_metrics;

/* Starts the flush thread. cfg must outlive the result (the caller's,
 * released by request_metrics_stop). */
struct request_metrics *request_metrics_start(const struct config *cfg);
/* Counts the answered request r (its route and status) that took seconds. */
void request_metrics_record(struct request_metrics *o, const struct request *r, double seconds);
/* Stops the thread after a last flush. o itself stays valid (threads still
 * finishing a request may count into it; they are not flushed any more): the
 * process exits next. NULL is fine. */
void request_metrics_stop(struct request_metrics *o);

#endif

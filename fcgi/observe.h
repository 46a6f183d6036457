/*
 * observe: the responder's own metrics. Each answered request counts in
 * taskrunner_http_requests_total{route,code} and
 * taskrunner_http_request_duration_seconds{route} (route: the pattern of
 * the route table, so the label stays bounded), in one table shared by the
 * process's threads. A background thread with its own database connection
 * adds them to the totals (shared/metrics.h) every
 * TASKRUNNER_METRICS_FLUSH_MS, and once more when the responder stops.
 */
#ifndef TR_OBSERVE_H
#define TR_OBSERVE_H

#include "config.h"
#include "request.h"

struct observe;

/* Starts the flush thread. cfg must outlive the result (the caller's,
 * released by observe_stop). */
struct observe *observe_start(const struct config *cfg);
/* Counts the answered request r (its route and status) that took seconds. */
void observe_request(struct observe *o, const struct request *r, double seconds);
/* Stops the thread after a last flush. o itself stays valid (threads still
 * finishing a request may count into it; they are not flushed any more): the
 * process exits next. NULL is fine. */
void observe_stop(struct observe *o);

#endif

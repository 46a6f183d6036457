/*
 * deliver: making webhook calls with libcurl's multi interface. It holds the
 * transfers in flight (at most TASKRUNNER_MAX_INFLIGHT), and reports each
 * finished one; it never touches the database.
 */
#ifndef TR_DELIVER_H
#define TR_DELIVER_H

#include <curl/curl.h>
#include <json-c/json.h>
#include <stdbool.h>

#include "call.h"
#include "config.h"

struct deliver;

/* What became of one call. */
struct call_result {
    long long delivery_id;
    const char *task_id; /* (valid during the callback) */
    const char *trigger; /* "Start", "End" or "Cancel" (valid during the callback) */
    const char *target;  /* "scheme://host:port" (valid during the callback) */
    long http_status;    /* the answer's status, 0 when none came */
    bool is_start;
    bool ok;            /* answered 2xx */
    bool retryable;     /* a failure worth another try (not one the SSRF check refused) */
    int attempts;       /* tries so far, this one included */
    const char *error;  /* why it failed (valid during the callback) */
    const char *body;   /* answer body of a start call (valid during the callback) */
    size_t body_len;    /* its length in bytes (it may hold NUL bytes) */
    bool too_large;     /* a start call's 2xx answer was longer than
                           TASKRUNNER_MAX_RESPONSE_BYTES and was not read */
    long long elapsed_ms;
    int max_attempts;   /* params.max_attempts, 0: the service's default */
    bool succeed;       /* a response rule said "succeed" (on_start: the task ends Success) */
    bool store_output;  /* params.response.store_output (on_start) */
};

typedef void (*deliver_done_fn)(void *ctx, const struct call_result *res);

struct deliver *deliver_new(const struct config *cfg);
void deliver_free(struct deliver *d);

/* Writes the target of call c (worker/targets.h: scheme, host and port of
 * its URL, templates filled) into target. Returns -1 when the call cannot
 * even be made (its URL is unusable), with *error set to a static reason. */
int deliver_target(struct deliver *d, const struct call *c, char *target, size_t n,
                   char *error, size_t error_size) WARN_UNUSED;
/* Starts the call c to target (whose contents are copied). Returns -1 when
 * it cannot even be made (as deliver_target), with why in error. The call's
 * params.timeout_ms, params.max_attempts and params.response apply. */
int deliver_start(struct deliver *d, const struct call *c, const char *target,
                  char *error, size_t error_size) WARN_UNUSED;
int deliver_inflight(const struct deliver *d);
/* Waits for transfer activity or one of the extra descriptors, at most
 * timeout_ms (curl_multi_poll). */
void deliver_wait(struct deliver *d, struct curl_waitfd *extra, unsigned n_extra, int timeout_ms);
/* Moves transfers along (connects, sends what can be sent) without
 * waiting: new calls leave at once instead of after the worker's next query. */
void deliver_progress(struct deliver *d);
/* Moves transfers along and reports each finished one to done. */
void deliver_collect(struct deliver *d, deliver_done_fn done, void *ctx);
/* Stops every transfer in flight, reporting each as a retryable failure
 * (shutdown hands them back). */
void deliver_abort_all(struct deliver *d, deliver_done_fn done, void *ctx);

#endif

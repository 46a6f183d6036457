/*
 * targets: outbound isolation in one worker (docs/API.md, "Outbound
 * isolation"). A *target* is the scheme, host and port a call goes to
 * ("http://host:port", parsed by curl's URL API). Per target it keeps the
 * calls in flight (at most TASKRUNNER_MAX_INFLIGHT_PER_HOST), a short queue
 * of calls waiting for a free place, how many it handed back to the
 * database to wait there, and the circuit breaker: after
 * TASKRUNNER_BREAKER_FAILURES consecutive failed calls (no answer, refused,
 * 5xx) the target is held back for a cool-down that doubles after each
 * failed probe (TASKRUNNER_BREAKER_COOLDOWN_MS up to ..._MAX_MS); then one
 * probe call at a time is let through, and its success resumes the target.
 * It never touches the database: the loop records what it reports
 * (sql/functions/targets.sql), and feeds back what other workers decided
 * (targets_sync).
 */
#ifndef TR_TARGETS_H
#define TR_TARGETS_H

#include <stdbool.h>
#include <stddef.h>

#include "call.h"
#include "config.h"

enum { TARGET_MAX = 256 }; /* longest target text kept, NUL included */

struct targets;

/* What may be done with a call to a target now. */
enum target_verdict {
    TARGET_GO,    /* make it: a place in flight is counted for it */
    TARGET_QUEUE, /* wait in this worker for a free place (targets_queue) */
    TARGET_PARK,  /* hand it back to wait in the database: too many wait here */
    TARGET_HELD,  /* held back by the breaker: hand it back */
    TARGET_PROBE, /* the cool-down is over: may be the probe (ask the database) */
};

/* What a finished call changed in its target's breaker. */
enum target_event {
    TARGET_NONE,
    TARGET_OPENED,  /* held back now: record it (tr_target_hold) */
    TARGET_REHELD,  /* a probe failed: held back again, longer */
    TARGET_RESUMED, /* a probe succeeded: record it (tr_target_resume) */
};

struct targets *targets_new(const struct config *cfg);
/* Frees t and the calls still queued in it (call_cleanup). */
void targets_free(struct targets *t);

/* Writes the target of url ("scheme://host:port", lower case, the
 * scheme's default port filled in) into out. Returns -1 when curl cannot
 * parse url. */
int targets_of_url(const char *url, char *out, size_t n);

/* Decides for one call to target now (monotonic ms); a TARGET_GO counts
 * it in flight. */
enum target_verdict targets_admit(struct targets *t, const char *target, long long now);
/* The database granted (or refused) the probe of target: counted in flight
 * as the probe, or held back a little longer. */
void targets_probe_granted(struct targets *t, const char *target);
void targets_probe_refused(struct targets *t, const char *target, long long now);
/* A call to target admitted with TARGET_GO finished: failed says whether it
 * counts as a failure of the target (no answer, refused, 5xx); neutral
 * (an aborted call) counts neither way. *cooldown_ms gets the cool-down of
 * an OPENED or REHELD target, *failures the consecutive failures. */
enum target_event targets_done(struct targets *t, const char *target, bool failed, bool neutral,
                               long long now, int *cooldown_ms, int *failures);

/* How long a call handed back for target should wait in the database (ms):
 * held back, past the end of its cool-down (its resume releases it
 * sooner); saturated, the webhook timeout (a free place releases it). */
int targets_wait_ms(struct targets *t, const char *target, bool held, long long now);
/* Counts n calls of target handed back to wait for a free place. */
void targets_parked(struct targets *t, const char *target, int n);

/* Keeps call c (taken over: the caller must not clean it up) until target
 * has a free place. */
void targets_queue(struct targets *t, const char *target, struct call *c);
/* Takes the next queued call that may go now into *c (the caller's), with
 * its target; returns false when none. Calls of a target held back meanwhile
 * come out too (the caller hands them back). */
bool targets_next_ready(struct targets *t, struct call *c, char *target, size_t n);
/* Takes any queued call (shutdown hands them back); false when none. */
bool targets_next_any(struct targets *t, struct call *c, char *target, size_t n);

/* A target with calls waiting in the database and a free place here, or
 * one held back whose cool-down is over with no probe asked for: *limit
 * calls of it are to be released (tr_target_release). Returns false when
 * there is none; each target is reported once per call of this function's
 * caller loop (at most max_report per pass, see targets_release_begin). */
void targets_release_begin(struct targets *t);
bool targets_next_release(struct targets *t, long long now, char *target, size_t n, int *limit);
/* n of the asked calls of target were released. */
void targets_released(struct targets *t, const char *target, int asked, int n);

/* The shared state: target is held back by some worker for wait_ms more
 * (cool-down cooldown_ms). targets_sync_end forgets the holds not seen
 * since targets_sync_begin (another worker resumed them). */
void targets_sync_begin(struct targets *t);
void targets_sync_held(struct targets *t, const char *target, int wait_ms, int cooldown_ms,
                       long long now);
void targets_sync_end(struct targets *t);

/* Targets held back now, as this worker knows. */
int targets_held_count(const struct targets *t);

#endif

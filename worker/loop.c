/*
 * loop: the worker's event loop (see loop.h).
 *
 * NOTIFY is only a hint that there is work: each wake-up re-reads the
 * durable state (tr_claim, tr_take_deliveries), and a poll every
 * TASKRUNNER_POLL_INTERVAL_MS covers a lost notification. Everything the
 * worker decides is recorded in the database before or with its effect, so
 * a crash at any point loses nothing: deliveries it held come back to the
 * queue when its session (and owner lock) is gone.
 *
 * Metrics: each attempt counts in taskrunner_webhook_calls_total and
 * taskrunner_webhook_duration_seconds, each pass of the loop in
 * taskrunner_worker_loop_duration_seconds (the time spent working, not
 * waiting); they are added to the totals in the database every
 * TASKRUNNER_METRICS_FLUSH_MS and once more on the way out.
 *
 * Outbound isolation (worker/targets.h): every call is first admitted by
 * its target. One beyond TASKRUNNER_MAX_INFLIGHT_PER_HOST waits in a short
 * queue of its target here, or is handed back to the database when that is
 * full; one whose target is held back by the breaker is handed back to wait
 * for the cool-down (a start call's task Pending again, with the
 * target_unavailable blocker). The breaker's state is shared through the
 * table held_targets, read every SYNC_EVERY_MS.
 */
#include "loop.h"

#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "backoff.h"
#include "db.h"
#include "deliver.h"
#include "log.h"
#include "metrics.h"
#include "queries.h"
#include "response.h"
#include "schedules.h"
#include "start_answer.h"
#include "targets.h"
#include "url.h"
#include "validate.h"

enum {
    EXPIRE_EVERY_MS = 200,   /* heartbeat timeouts are noticed within this */
    EXPIRE_BATCH = 100,
    RECOVER_EVERY_MS = 2000, /* how soon a dead worker's calls come back */
    DB_DOWN_WAIT_MS = 500,
    LEASE_MARGIN_MS = 30000, /* a lease outlives the longest call by this */
    DUE_RECHECK_MS = 100,    /* after a notification, the next due time is read again
                                within this (a new schedule, a task's scheduled start) */
    SYNC_EVERY_MS = 250,     /* how soon a target another worker holds back is known */
    RESUME_RELEASE = 10000,  /* calls a resumed target releases at once (the rest: their wait) */
    RELEASE_PER_PASS = 64,   /* targets whose waiting calls are released per pass */
};

struct worker {
    const struct config *cfg;
    struct db db;
    struct deliver *deliver;
    int owner;               /* our owner id, valid for session_generation */
    unsigned session_generation;
    bool work_hint;          /* there may be work: query before sleeping */
    bool due_stale;          /* a notification came: the next due time may be sooner */
    bool stopping;
    bool handing_back;       /* shutdown: failed calls go back to the queue at once */
    long long next_expire_ms, next_recover_ms, next_poll_ms, next_flush_ms, next_sync_ms;
    long long next_purge_ms; /* the purge's next chunk, or its next look */
    long long due_read_ms;   /* when the next due time was last read */
    struct metrics *metrics; /* this worker's counts not yet in the totals */
    struct queries_outcomes outcomes; /* finished calls not yet recorded */
    struct queries_outcomes waits;    /* calls handed back, not yet recorded */
    struct targets *targets;          /* per-target places and breakers */
};

/* A monotonic clock in microseconds, for the loop's own timing. */
static long long mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

/* Counts one attempt: its outcome (success, http_error: an answer that was
 * not a usable 2xx, no_answer: timeout, connection failure, refused
 * address) and its duration, by trigger. */
static void count_attempt(struct worker *w, const struct call_result *res)
{
    const char *outcome = res->ok ? "success" : res->http_status > 0 ? "http_error" : "no_answer";
    const char *calls[] = {"trigger", res->trigger, "outcome", outcome, NULL};
    const char *duration[] = {"trigger", res->trigger, NULL};
    metrics_add(w->metrics, METRIC_WEBHOOK_CALLS, calls, 1);
    metrics_observe(w->metrics, METRIC_WEBHOOK_DURATION, duration, metrics_webhook_buckets,
                    metrics_webhook_buckets_n, (double)res->elapsed_ms / 1000.0);
}

static long long min_ll(long long a, long long b)
{
    return a < b ? a : b;
}

/* Exponential backoff with equal jitter: half the delay fixed, half random. */
static int backoff_ms(const struct config *cfg, int attempts)
{
    struct backoff b = {.base_ms = cfg->retry_base_ms, .factor = cfg->retry_factor,
                        .cap_ms = cfg->retry_cap_ms, .jitter = BACKOFF_JITTER_EQUAL};
    return (int)backoff_delay_ms(&b, attempts, (double)random() / RAND_MAX);
}

/* Reads the 2xx answer of a start call (shared/start_answer.h) and logs
 * what it asks: a registration (with the action's id and its URL, its
 * credentials masked) or why it was refused. Both also go into the task's
 * history, with the call's outcome (tr_record_outcomes). */
static void read_start_answer(const struct worker *w, const struct call_result *res,
                              struct start_answer *answer)
{
    start_answer_read(res->body, res->body_len, res->too_large,
                      (size_t)w->cfg->max_response_bytes, answer);
    if (answer->kind == START_ANSWER_REFUSED) {
        log_warn("on_start answer refused as a cancel action: %s", answer->reason);
    } else if (answer->kind == START_ANSWER_REGISTER) {
        json_object *id = NULL, *params = NULL, *url = NULL;
        json_object_object_get_ex(answer->action, "id", &id);
        if (json_object_object_get_ex(answer->action, "params", &params))
            json_object_object_get_ex(params, "url", &url);
        char *shown = url_mask_credentials(json_object_get_string(url));
        log_info("on_start answer registers cancel action %s: %s", json_object_get_string(id),
                 shown ? shown : "?");
        free(shown);
    }
}

/* A start call's answer as the task's output (params.response.store_output):
 * one JSON value of at most OUTPUT_MAX bytes, storable as jsonb (the rules
 * of PATCH {"output"}). Returns 0 with *out (caller owns; NULL for JSON
 * null), or -1 with why it is not stored (the call still counts). */
enum { OUTPUT_MAX = 65536 };
static int read_output(const struct call_result *res, json_object **out, char *why, size_t n)
{
    *out = NULL;
    if (res->too_large || res->body_len > OUTPUT_MAX) {
        snprintf(why, n, "the answer is longer than %d bytes", OUTPUT_MAX);
        return -1;
    }
    if (response_parse(res->body, res->body_len, out) < 0) {
        snprintf(why, n, "the answer is not one JSON value (depth at most %d)",
                 RESPONSE_DEPTH_MAX);
        return -1;
    }
    struct verr_list errs;
    verr_list_init(&errs);
    int rc = validate_json_value(*out, "output", &errs);
    if (rc < 0) {
        snprintf(why, n, "the answer cannot be stored: %s %s", errs.items[0].field,
                 errs.items[0].message);
        json_object_put(*out);
        *out = NULL;
    }
    verr_list_cleanup(&errs);
    return rc;
}

/* Tells the breaker of res's target how the call went; records and logs
 * a target held back or resumed. */
static void judge_target(struct worker *w, const struct call_result *res)
{
    /* A failure of the target: no answer (refused, timeout) or a 5xx. An
     * address the SSRF check refused and an aborted call say nothing. */
    bool neutral = w->handing_back || (!res->ok && !res->retryable);
    bool failed = !res->ok && (res->http_status == 0 || res->http_status >= 500);
    int cooldown = 0, failures = 0, n = 0;
    switch (targets_done(w->targets, res->target, failed, neutral, util_mono_ms(), &cooldown,
                         &failures)) {
    case TARGET_OPENED:
        log_warn("target %s held back for %d ms after %d consecutive failed calls (last: %s)",
                 res->target, cooldown, failures, res->error ? res->error : "?");
        if (queries_target_hold(&w->db, res->target, cooldown, failures) < 0)
            log_warn("target %s is held back by this worker only", res->target);
        break;
    case TARGET_REHELD:
        log_warn("target %s: probe call failed (%s); held back for %d ms more", res->target,
                 res->error ? res->error : "?", cooldown);
        if (queries_target_hold(&w->db, res->target, cooldown, 1) < 0)
            log_warn("target %s is held back by this worker only", res->target);
        break;
    case TARGET_RESUMED:
        if (queries_target_resume(&w->db, res->target, RESUME_RELEASE, &n) < 0)
            log_warn("target %s resumed here; the others learn it when it answers them",
                     res->target);
        log_info("target %s resumed: probe call answered %ld; %d waiting calls released",
                 res->target, res->http_status, n);
        break;
    case TARGET_NONE:
        break;
    }
}

static void on_call_done(void *ctx, const struct call_result *res)
{
    struct worker *w = ctx;
    judge_target(w, res);
    struct queries_attempt attempt = {.http_status = res->http_status,
                                    .duration_ms = res->elapsed_ms};
    log_set_context("delivery=%lld task=%s", res->delivery_id, res->task_id);
    if (!w->handing_back) /* an aborted transfer is no attempt worth counting */
        count_attempt(w, res);
    if (res->ok) {
        struct start_answer answer = {.kind = START_ANSWER_NONE};
        struct queries_done_extra extra = {.succeed = res->succeed};
        char why[160];
        log_debug("%s call answered %ld in %lld ms", res->trigger, res->http_status,
                  res->elapsed_ms);
        if (res->is_start && !w->handing_back && res->store_output) {
            /* The answer is the task's output, not an action to register. */
            extra.set_output = read_output(res, &extra.output, why, sizeof why) == 0;
            if (!extra.set_output)
                extra.output_refused = why;
        } else if (res->is_start && !w->handing_back) {
            read_start_answer(w, res, &answer);
        }
        queries_outcome_done(&w->outcomes, res->delivery_id, answer.action,
                             answer.kind == START_ANSWER_REFUSED ? answer.reason : NULL,
                             &attempt, &extra);
        json_object_put(extra.output);
        start_answer_cleanup(&answer);
    } else {
        int retry = -1;
        int max = res->max_attempts > 0 ? res->max_attempts : w->cfg->retry_attempts;
        if (w->handing_back)
            retry = 0;
        else if (res->retryable && res->attempts < max)
            retry = backoff_ms(w->cfg, res->attempts);
        log_info("%s call failed (attempt %d): %s; %s", res->trigger, res->attempts, res->error,
                 retry >= 0 ? "will retry" : "giving up");
        queries_outcome_failed(&w->outcomes, res->delivery_id, res->error, retry, &attempt);
        if (retry >= 0)
            w->next_poll_ms = min_ll(w->next_poll_ms, util_mono_ms() + retry);
    }
    log_set_context(NULL);
    w->work_hint = true; /* capacity freed, or a retry was queued */
}

static int lease_ms(const struct worker *w)
{
    return w->cfg->webhook_timeout_ms + LEASE_MARGIN_MS;
}

/* Hands call c back to wait for target in the database. */
static void hand_back(struct worker *w, const struct call *c, const char *target, bool held)
{
    int ms = targets_wait_ms(w->targets, target, held, util_mono_ms());
    log_debug("call %lld waits for %s (%s) %d ms", c->delivery_id, target,
              held ? "held back" : "busy", ms);
    queries_wait_add(&w->waits, c->delivery_id, target, ms);
    if (!held)
        targets_parked(w->targets, target, 1);
}

/* Makes call c, queues it for its target, or hands it back (worker/targets.h);
 * a call that cannot be made fails for good. c is left empty when queued. */
static void dispatch(struct worker *w, struct call *c, const char *known_target)
{
    char target[TARGET_MAX];
    char error[320] = "stored action is unreadable";
    struct queries_attempt none = {0};
    bool granted = false;
    if (known_target)
        snprintf(target, sizeof target, "%s", known_target);
    else if (deliver_target(w->deliver, c, target, sizeof target, error, sizeof error) < 0)
        goto cannot;
    enum target_verdict v = targets_admit(w->targets, target, util_mono_ms());
    if (v == TARGET_PROBE) {
        if (queries_target_try_probe(&w->db, target, lease_ms(w), &granted) == 0 && granted) {
            targets_probe_granted(w->targets, target);
            log_info("target %s: probe call %lld", target, c->delivery_id);
            v = TARGET_GO;
        } else {
            targets_probe_refused(w->targets, target, util_mono_ms());
            v = TARGET_HELD;
        }
    }
    switch (v) {
    case TARGET_GO:
        if (deliver_start(w->deliver, c, target, error, sizeof error) == 0)
            return;
        {
            int cd, f;
            (void)targets_done(w->targets, target, false, true, util_mono_ms(), &cd, &f);
        }
        goto cannot;
    case TARGET_QUEUE:
        targets_queue(w->targets, target, c);
        return;
    case TARGET_PARK:
    case TARGET_HELD:
    case TARGET_PROBE:
        hand_back(w, c, target, v != TARGET_PARK);
        return;
    }
cannot:
    log_warn("call %lld cannot be made: %s", c->delivery_id, error);
    queries_outcome_failed(&w->outcomes, c->delivery_id, error, -1, &none);
}

/* Starts every call of res; a call that cannot be made fails for good. */
static void start_calls(struct worker *w, PGresult *res)
{
    for (int i = 0; i < PQntuples(res); i++) {
        struct call c;
        struct queries_attempt none = {0};
        int rc = call_from_row(&c, res, i);
        log_set_context("delivery=%lld task=%s", c.delivery_id, c.task_id);
        if (rc < 0) {
            log_warn("call %lld cannot be made: stored action is unreadable", c.delivery_id);
            queries_outcome_failed(&w->outcomes, c.delivery_id, "stored action is unreadable",
                                   -1, &none);
        } else {
            dispatch(w, &c, NULL);
        }
        log_set_context(NULL);
        call_cleanup(&c);
    }
}

/* Starts the queued calls whose target has a free place (or hands back
 * those of a target held back meanwhile), within the global cap. */
static void start_queued(struct worker *w)
{
    char target[TARGET_MAX];
    struct call c;
    for (int i = 0; i < 100000 && deliver_inflight(w->deliver) < w->cfg->max_inflight; i++) {
        if (!targets_next_ready(w->targets, &c, target, sizeof target))
            break;
        log_set_context("delivery=%lld task=%s", c.delivery_id, c.task_id);
        dispatch(w, &c, target);
        log_set_context(NULL);
        call_cleanup(&c);
    }
}

/* Releases calls waiting in the database for a target that has room here
 * again, and one call of a held target whose cool-down is over (the
 * probe). */
static void release_waiting(struct worker *w)
{
    char target[TARGET_MAX];
    int limit, n;
    targets_release_begin(w->targets);
    for (int i = 0; i < RELEASE_PER_PASS; i++) {
        if (!targets_next_release(w->targets, util_mono_ms(), target, sizeof target, &limit))
            break;
        if (queries_target_release(&w->db, target, limit, &n) < 0)
            break;
        targets_released(w->targets, target, limit, n);
        if (n > 0)
            w->work_hint = true;
    }
}

/* Reads the targets held back by any worker. */
static void sync_targets(struct worker *w, long long now)
{
    PGresult *res;
    if (queries_held_targets(&w->db, &res) < 0)
        return;
    targets_sync_begin(w->targets);
    for (int i = 0; i < PQntuples(res); i++)
        targets_sync_held(w->targets, PQgetvalue(res, i, 0), atoi(PQgetvalue(res, i, 1)),
                          atoi(PQgetvalue(res, i, 2)), now);
    targets_sync_end(w->targets);
    PQclear(res);
}

/* Takes runnable tasks and due deliveries up to the free capacity. */
static void take_work(struct worker *w)
{
    w->work_hint = false;
    PGresult *res;
    release_waiting(w);
    int room = w->cfg->max_inflight - deliver_inflight(w->deliver);
    int want = room < w->cfg->claim_batch ? room : w->cfg->claim_batch;
    if (want > 0 && queries_claim(&w->db, w->owner, want, lease_ms(w), &res) == 0) {
        /* A full claim may have left more behind. A short one took all
         * there was: what it passed over is held by another worker or
         * blocked by a rule, and a change to either wakes us again. */
        if (PQntuples(res) == want)
            w->work_hint = true;
        start_calls(w, res);
        PQclear(res);
        deliver_progress(w->deliver); /* on their way before the next query */
        if (queries_waits_flush(&w->db, &w->waits) < 0)
            log_warn("could not hand back calls waiting for their target");
    }
    room = w->cfg->max_inflight - deliver_inflight(w->deliver);
    want = room < w->cfg->claim_batch ? room : w->cfg->claim_batch;
    if (want > 0 && queries_take(&w->db, w->owner, want, lease_ms(w), &res) == 0) {
        if (PQntuples(res) == want)
            w->work_hint = true;
        start_calls(w, res);
        PQclear(res);
    }
}

/* The periodic duties: heartbeat timeouts, recovery, the fallback poll. */
static void run_timers(struct worker *w, long long now)
{
    int n;
    if (now >= w->next_expire_ms) {
        w->next_expire_ms = now + EXPIRE_EVERY_MS;
        if (queries_expire(&w->db, EXPIRE_BATCH, &n) == 0 && n > 0) {
            log_info("%d tasks timed out", n);
            w->work_hint = true;
            if (n == EXPIRE_BATCH)
                w->next_expire_ms = now;
        }
    }
    if (now >= w->next_recover_ms) {
        w->next_recover_ms = now + RECOVER_EVERY_MS;
        if (queries_recover(&w->db, &n) == 0 && n > 0) {
            log_info("%d calls of a stopped worker queued again", n);
            w->work_hint = true;
        }
    }
    if (now >= w->next_purge_ms) {
        /* Soft-deleted tasks and expired batches (sql/functions/purge.sql):
         * a chunk per turn, paced, so that the API keeps its latency. */
        int tasks, batches;
        w->next_purge_ms = now + w->cfg->purge_interval_ms;
        if (queries_purge(&w->db, w->cfg->purge_deleted_after_s, w->cfg->retention_s,
                          w->cfg->purge_chunk, &tasks, &batches) == 0 &&
            (tasks > 0 || batches > 0)) {
            log_info("purged %d tasks and %d batches", tasks, batches);
            if (tasks >= w->cfg->purge_chunk)
                w->next_purge_ms = now + w->cfg->purge_pause_ms;
        }
    }
    long long regular_poll_ms = w->next_poll_ms;
    if (w->due_stale && now >= w->due_read_ms + DUE_RECHECK_MS)
        w->next_poll_ms = now;
    if (now >= w->next_sync_ms) {
        w->next_sync_ms = now + SYNC_EVERY_MS;
        sync_targets(w, now);
    }
    if (now >= w->next_poll_ms) {
        bool again = false;
        /* The fallback poll looks for work whose notification was missed;
         * a recheck of the due time follows a notification, whose work
         * was taken already. */
        if (now >= regular_poll_ms)
            w->work_hint = true;
        w->due_stale = false;
        w->due_read_ms = now;
        w->next_poll_ms = now + w->cfg->poll_interval_ms;
        int fired = schedules_fire_due(&w->db, w->cfg, w->metrics, &again);
        if (fired < 0)
            return; /* tried again at the next poll, not in a tight loop */
        if (again) {
            w->next_poll_ms = now; /* a catch-up goes on at once */
            return;
        }
        int due;
        if (queries_next_due_ms(&w->db, w->cfg->poll_interval_ms, &due) == 0)
            w->next_poll_ms = now + (due > 0 ? due : 1);
    }
}

/* Reads the notifications that arrived; any of them means "look again". */
static void drain_notifications(struct worker *w)
{
    if (!w->db.conn)
        return;
    if (!PQconsumeInput(w->db.conn))
        return; /* the next query notices the broken connection and reconnects */
    PGnotify *n;
    while ((n = PQnotifies(w->db.conn)) != NULL) {
        w->work_hint = true;
        w->due_stale = true;
        PQfreemem(n);
    }
}

static void read_signal(struct worker *w, int signal_fd)
{
    struct signalfd_siginfo si;
    if (read(signal_fd, &si, sizeof si) == (ssize_t)sizeof si && !w->stopping) {
        log_info("signal %u: no new work; finishing calls in flight", si.ssi_signo);
        w->stopping = true;
    }
}

/* One pass: make sure the session is set up, take work, sleep until
 * something happens, then collect finished calls. */
/* Adds this worker's counts to the totals in the database, at most every
 * TASKRUNNER_METRICS_FLUSH_MS (now < 0: at once). Kept for the next try when
 * the database does not take them. */
static void flush_metrics(struct worker *w, long long now)
{
    if (now >= 0 && now < w->next_flush_ms)
        return;
    w->next_flush_ms = (now >= 0 ? now : util_mono_ms()) + w->cfg->metrics_flush_ms;
    if (metrics_flush(w->metrics, &w->db) < 0)
        log_debug("worker metrics stay in memory until the database answers");
}

/* Shutdown: the calls queued for their target go back to the queue now. */
static void hand_back_queued(struct worker *w)
{
    char target[TARGET_MAX];
    struct call c;
    for (int i = 0; i < 100000 && targets_next_any(w->targets, &c, target, sizeof target); i++) {
        queries_wait_add(&w->waits, c.delivery_id, target, 0);
        call_cleanup(&c);
    }
}

static void loop_once(struct worker *w, int signal_fd, long long stop_deadline)
{
    long long busy_from = mono_us();
    long long now = util_mono_ms();
    bool db_up = db_connected(&w->db);
    if (db_up && w->session_generation != w->db.generation) {
        if (queries_prepare_session(&w->db, &w->owner) == 0) {
            w->session_generation = w->db.generation;
            w->work_hint = true;
            log_info("listening for work as owner %d", w->owner);
        } else {
            db_up = false;
        }
    }
    if (db_up && !w->stopping) {
        /* A notification's work first: its start must not wait for the
         * timers' queries (due schedules, the next due time, targets). */
        if (w->work_hint)
            take_work(w);
        run_timers(w, now);
        if (w->work_hint)
            take_work(w);
    }
    if (db_up)
        flush_metrics(w, now);
    /* Notifications that arrived during the queries above are already in
     * libpq's queue, and the socket will not wake us for them. */
    if (db_up)
        drain_notifications(w);
    long long wake = w->stopping ? stop_deadline
                                 : min_ll(min_ll(min_ll(w->next_expire_ms, w->next_recover_ms),
                                                 min_ll(w->next_poll_ms, w->next_flush_ms)),
                                          min_ll(w->next_sync_ms, w->next_purge_ms));
    /* Database down: the timers (all database work) wait for it, and it is
     * tried again after a pause, not in a busy loop. */
    if (!db_up)
        wake = min_ll(w->stopping ? stop_deadline : now + DB_DOWN_WAIT_MS, now + DB_DOWN_WAIT_MS);
    int timeout = w->work_hint && db_up && !w->stopping ? 0 : (int)(wake > now ? wake - now : 0);

    struct curl_waitfd fds[2] = {{.fd = signal_fd, .events = CURL_WAIT_POLLIN}};
    unsigned nfds = 1;
    if (db_up && w->db.conn) {
        fds[1].fd = PQsocket(w->db.conn);
        fds[1].events = CURL_WAIT_POLLIN;
        nfds = 2;
    }
    long long busy_us = mono_us() - busy_from;
    deliver_wait(w->deliver, fds, nfds, timeout);
    busy_from = mono_us();
    if (fds[0].revents & CURL_WAIT_POLLIN)
        read_signal(w, signal_fd);
    if (nfds == 2 && (fds[1].revents & CURL_WAIT_POLLIN))
        drain_notifications(w);
    deliver_collect(w->deliver, on_call_done, w);
    if (queries_outcomes_flush(&w->db, &w->outcomes) < 0)
        log_warn("could not record the outcomes of finished calls");
    if (w->stopping)
        hand_back_queued(w);
    else
        start_queued(w);
    if (queries_waits_flush(&w->db, &w->waits) < 0)
        log_warn("could not hand back calls waiting for their target");
    busy_us += mono_us() - busy_from;
    metrics_observe(w->metrics, METRIC_LOOP_DURATION, NULL, metrics_loop_buckets,
                    metrics_loop_buckets_n, (double)busy_us / 1e6);
}

int loop_run(const struct config *cfg, int signal_fd)
{
    struct worker w = {.cfg = cfg};
    queries_init(&w.db, cfg->database_url);
    w.deliver = deliver_new(cfg);
    w.targets = targets_new(cfg);
    w.metrics = metrics_new();
    long long stop_deadline = 0;
    while (!w.stopping || deliver_inflight(w.deliver) > 0) {
        bool was_stopping = w.stopping;
        loop_once(&w, signal_fd, stop_deadline);
        if (w.stopping && !was_stopping)
            stop_deadline = util_mono_ms() + cfg->shutdown_grace_ms;
        if (w.stopping && util_mono_ms() >= stop_deadline)
            break;
    }
    if (deliver_inflight(w.deliver) > 0) {
        log_info("handing back %d calls still in flight", deliver_inflight(w.deliver));
        w.handing_back = true;
        deliver_abort_all(w.deliver, on_call_done, &w);
        if (queries_outcomes_flush(&w.db, &w.outcomes) < 0)
            log_warn("could not hand back the calls in flight; their leases will");
    }
    hand_back_queued(&w);
    if (queries_waits_flush(&w.db, &w.waits) < 0)
        log_warn("could not hand back the calls waiting for their target; their leases will");
    flush_metrics(&w, -1);
    metrics_free(w.metrics);
    queries_outcomes_cleanup(&w.outcomes);
    queries_outcomes_cleanup(&w.waits);
    targets_free(w.targets);
    deliver_free(w.deliver);
    db_cleanup(&w.db);
    log_info("worker stopped");
    return 0;
}

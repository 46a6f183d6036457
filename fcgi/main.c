/*
 * taskrunner-fcgi: the FastCGI responder. spawn-fcgi hands it the listening
 * socket as fd 0 (multiwatch runs several such processes). Each process runs
 * TASKRUNNER_FCGI_THREADS threads; each thread owns one FastCGI request and
 * one database connection and serves one FastCGI connection at a time, so
 * a connection nginx keeps alive ties up one thread and no other.
 *
 * SIGTERM (or INT, or USR1, multiwatch's default) is graceful: no new
 * request is taken, requests in flight are answered, then the process exits.
 */
#include <errno.h>
#include <fcgiapp.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "config.h"
#include "db.h"
#include "log.h"
#include "pool.h"
#include "request_metrics.h"
#include "reply.h"
#include "request.h"
#include "router.h"

struct responder_thread {
    pthread_t thread;
    int index;
    const struct config *cfg;
    struct request_metrics *metrics; /* the process's request metrics */
    atomic_bool busy; /* between accepting a request and finishing it */
};

/* Requests with bodies above this trim the heap afterwards. */
enum { LARGE_REQUEST_BYTES = 64 * 1024 };

/* Set by the main thread when a stop signal arrives. */
static atomic_bool stopping;

/* Serves one request. Returns whether it may have made work for the
 * workers (a 2xx answer to a change; not to PUT, which only counts progress),
 * so that they are woken. */
static bool serve_one(struct responder_thread *t, FCGX_Request *fcgx, struct db *db)
{
    struct request r;
    long long started = util_now_us();
    request_init(&r, fcgx, t->cfg, db);
    log_set_context("req=%s requester=%s", r.request_id, r.requester);
    router_dispatch(&r);
    long long took_us = util_now_us() - started;
    request_metrics_record(t->metrics, &r, (double)took_us / 1e6);
    log_debug("%s %s -> %d in %.3f ms", r.method, r.path, r.status, (double)took_us / 1000.0);
    bool changed = r.status >= 200 && r.status < 300 && strcmp(r.method, "GET") != 0 &&
                   strcmp(r.method, "HEAD") != 0 && strcmp(r.method, "PUT") != 0;
    bool large = r.body_len > LARGE_REQUEST_BYTES;
    request_cleanup(&r);
    log_set_context(NULL);
    /* A big batch leaves megabytes of freed JSON objects in this thread's
     * heap; hand them back so a responder stays small between big requests. */
    if (large)
        malloc_trim(0);
    return changed;
}

static void *responder_main(void *arg)
{
    struct responder_thread *t = arg;
    FCGX_Request fcgx;
    struct db db;
    db_init(&db, t->cfg->database_url);
    /* The database functions leave the NOTIFY to us (see tr_wake). */
    db_set_session_setup(&db, "SET taskrunner.defer_notify = on");
    if (FCGX_InitRequest(&fcgx, 0, 0) != 0)
        fatal("could not initialise a FastCGI request");
    pool_thread_started();
    while (!atomic_load(&stopping)) {
        if (FCGX_Accept_r(&fcgx) < 0)
            break;
        atomic_store(&t->busy, true);
        pool_request_begin();
        bool changed = serve_one(t, &fcgx, &db);
        FCGX_Finish_r(&fcgx);
        /* After the answer is out, in a transaction that writes nothing, so
         * it never holds the notify lock while waiting for the disk. */
        if (changed && db_notify_workers(&db) < 0)
            log_warn("could not wake the workers; their poll will find the work");
        pool_request_end();
        atomic_store(&t->busy, false);
    }
    pool_thread_stopped();
    db_cleanup(&db);
    return NULL;
}

static void on_wake(int sig)
{
    (void)sig; /* only interrupts a blocking call */
}

/* Waits for requests in flight to finish, at most grace_ms. */
static void drain(struct responder_thread *threads, int n, int grace_ms)
{
    long long deadline = util_mono_ms() + grace_ms;
    int quiet = 0;
    while (util_mono_ms() < deadline && quiet < 3) {
        bool any = false;
        for (int i = 0; i < n; i++)
            any |= atomic_load(&threads[i].busy);
        quiet = any ? 0 : quiet + 1;
        usleep(10000);
    }
}

int main(void)
{
    struct config cfg;
    /* Threads spend their time waiting on PostgreSQL, so sharing two malloc
     * arenas costs nothing, while an arena per thread keeps memory resident. */
    mallopt(M_ARENA_MAX, 2);
    /* Fixed thresholds: glibc would raise both after the first big free (up
     * to 32 MB), keeping the megabytes of a batch's JSON in the heap, and
     * malloc_trim() does not shrink the top of a thread's arena. */
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    mallopt(M_TRIM_THRESHOLD, 128 * 1024);
    log_init("taskrunner-fcgi", LOG_INFO);
    if (cfg_load(&cfg, CFG_FCGI) < 0)
        return 1;
    log_init("taskrunner-fcgi", cfg.log_level);
    if (auth_init(&cfg) < 0)
        return 1;
    if (FCGX_Init() != 0)
        fatal("could not initialise libfcgi");

    /* Threads inherit this mask: only the main thread takes stop signals. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_wake};
    sigaction(SIGUSR2, &sa, NULL);

    struct request_metrics *metrics = request_metrics_start(&cfg);
    int n = cfg.fcgi_threads;
    struct responder_thread *threads = xcalloc((size_t)n, sizeof *threads);
    for (int i = 0; i < n; i++) {
        threads[i].index = i;
        threads[i].cfg = &cfg;
        threads[i].metrics = metrics;
        atomic_init(&threads[i].busy, false);
        if (pthread_create(&threads[i].thread, NULL, responder_main, &threads[i]) != 0)
            fatal("could not start responder thread %d: %s", i, strerror(errno));
    }
    log_info("responder ready with %d threads", n);

    int sig = 0;
    sigwait(&stop_signals, &sig);
    log_info("signal %d: finishing requests in flight", sig);
    atomic_store(&stopping, true);
    FCGX_ShutdownPending();
    for (int i = 0; i < n; i++)
        pthread_kill(threads[i].thread, SIGUSR2);
    drain(threads, n, cfg.shutdown_grace_ms);
    request_metrics_stop(metrics); /* the request metrics not yet in the totals */
    log_info("responder stopped");
    /* Idle threads may sit in accept() or on a kept connection; the process
     * exit ends them. Nothing of theirs needs cleaning. */
    _exit(0);
}

/*
 * pool: counts of the responder threads' database connections (see pool.h).
 */
#include "pool.h"

#include <stdatomic.h>

/* Process-wide counts, changed by every responder thread: threads holding a
 * connection, and those of them serving a request. */
static atomic_int pool_threads;
static atomic_int pool_busy;

void pool_thread_started(void)
{
    atomic_fetch_add(&pool_threads, 1);
}

void pool_thread_stopped(void)
{
    atomic_fetch_sub(&pool_threads, 1);
}

void pool_request_begin(void)
{
    atomic_fetch_add(&pool_busy, 1);
}

void pool_request_end(void)
{
    atomic_fetch_sub(&pool_busy, 1);
}

void pool_counts(int *size, int *idle)
{
    int n = atomic_load(&pool_threads), busy = atomic_load(&pool_busy);
    *size = n;
    *idle = busy < n ? n - busy : 0;
}

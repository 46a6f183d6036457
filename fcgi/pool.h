/*
 * pool: the database connections of this responder process, as GET /health
 * reports them (pool_size, pool_idle). Each responder thread holds one
 * connection, so the pool is the threads: its size is how many run, and an
 * idle connection is one whose thread serves no request now.
 */
#ifndef TR_POOL_H
#define TR_POOL_H

/* A responder thread starts or stops holding its connection. */
void pool_thread_started(void);
void pool_thread_stopped(void);

/* A thread begins or ends serving a request (its connection is busy). */
void pool_request_begin(void);
void pool_request_end(void);

/* The connections of the process, and how many are idle now. */
void pool_counts(int *size, int *idle);

#endif

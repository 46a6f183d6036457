/*
 * loop: the worker's one event loop. It waits in one place
 * (curl_multi_poll) for webhook transfers, notifications on the PostgreSQL
 * socket and stop signals; takes runnable tasks and due deliveries up to the
 * in-flight bound; records each call's outcome; times tasks out.
 */
#ifndef TR_LOOP_H
#define TR_LOOP_H

#include "config.h"

/* Runs until a stop signal (signal_fd is a signalfd for them), then finishes
 * or hands back the calls in flight within the grace period. Returns the
 * exit status. */
int loop_run(const struct config *cfg, int signal_fd);

#endif

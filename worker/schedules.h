/*
 * schedules: the worker's firing of due cron schedules. Vocabulary: a
 * *slot* is one fire time of a schedule's cron expression; *firing* a slot
 * creates one batch from the schedule's template (or records why not).
 */
#ifndef TR_WORKER_SCHEDULES_H
#define TR_WORKER_SCHEDULES_H

#include <stdbool.h>

#include "config.h"
#include "db.h"
#include "metrics.h"

/*
 * Fires the schedules due now, at most a bounded number per call: each
 * one's template is validated again (new task ids), then fired in one
 * transaction (tr_fire_schedule: the batch, the next slot, the history).
 * A template that no longer passes makes a failed firing, recorded there.
 * Each firing's delay (slot to batch) goes into m. Returns -1 when the
 * database failed; *again says more are due already.
 */
int schedules_fire_due(struct db *db, const struct config *cfg, struct metrics *m,
                       bool *again) WARN_UNUSED;

#endif

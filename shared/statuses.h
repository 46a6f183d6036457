/*
 * statuses: the task statuses and webhook triggers of the API, the C side's
 * one list of each (the SQL side's are the types task_status and
 * webhook_trigger, sql/migrations/0008_status_types.sql; which status may
 * follow which is decided there alone, by tr_move_tasks). Validation, the
 * responder and the worker name them only through this header.
 */
#ifndef TR_STATUSES_H
#define TR_STATUSES_H

#include <stdbool.h>

enum task_status {
    TASK_WAITING,
    TASK_PENDING,
    TASK_CLAIMED,
    TASK_RUNNING,
    TASK_SUCCESS,
    TASK_FAILURE,
    TASK_CANCELED,
    TASK_PAUSED,
    TASK_SKIPPED, /* terminal: its trigger_rule can no longer be met (API.md) */
    TASK_STATUS_COUNT
};

enum webhook_trigger { TRIGGER_START, TRIGGER_END, TRIGGER_CANCEL, TRIGGER_COUNT };

/* The API's spelling ("Waiting", ...); a static string. */
const char *task_status_name(enum task_status s);
/* Whether a task in s has ended for good. */
bool task_status_terminal(enum task_status s);
/* The status called name in any letter case; false when there is none. */
bool task_status_parse(const char *name, enum task_status *out);
/* "Waiting, Pending, ..., Paused": every name, for error messages. */
const char *task_status_list(void);

/* The API's spelling ("Start", ...) and the header's ("start", ...). */
const char *webhook_trigger_name(enum webhook_trigger t);
const char *webhook_trigger_header(enum webhook_trigger t);
/* The trigger called name (API spelling, exact case); false when none. */
bool webhook_trigger_parse(const char *name, enum webhook_trigger *out);

#endif

/*
 * statuses: names of task statuses and webhook triggers (see statuses.h).
 */
#include "statuses.h"

#include <stddef.h>
#include <string.h>
#include <strings.h>

static const struct {
    const char *name;
    bool terminal;
} STATUSES[TASK_STATUS_COUNT] = {
    [TASK_WAITING] = {"Waiting", false}, [TASK_PENDING] = {"Pending", false},
    [TASK_CLAIMED] = {"Claimed", false}, [TASK_RUNNING] = {"Running", false},
    [TASK_SUCCESS] = {"Success", true},  [TASK_FAILURE] = {"Failure", true},
    [TASK_CANCELED] = {"Canceled", true}, [TASK_PAUSED] = {"Paused", false},
    [TASK_SKIPPED] = {"Skipped", true},
};

static const struct {
    const char *name, *header;
} TRIGGERS[TRIGGER_COUNT] = {
    [TRIGGER_START] = {"Start", "start"},
    [TRIGGER_END] = {"End", "end"},
    [TRIGGER_CANCEL] = {"Cancel", "cancel"},
};

const char *task_status_name(enum task_status s)
{
    return (unsigned)s < TASK_STATUS_COUNT ? STATUSES[s].name : "?";
}

bool task_status_terminal(enum task_status s)
{
    return (unsigned)s < TASK_STATUS_COUNT && STATUSES[s].terminal;
}

bool task_status_parse(const char *name, enum task_status *out)
{
    for (int i = 0; name && i < TASK_STATUS_COUNT; i++) {
        if (strcasecmp(STATUSES[i].name, name) == 0) {
            *out = (enum task_status)i;
            return true;
        }
    }
    return false;
}

const char *task_status_list(void)
{
    /* Built once from the table; every name fits (9 names, < 10 chars). */
    static char list[128];
    if (!list[0]) {
        for (int i = 0; i < TASK_STATUS_COUNT; i++) {
            if (i)
                strcat(list, ", ");
            strcat(list, STATUSES[i].name);
        }
    }
    return list;
}

const char *webhook_trigger_name(enum webhook_trigger t)
{
    return (unsigned)t < TRIGGER_COUNT ? TRIGGERS[t].name : "?";
}

const char *webhook_trigger_header(enum webhook_trigger t)
{
    return (unsigned)t < TRIGGER_COUNT ? TRIGGERS[t].header : "?";
}

bool webhook_trigger_parse(const char *name, enum webhook_trigger *out)
{
    for (int i = 0; name && i < TRIGGER_COUNT; i++) {
        if (strcmp(TRIGGERS[i].name, name) == 0) {
            *out = (enum webhook_trigger)i;
            return true;
        }
    }
    return false;
}

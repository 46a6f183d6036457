/*
 * Unit tests of worker/call.c: turning a row of tr_claim / tr_take_deliveries
 * (the tr_call type) into the call the worker makes. The rows are built with
 * libpq's own result constructors, as the server would send them.
 */
#include <libpq-fe.h>
#include <string.h>

#include "call.h"
#include "check.h"

/* A result of one tr_call row: delivery_id, task_id, batch_id, trigger,
 * outcome, params, attempts, task_attempt, idem_key, action_source. */
static PGresult *row(const char *const values[10])
{
    static const char *const names[] = {"delivery_id", "task_id",      "batch_id", "trigger",
                                        "outcome",     "params",       "attempts",
                                        "task_attempt", "idem_key", "action_source"};
    PGresAttDesc attrs[10];
    memset(attrs, 0, sizeof attrs);
    for (int i = 0; i < 10; i++) {
        attrs[i].name = (char *)names[i];
        attrs[i].format = 0;
    }
    PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
    if (!res || !PQsetResultAttrs(res, 10, attrs))
        return NULL;
    for (int i = 0; i < 10; i++)
        if (!PQsetvalue(res, 0, i, (char *)values[i], values[i] ? (int)strlen(values[i]) : -1))
            return NULL;
    return res;
}

int main(void)
{
    const char *start[10] = {"42", "0b7c6a3e-2f43-4c1e-9d7a-5e8f1a2b3c4d",
                             "5a0c7e1d-3b2f-4e6a-8c9d-0f1e2d3c4b5a", "Start", "",
                             "{\"url\": \"http://127.0.0.1:9/x\", \"verb\": \"Post\"}", "1", "3",
                             "0b7c6a3e-2f43-4c1e-9d7a-5e8f1a2b3c4d:start:a1", "author"};
    PGresult *res = row(start);
    if (!CHECK(res != NULL))
        return check_exit();
    struct call c;
    if (CHECK(call_from_row(&c, res, 0) == 0)) {
        CHECK_INT(c.delivery_id, 42);
        CHECK_STR(c.task_id, "0b7c6a3e-2f43-4c1e-9d7a-5e8f1a2b3c4d");
        CHECK_STR(c.batch_id, "5a0c7e1d-3b2f-4e6a-8c9d-0f1e2d3c4b5a");
        CHECK(c.trigger == TRIGGER_START);
        CHECK_STR(c.outcome, "");
        CHECK_INT(c.attempts, 1);
        CHECK_INT(c.task_attempt, 3);
        CHECK_STR(c.idem_key, "0b7c6a3e-2f43-4c1e-9d7a-5e8f1a2b3c4d:start:a1");
        CHECK(!c.from_executor);
        CHECK_STR(json_object_get_string(json_object_object_get(c.params, "url")),
                  "http://127.0.0.1:9/x");
    }
    call_cleanup(&c);
    PQclear(res);

    /* An end call of an action the executor registered. */
    const char *end[10] = {"7", start[1], start[2], "Cancel", "Canceled", "{\"url\": \"http://h/\"}",
                           "2", "0", "k", "executor"};
    res = row(end);
    if (CHECK(res != NULL) && CHECK(call_from_row(&c, res, 0) == 0)) {
        CHECK(c.trigger == TRIGGER_CANCEL);
        CHECK_STR(c.outcome, "Canceled");
        CHECK(c.from_executor);
    }
    call_cleanup(&c);
    PQclear(res);

    /* What the worker cannot use: an unknown trigger, params that are not an
     * object. */
    const char *bad_trigger[10] = {"1", start[1], start[2], "Finish", "", start[5], "1", "1", "k",
                                   "author"};
    res = row(bad_trigger);
    CHECK(res && call_from_row(&c, res, 0) == -1);
    call_cleanup(&c);
    PQclear(res);
    const char *bad_params[10] = {"1", start[1], start[2], "End", "Success", "[1, 2]", "1", "0",
                                  "k", "author"};
    res = row(bad_params);
    CHECK(res && call_from_row(&c, res, 0) == -1);
    call_cleanup(&c);
    PQclear(res);
    return check_exit();
}

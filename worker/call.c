/*
 * call: reading a call from a result row (see call.h).
 */
#include "call.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Column order of the tr_call type (sql/migrations/0001_tables.sql, and
 * action_source from 0010_action_source.sql). */
enum { COL_DELIVERY, COL_TASK, COL_BATCH, COL_TRIGGER, COL_OUTCOME, COL_PARAMS, COL_ATTEMPTS,
       COL_TASK_ATTEMPT, COL_IDEM_KEY, COL_ACTION_SOURCE };

int call_from_row(struct call *c, const PGresult *res, int i)
{
    memset(c, 0, sizeof *c);
    c->delivery_id = strtoll(PQgetvalue(res, i, COL_DELIVERY), NULL, 10);
    snprintf(c->task_id, sizeof c->task_id, "%s", PQgetvalue(res, i, COL_TASK));
    snprintf(c->batch_id, sizeof c->batch_id, "%s", PQgetvalue(res, i, COL_BATCH));
    if (!webhook_trigger_parse(PQgetvalue(res, i, COL_TRIGGER), &c->trigger))
        return -1;
    snprintf(c->outcome, sizeof c->outcome, "%s", PQgetvalue(res, i, COL_OUTCOME));
    c->attempts = atoi(PQgetvalue(res, i, COL_ATTEMPTS));
    c->task_attempt = atoi(PQgetvalue(res, i, COL_TASK_ATTEMPT));
    c->idem_key = xstrdup(PQgetvalue(res, i, COL_IDEM_KEY));
    c->from_executor = PQnfields(res) > COL_ACTION_SOURCE &&
                       strcmp(PQgetvalue(res, i, COL_ACTION_SOURCE), "executor") == 0;
    c->params = json_tokener_parse(PQgetvalue(res, i, COL_PARAMS));
    /* By name: the columns other features add to tr_call may come in any order. */
    int ctx = PQfnumber(res, "context");
    if (ctx >= 0 && !PQgetisnull(res, i, ctx)) {
        /* Deeper than json-c's default (32): metadata and outputs are
         * bounded by size (64 KiB each), not by depth. */
        json_tokener *tok = json_tokener_new_ex(JSON_TOKENER_DEFAULT_DEPTH * 8);
        if (!tok)
            return -1;
        c->context = json_tokener_parse_ex(tok, PQgetvalue(res, i, ctx), PQgetlength(res, i, ctx));
        json_tokener_free(tok);
        /* Unreadable (too deep): every placeholder is missing, and says so. */
    }
    return c->params && json_object_is_type(c->params, json_type_object) ? 0 : -1;
}

void call_cleanup(struct call *c)
{
    json_object_put(c->params);
    json_object_put(c->context);
    free(c->idem_key);
    c->params = NULL;
    c->context = NULL;
    c->idem_key = NULL;
}

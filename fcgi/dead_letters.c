/*
 * dead_letters: GET /dead-letters (end and cancel webhook calls that failed
 * every attempt, newest first, paged like /tasks) and POST
 * /dead-letters/{id}/replay (queue one again). The functions are in
 * sql/functions/deliveries.sql, beside the worker's handling of deliveries.
 */
#include "api.h"
#include "handlers.h"
#include "reply.h"
#include "validate.h"

static const char SQL_LIST[] = "SELECT code, body FROM tr_dead_letters($1::bigint, $2::bigint)";
static const char SQL_REPLAY[] = "SELECT code, body FROM tr_replay_dead_letter($1::bigint, $2)";

void dead_letters_list(struct request *r, const char *unused)
{
    api_call_paged(r, SQL_LIST, NULL);
}

void dead_letters_replay(struct request *r, const char *id)
{
    const char *params[] = {id, r->actor};
    api_call(r, SQL_REPLAY, 2, params, NULL);
}

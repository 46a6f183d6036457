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
    struct verr_list errs;
    verr_list_init(&errs);
    struct api_page page;
    if (api_page_or_reply(r, &errs, &page) < 0)
        goto out;
    if (errs.n > 0) {
        reply_invalid(r, "invalid query", &errs);
        goto out;
    }
    const char *params[] = {page.limit, page.offset};
    api_call(r, SQL_LIST, 2, params, NULL);
out:
    verr_list_cleanup(&errs);
}

void dead_letters_replay(struct request *r, const char *id)
{
    const char *params[] = {id, r->actor};
    api_call(r, SQL_REPLAY, 2, params, NULL);
}

/*
 * groups: GET /groups (by name, paginated), GET /groups/{group} (counts and
 * hold), POST /groups/{group}/pause and /resume (a hold on the group's tasks
 * that have not started, and on those created into it later), DELETE
 * /groups/{group} (cancel its tasks that have not ended). The router
 * decodes and checks the name. The SQL is in sql/functions/groups.sql.
 */
#include "api.h"
#include "handlers.h"

static const char SQL_GROUP_LIST[] = "SELECT code, body FROM tr_list_groups($1::bigint, $2::bigint)";
static const char SQL_GROUP_GET[] = "SELECT code, body FROM tr_get_group($1)";
static const char SQL_GROUP_HOLD[] = "SELECT code, body FROM tr_hold_group($1, $2::boolean, $3)";
static const char SQL_GROUP_CANCEL[] = "SELECT code, body FROM tr_cancel_group($1, $2)";

void groups_list(struct request *r, const char *unused)
{
    (void)unused;
    api_call_paged(r, SQL_GROUP_LIST, NULL);
}

void groups_get(struct request *r, const char *name)
{
    const char *params[] = {name};
    api_call(r, SQL_GROUP_GET, 1, params, NULL);
}

void groups_pause(struct request *r, const char *name)
{
    const char *params[] = {name, "true", r->actor};
    api_call(r, SQL_GROUP_HOLD, 3, params, NULL);
}

void groups_resume(struct request *r, const char *name)
{
    const char *params[] = {name, "false", r->actor};
    api_call(r, SQL_GROUP_HOLD, 3, params, NULL);
}

void groups_cancel(struct request *r, const char *name)
{
    const char *params[] = {name, r->actor};
    api_call(r, SQL_GROUP_CANCEL, 2, params, NULL);
}

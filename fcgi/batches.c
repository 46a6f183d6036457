/*
 * batches: GET /batches (the list), GET /batches/{id} (counts by status),
 * DELETE /batches/{id} (cancel every task of the batch that has not ended),
 * POST /batches/{id}/pause and /resume (a hold on its tasks that have not
 * started; sql/functions/groups.sql) and GET /batches/{id}/dag (alias
 * GET /dag/{id}: its tasks and links).
 */
#include <ctype.h>
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "handlers.h"
#include "reply.h"
#include "validate.h"

static const char SQL_BATCH_STATS[] =
    "SELECT code, body FROM tr_batch_stats($1::uuid, $2::boolean)";
static const char SQL_BATCH_SOFT_DELETE[] =
    "SELECT code, body FROM tr_soft_delete_batch($1::uuid, $2::boolean, $3)";
static const char SQL_BATCH_STOP[] = "SELECT code, body FROM tr_stop_batch($1::uuid, $2)";
static const char SQL_BATCH_DAG[] = "SELECT code, body FROM tr_batch_dag($1::uuid)";
static const char SQL_BATCH_HOLD[] =
    "SELECT code, body FROM tr_hold_batch($1::uuid, $2::boolean, $3)";
static const char SQL_BATCH_LIST[] =
    "SELECT code, body FROM tr_list_batches($1, $2, $3::task_status, $4, $5::timestamptz,"
    " $6::timestamptz, $7, $8::uuid, $9::boolean, $10::bigint, $11::bigint, $12::boolean)";

void batches_get(struct request *r, const char *id)
{
    struct verr_list errs;
    verr_list_init(&errs);
    const char *include_deleted;
    if (api_flag_or_reply(r, "include_deleted", &errs, &include_deleted) < 0)
        goto out;
    if (errs.n > 0) {
        reply_invalid(r, "invalid query", &errs);
        goto out;
    }
    const char *params[] = {id, include_deleted};
    api_call(r, SQL_BATCH_STATS, 2, params, NULL);
out:
    verr_list_cleanup(&errs);
}

void batches_soft_delete(struct request *r, const char *id)
{
    const char *params[] = {id, "true", r->actor};
    api_call(r, SQL_BATCH_SOFT_DELETE, 3, params, NULL);
}

void batches_restore(struct request *r, const char *id)
{
    const char *params[] = {id, "false", r->actor};
    api_call(r, SQL_BATCH_SOFT_DELETE, 3, params, NULL);
}

void batches_stop(struct request *r, const char *id)
{
    const char *params[] = {id, r->actor};
    api_call(r, SQL_BATCH_STOP, 2, params, NULL);
}

void batches_pause(struct request *r, const char *id)
{
    const char *params[] = {id, "true", r->actor};
    api_call(r, SQL_BATCH_HOLD, 3, params, NULL);
}

void batches_resume(struct request *r, const char *id)
{
    const char *params[] = {id, "false", r->actor};
    api_call(r, SQL_BATCH_HOLD, 3, params, NULL);
}

void batches_dag(struct request *r, const char *id)
{
    const char *params[] = {id};
    api_call(r, SQL_BATCH_DAG, 1, params, NULL);
}

/* The filters of GET /batches, NULL when not given. */
struct batch_filters {
    char *requester, *kind, *status, *name, *created_after, *created_before;
    char *group, *schedule_id, *paused;
};

static void batch_filters_cleanup(struct batch_filters *f)
{
    free(f->requester);
    free(f->kind);
    free(f->status);
    free(f->name);
    free(f->created_after);
    free(f->created_before);
    free(f->group);
    free(f->schedule_id);
    free(f->paused);
}

static int batch_filters_read_or_reply(struct request *r, struct batch_filters *f)
{
    if (request_query_value_or_reply(r, "requester", &f->requester) < 0 ||
        request_query_value_or_reply(r, "kind", &f->kind) < 0 ||
        request_query_value_or_reply(r, "status", &f->status) < 0 ||
        request_query_value_or_reply(r, "name", &f->name) < 0 ||
        request_query_value_or_reply(r, "created_after", &f->created_after) < 0 ||
        request_query_value_or_reply(r, "created_before", &f->created_before) < 0 ||
        request_query_value_or_reply(r, "group", &f->group) < 0 ||
        request_query_value_or_reply(r, "schedule_id", &f->schedule_id) < 0 ||
        request_query_value_or_reply(r, "paused", &f->paused) < 0)
        return -1;
    return 0;
}

void batches_list(struct request *r, const char *unused)
{
    struct batch_filters f = {0};
    struct verr_list errs;
    verr_list_init(&errs);
    const char *status = NULL;
    struct api_page page;

    if (batch_filters_read_or_reply(r, &f) < 0)
        goto out;
    if (f.status && !(status = validate_status_name(f.status)))
        verr_add(&errs, "status", "unknown status \"%.64s\"", f.status);
    if (f.created_after && !validate_is_rfc3339(f.created_after))
        verr_add(&errs, "created_after", "must be an RFC 3339 timestamp");
    if (f.created_before && !validate_is_rfc3339(f.created_before))
        verr_add(&errs, "created_before", "must be an RFC 3339 timestamp");
    if (f.schedule_id && !validate_is_uuid(f.schedule_id))
        verr_add(&errs, "schedule_id", "must be a UUID");
    if (f.paused && strcmp(f.paused, "true") != 0 && strcmp(f.paused, "false") != 0)
        verr_add(&errs, "paused", "must be true or false");
    const char *include_deleted;
    if (api_page_or_reply(r, &errs, &page) < 0 ||
        api_flag_or_reply(r, "include_deleted", &errs, &include_deleted) < 0)
        goto out;
    if (errs.n > 0) {
        reply_invalid(r, "invalid query", &errs);
        goto out;
    }
    if (f.schedule_id)
        for (char *c = f.schedule_id; *c; c++)
            *c = (char)tolower((unsigned char)*c);
    const char *params[] = {f.requester,     f.kind,           status,  f.name,
                            f.created_after, f.created_before, f.group, f.schedule_id,
                            f.paused,        page.limit,       page.offset, include_deleted};
    api_call(r, SQL_BATCH_LIST, 12, params, NULL);
out:
    batch_filters_cleanup(&f);
    verr_list_cleanup(&errs);
}

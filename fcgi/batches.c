/*
 * batches: GET /batches/{id} (counts by status) and DELETE /batches/{id}
 * (cancel every task of the batch that has not ended).
 */
#include "api.h"
#include "handlers.h"

static const char SQL_BATCH_STATS[] = "SELECT code, body FROM tr_batch_stats($1::uuid)";
static const char SQL_BATCH_STOP[] = "SELECT code, body FROM tr_stop_batch($1::uuid, $2)";

void batches_get(struct request *r, const char *id)
{
    const char *params[] = {id};
    api_call(r, SQL_BATCH_STATS, 1, params, NULL);
}

void batches_stop(struct request *r, const char *id)
{
    const char *params[] = {id, r->actor};
    api_call(r, SQL_BATCH_STOP, 2, params, NULL);
}

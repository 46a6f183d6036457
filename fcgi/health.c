/*
 * health: GET /health (is the service and its database well?) and GET /ready
 * (can requests be served now?).
 */
#include <libpq-fe.h>

#include "handlers.h"
#include "reply.h"

static const char SQL_PING[] = "SELECT 1 FROM schema_migrations LIMIT 1";

static bool database_ok(struct request *r)
{
    PGresult *res;
    struct db_error err;
    if (db_query(r->db, SQL_PING, 0, NULL, &res, &err) < 0)
        return false;
    PQclear(res);
    return true;
}

void health_check(struct request *r, const char *id)
{
    if (database_ok(r))
        reply_json(r, 200, NULL, "{\"status\": \"ok\", \"database\": \"ok\"}");
    else
        reply_json(r, 503, "Retry-After: 1\r\n",
                   "{\"status\": \"degraded\", \"database\": \"unavailable\", "
                   "\"error\": \"database unavailable\", \"details\": []}");
}

void health_ready(struct request *r, const char *id)
{
    if (database_ok(r))
        reply_json(r, 200, NULL, "{\"status\": \"ready\"}");
    else
        reply_json(r, 503, "Retry-After: 1\r\n",
                   "{\"status\": \"unavailable\", \"error\": \"database unavailable\", "
                   "\"details\": []}");
}

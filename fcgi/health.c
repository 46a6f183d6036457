/*
 * health: GET /health (is the service and its database well?) and GET /ready
 * (can requests be served now?).
 */
#include <libpq-fe.h>
#include <stdio.h>

#include "handlers.h"
#include "pool.h"
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

/* The original's client reads pool_size and pool_idle (required integers). */
void health_check(struct request *r, const char *id)
{
    int size, idle;
    pool_counts(&size, &idle);
    char body[256];
    if (database_ok(r)) {
        snprintf(body, sizeof body,
                 "{\"status\": \"ok\", \"database\": \"ok\", \"pool_size\": %d, "
                 "\"pool_idle\": %d}",
                 size, idle);
        reply_json(r, 200, NULL, body);
    } else {
        snprintf(body, sizeof body,
                 "{\"status\": \"degraded\", \"database\": \"unavailable\", "
                 "\"pool_size\": %d, \"pool_idle\": %d, \"error\": \"database unavailable\", "
                 "\"details\": [], \"fields\": []}",
                 size, idle);
        reply_json(r, 503, "Retry-After: 1\r\n", body);
    }
}

void health_ready(struct request *r, const char *id)
{
    if (database_ok(r))
        reply_json(r, 200, NULL, "{\"status\": \"ready\"}");
    else
        reply_json(r, 503, "Retry-After: 1\r\n",
                   "{\"status\": \"unavailable\", \"reason\": \"database unavailable\", "
                   "\"error\": \"database unavailable\", \"details\": [], \"fields\": []}");
}

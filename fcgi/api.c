/*
 * api: answering with what a database API function returned (code, body).
 */
#include <libpq-fe.h>
#include <stdlib.h>

#include "handlers.h"
#include "reply.h"

void api_call(struct request *r, const char *sql, int n, const char *const *params,
              const char *extra_headers)
{
    PGresult *res;
    struct db_error err;
    if (db_query(r->db, sql, n, params, &res, &err) < 0) {
        reply_db_error(r, &err);
        return;
    }
    if (PQntuples(res) != 1 || PQnfields(res) < 2) {
        reply_error(r, 500, "unexpected answer from the database", NULL);
    } else {
        int code = atoi(PQgetvalue(res, 0, 0));
        const char *body = PQgetvalue(res, 0, 1);
        if (code >= 400)
            reply_error(r, code, body, NULL);
        else
            reply_json(r, code, extra_headers, body);
    }
    PQclear(res);
}

/*
 * api: answering with what a database API function returned (code, body),
 * and the paging of lists.
 */
#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "reply.h"
#include "validate.h"

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

/* Parses a whole decimal integer; -1 when s is not one, -2 when it is one
 * beyond 64 bits. */
static int parse_ll(const char *s, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end)
        return -1;
    if (errno == ERANGE)
        return -2;
    if (errno)
        return -1;
    *out = v;
    return 0;
}

int api_page_or_reply(struct request *r, struct verr_list *errs, struct api_page *out)
{
    char *page_text = NULL, *page_size = NULL, *per_page = NULL;
    long long page = 0, size = r->cfg->page_size_default;
    int rc = -1;
    if (request_query_value_or_reply(r, "page", &page_text) < 0 ||
        request_query_value_or_reply(r, "page_size", &page_size) < 0 ||
        request_query_value_or_reply(r, "per_page", &per_page) < 0)
        goto out;
    int page_rc = page_text ? parse_ll(page_text, &page) : 0;
    if (page_rc == -2)
        verr_add(errs, "page", "is too large (at most 9223372036854775807)");
    else if (page_rc < 0)
        verr_add(errs, "page", "must be an integer");
    const char *size_text = page_size ? page_size : per_page;
    if (size_text && (parse_ll(size_text, &size) < 0 || size < 1)) {
        verr_add(errs, page_size ? "page_size" : "per_page", "must be a positive integer");
        size = r->cfg->page_size_default;
    }
    if (page < 0)
        page = 0;
    if (size > r->cfg->page_size_max)
        size = r->cfg->page_size_max;
    if (page > 1000000000LL / size) /* beyond any real data; keeps OFFSET sane */
        page = 1000000000LL / size;
    snprintf(out->limit, sizeof out->limit, "%lld", size);
    snprintf(out->offset, sizeof out->offset, "%lld", page * size);
    rc = 0;
out:
    free(page_text);
    free(page_size);
    free(per_page);
    return rc;
}

int api_flag_or_reply(struct request *r, const char *name, struct verr_list *errs,
                      const char **out)
{
    char *text = NULL;
    *out = "false";
    if (request_query_value_or_reply(r, name, &text) < 0)
        return -1;
    if (text && strcmp(text, "true") == 0)
        *out = "true";
    else if (text && strcmp(text, "false") != 0)
        verr_add(errs, name, "must be true or false");
    free(text);
    return 0;
}

void api_call_paged(struct request *r, const char *sql, const char *id)
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
    const char *with_id[] = {id, page.limit, page.offset};
    const char *const *params = id ? with_id : with_id + 1;
    api_call(r, sql, id ? 3 : 2, params, NULL);
out:
    verr_list_cleanup(&errs);
}

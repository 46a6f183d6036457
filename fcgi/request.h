/*
 * request: one FastCGI request as the handlers see it: method, path, query,
 * the headers we use, the body, and the thread's database connection.
 */
#ifndef TR_REQUEST_H
#define TR_REQUEST_H

#include <fcgiapp.h>
#include <json-c/json.h>
#include <stdbool.h>

#include "config.h"
#include "db.h"
#include "util.h"

struct request {
    FCGX_Request *fcgx;
    const struct config *cfg;
    struct db *db;
    const char *method;       /* "GET", ... */
    const char *path;         /* decoded path, without the query; as sent (undecoded)
                                 when it holds an encoded slash */
    char *path_buf;           /* the undecoded path, when used (the request's) */
    const char *query;        /* raw query string, "" when none */
    const char *request_id;   /* nginx's $request_id, "-" when none */
    const char *requester;    /* X-Requester, else requester, else "anonymous" (stored with a batch) */
    const char *actor;        /* who acts, for the audit trail: the API token's name
                                 when authentication is on (auth.c), else requester */
    char *body;               /* request body (NUL-terminated), the request's */
    size_t body_len;
    int status;               /* status answered, for the access line */
};

/* Fills r from fcgx. Does not read the body. */
void request_init(struct request *r, FCGX_Request *fcgx, const struct config *cfg,
                  struct db *db);
void request_cleanup(struct request *r);
/* Checks the request headers that get stored or logged (X-Requester,
 * Idempotency-Key): at most 255 bytes of valid UTF-8 without control
 * characters. Otherwise answers 400 and returns -1. */
int request_check_headers_or_reply(struct request *r) WARN_UNUSED;
/* A CGI parameter such as "HTTP_IDEMPOTENCY_KEY", or NULL. */
const char *request_param(const struct request *r, const char *name);

/* Reads the body and parses it as JSON; on any problem (wrong content type,
 * too large, malformed, trailing garbage) answers the 4xx and returns -1.
 * *out is the caller's. */
int request_json_body_or_reply(struct request *r, json_object **out) WARN_UNUSED;

/* Sets *out to the percent-decoded value of query parameter name (the
 * caller's), or NULL when absent. A value that decodes to a NUL byte gets a
 * 400 answer and -1. */
int request_query_value_or_reply(struct request *r, const char *name, char **out) WARN_UNUSED;

#endif

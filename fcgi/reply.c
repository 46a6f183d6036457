/*
 * reply: JSON answers and error bodies (see reply.h).
 */
#include "reply.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsontext.h"
#include "log.h"
#include "util.h"
#include "validate.h"

static const char *status_text(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 503: return "Service Unavailable";
    default: return status >= 500 ? "Internal Server Error" : "Error";
    }
}

void reply_json(struct request *r, int status, const char *extra_headers, const char *body)
{
    r->status = status;
    FCGX_FPrintF(r->fcgx->out, "Status: %d %s\r\n", status, status_text(status));
    if (extra_headers)
        FCGX_PutS(extra_headers, r->fcgx->out);
    if (status == 204) {
        FCGX_PutS("\r\n", r->fcgx->out);
        return;
    }
    FCGX_PutS("Content-Type: application/json\r\n\r\n", r->fcgx->out);
    if (strcmp(r->method, "HEAD") == 0)
        return; /* the headers of the GET, no body (RFC 9110) */
    /* Compact: PostgreSQL writes `{"a" : 1, "b" : 2}`. */
    size_t len = strlen(body);
    char *compact = xmalloc(len + 1);
    len = jsontext_compact(compact, body, len);
    FCGX_PutStr(compact, (int)len, r->fcgx->out);
    free(compact);
    FCGX_PutS("\n", r->fcgx->out);
}

void reply_text(struct request *r, int status, const char *content_type, const char *body,
                size_t len)
{
    r->status = status;
    FCGX_FPrintF(r->fcgx->out, "Status: %d %s\r\nContent-Type: %s\r\n\r\n", status,
                 status_text(status), content_type);
    if (strcmp(r->method, "HEAD") != 0)
        FCGX_PutStr(body, (int)len, r->fcgx->out);
}

int reply_error(struct request *r, int status, const char *message, json_object *fields)
{
    return reply_error_headers(r, status, NULL, message, fields);
}

/* The strings "<field>: <message>" of the original's "details", one per
 * object {"field", "message"} of fields. */
static json_object *details_as_strings(json_object *fields)
{
    json_object *out = json_object_new_array();
    size_t n = fields ? json_object_array_length(fields) : 0;
    for (size_t i = 0; i < n; i++) {
        json_object *f = json_object_array_get_idx(fields, i), *field, *why;
        if (!json_object_object_get_ex(f, "field", &field) ||
            !json_object_object_get_ex(f, "message", &why))
            continue;
        struct strbuf s;
        strbuf_init(&s);
        strbuf_addf(&s, "%s: %s", json_object_get_string(field), json_object_get_string(why));
        json_object_array_add(out, json_object_new_string(s.data));
        strbuf_cleanup(&s);
    }
    return out;
}

/* The error object, without a log line: "details" as strings (the
 * original's shape, which its client reads) and "fields" as objects. */
static void reply_error_object(struct request *r, int status, const char *extra_headers,
                               const char *message, json_object *fields)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "error", json_object_new_string(message));
    json_object_object_add(o, "details", details_as_strings(fields));
    json_object_object_add(o, "fields", fields ? fields : json_object_new_array());
    char retry[64];
    snprintf(retry, sizeof retry, "Retry-After: %d\r\n", r->cfg->db_retry_after);
    reply_json(r, status, status == 503 ? retry : extra_headers,
               json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
}

int reply_error_headers(struct request *r, int status, const char *extra_headers,
                        const char *message, json_object *fields)
{
    reply_error_object(r, status, extra_headers, message, fields);
    if (status >= 500)
        log_warn("answered %d: %s", status, message);
    return -1;
}

int reply_invalid(struct request *r, const char *message, const struct verr_list *errs)
{
    return reply_error(r, 400, message, verr_list_to_json(errs));
}

int reply_db_error(struct request *r, const struct db_error *err)
{
    json_object *fields = NULL;
    if (err->field[0]) { /* one problem with its field path */
        json_object *f = json_object_new_object();
        json_object_object_add(f, "field", json_object_new_string(err->field));
        json_object_object_add(f, "message", json_object_new_string(err->message));
        fields = json_object_new_array();
        json_object_array_add(fields, f);
    }
    reply_error_object(r, err->http, NULL, err->message, fields);
    if (err->http >= 500)
        log_warn("answered %d: %s (SQLSTATE %s%s%s)", err->http, err->message,
                 err->sqlstate[0] ? err->sqlstate : "none", err->server_message[0] ? ": " : "",
                 err->server_message);
    return -1;
}

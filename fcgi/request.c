/*
 * request: reading a FastCGI request (see request.h).
 */
#include "request.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "reply.h"

enum { JSON_MAX_DEPTH = 64 };

static const char *param_or(const struct request *r, const char *name, const char *def)
{
    const char *v = FCGX_GetParam(name, r->fcgx->envp);
    return v && *v ? v : def;
}

void request_init(struct request *r, FCGX_Request *fcgx, const struct config *cfg,
                  struct db *db)
{
    memset(r, 0, sizeof *r);
    r->fcgx = fcgx;
    r->cfg = cfg;
    r->db = db;
    r->method = param_or(r, "REQUEST_METHOD", "GET");
    r->path = param_or(r, "DOCUMENT_URI", param_or(r, "SCRIPT_NAME", "/"));
    r->query = param_or(r, "QUERY_STRING", "");
    r->request_id = param_or(r, "REQUEST_ID", "-");
    r->requester = param_or(r, "HTTP_X_REQUESTER", "anonymous");
}

void request_cleanup(struct request *r)
{
    free(r->body);
    r->body = NULL;
}

const char *request_param(const struct request *r, const char *name)
{
    return FCGX_GetParam(name, r->fcgx->envp);
}

static bool is_json_content_type(const char *ct)
{
    if (!ct)
        return false;
    size_t n = strlen("application/json");
    return strncasecmp(ct, "application/json", n) == 0 && (ct[n] == '\0' || ct[n] == ';' ||
                                                            ct[n] == ' ');
}

/* Reads CONTENT_LENGTH bytes (bounded by the configured limit). */
static int read_body_or_reply(struct request *r)
{
    const char *cl = request_param(r, "CONTENT_LENGTH");
    char *end;
    long len = cl && *cl ? strtol(cl, &end, 10) : 0;
    if (cl && *cl && (*end || len < 0))
        return reply_error(r, 400, "invalid Content-Length", NULL);
    if (len > r->cfg->max_body)
        return reply_error(r, 413, "request body too large", NULL);
    r->body = xmalloc((size_t)len + 1);
    size_t got = 0;
    while (got < (size_t)len) {
        int n = FCGX_GetStr(r->body + got, (int)((size_t)len - got), r->fcgx->in);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    r->body[got] = '\0';
    r->body_len = got;
    if (got != (size_t)len)
        return reply_error(r, 400, "request body shorter than its Content-Length", NULL);
    return 0;
}

/* Whether the JSON text holds the escape \u0000 (not an escaped backslash
 * followed by "u0000"). Checked on the text because json-c cuts object keys
 * at a NUL, so the parsed tree cannot show it, and PostgreSQL cannot store it. */
static bool has_escaped_nul(const char *s, size_t n)
{
    for (const char *p = s; (p = memchr(p, '\\', n - (size_t)(p - s))) != NULL;) {
        size_t run = 0;
        while ((size_t)(p - s) + run < n && p[run] == '\\')
            run++;
        const char *after = p + run;
        if (run % 2 == 1 && (size_t)(after - s) + 5 <= n && strncmp(after, "u0000", 5) == 0)
            return true;
        p = after;
        if ((size_t)(p - s) >= n)
            break;
    }
    return false;
}

int request_json_body_or_reply(struct request *r, json_object **out)
{
    *out = NULL;
    if (!is_json_content_type(request_param(r, "CONTENT_TYPE")))
        return reply_error(r, 415, "Content-Type must be application/json", NULL);
    if (read_body_or_reply(r) < 0)
        return -1;
    if (r->body_len == 0)
        return reply_error(r, 400, "request body is empty; a JSON document is required", NULL);
    if (memchr(r->body, '\0', r->body_len))
        return reply_error(r, 400, "request body contains a NUL byte", NULL);
    if (has_escaped_nul(r->body, r->body_len))
        return reply_error(r, 400, "JSON strings must not contain \\u0000 (NUL)", NULL);

    json_tokener *tok = json_tokener_new_ex(JSON_MAX_DEPTH);
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *doc = json_tokener_parse_ex(tok, r->body, (int)r->body_len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t used = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (jerr != json_tokener_success) {
        json_object_put(doc);
        char *msg = xasprintf("malformed JSON: %s", json_tokener_error_desc(jerr));
        reply_error(r, 400, msg, NULL);
        free(msg);
        return -1;
    }
    for (size_t i = used; i < r->body_len; i++) {
        if (!strchr(" \t\r\n", r->body[i])) {
            json_object_put(doc);
            return reply_error(r, 400, "malformed JSON: unexpected data after the document",
                               NULL);
        }
    }
    *out = doc;
    return 0;
}

int request_query_value_or_reply(struct request *r, const char *name, char **out)
{
    *out = NULL;
    size_t nlen = strlen(name);
    const char *p = r->query;
    while (*p) {
        const char *amp = strchr(p, '&');
        size_t plen = amp ? (size_t)(amp - p) : strlen(p);
        if (plen >= nlen && strncmp(p, name, nlen) == 0 && (plen == nlen || p[nlen] == '=')) {
            const char *v = plen == nlen ? "" : p + nlen + 1;
            size_t vlen = plen == nlen ? 0 : plen - nlen - 1;
            /* '+' means space in a query string; curl decodes only %XX. */
            char *raw = xmalloc(vlen + 1);
            for (size_t i = 0; i < vlen; i++)
                raw[i] = v[i] == '+' ? ' ' : v[i];
            raw[vlen] = '\0';
            int outlen = 0;
            char *dec = curl_easy_unescape(NULL, raw, (int)vlen, &outlen);
            free(raw);
            bool ok = dec && (size_t)outlen == strlen(dec);
            if (ok)
                *out = xstrdup(dec);
            curl_free(dec);
            if (!ok) {
                char *msg = xasprintf("query parameter %s is malformed", name);
                reply_error(r, 400, msg, NULL);
                free(msg);
                return -1;
            }
            return 0;
        }
        p += plen;
        if (*p == '&')
            p++;
    }
    return 0;
}

/*
 * request: reading a FastCGI request (see request.h).
 */
#include "request.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "jsonbody.h"
#include "urlquery.h"
#include "reply.h"
#include "validate.h"

enum { STORED_HEADER_MAX = 255 };

static const char *param_or(const struct request *r, const char *name, const char *def)
{
    const char *v = FCGX_GetParam(name, r->fcgx->envp);
    return v && *v ? v : def;
}

static bool has_encoded_slash(const char *s, size_t n)
{
    for (size_t i = 0; i + 2 < n; i++)
        if (s[i] == '%' && s[i + 1] == '2' && (s[i + 2] == 'f' || s[i + 2] == 'F'))
            return true;
    return false;
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
    /* nginx decodes the path it hands over (DOCUMENT_URI), so an encoded
     * slash becomes a separator: "/tasks/<id>%2Fpause" would reach
     * /tasks/<id>/pause. A path holding one is routed as sent, undecoded:
     * the %2F stays inside its segment, which then names no route or id. */
    const char *raw = param_or(r, "REQUEST_URI", "");
    size_t raw_len = strcspn(raw, "?");
    if (has_encoded_slash(raw, raw_len)) {
        r->path_buf = xasprintf("%.*s", (int)raw_len, raw);
        r->path = r->path_buf;
    }
    r->query = param_or(r, "QUERY_STRING", "");
    r->request_id = param_or(r, "REQUEST_ID", "-");
    /* The original clients send "requester"; X-Requester wins when both are given. */
    r->requester = param_or(r, "HTTP_X_REQUESTER", param_or(r, "HTTP_REQUESTER", "anonymous"));
    r->actor = r->requester;
}

void request_cleanup(struct request *r)
{
    free(r->body);
    free(r->path_buf);
    r->body = NULL;
    r->path_buf = NULL;
}

const char *request_param(const struct request *r, const char *name)
{
    return FCGX_GetParam(name, r->fcgx->envp);
}

/* Whether a header value can be stored and logged as it is. */
static bool header_value_ok(const char *v)
{
    size_t n = strlen(v);
    if (n > STORED_HEADER_MAX || !validate_is_utf8(v, n))
        return false;
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

int request_check_headers_or_reply(struct request *r)
{
    static const struct {
        const char *param, *name;
    } checked[] = {{"HTTP_X_REQUESTER", "X-Requester"}, {"HTTP_IDEMPOTENCY_KEY", "Idempotency-Key"}};
    for (size_t i = 0; i < sizeof checked / sizeof checked[0]; i++) {
        const char *v = request_param(r, checked[i].param);
        if (v && !header_value_ok(v)) {
            char *msg = xasprintf("%s must be at most %d bytes of UTF-8 text without control "
                                  "characters", checked[i].name, STORED_HEADER_MAX);
            reply_error(r, 400, msg, NULL);
            free(msg);
            return -1;
        }
    }
    return 0;
}

/* Whether ct is application/json. Its parameters are read as RFC 9110
 * writes them (; name=token or "quoted"): *charset_ok says whether a
 * charset, when named, is UTF-8 (JSON's only encoding, RFC 8259). */
static bool is_json_content_type(const char *ct, bool *charset_ok)
{
    *charset_ok = true;
    if (!ct)
        return false;
    size_t n = strlen("application/json");
    if (strncasecmp(ct, "application/json", n) != 0)
        return false;
    const char *p = ct + n;
    p += strspn(p, " \t");
    if (*p && *p != ';')
        return false;
    while (*p == ';') {
        p++;
        p += strspn(p, " \t");
        size_t name_len = strcspn(p, "=; \t");
        const char *name = p;
        p += name_len;
        if (*p != '=')
            continue;
        p++;
        char value[64];
        size_t v_len;
        if (*p == '"') {
            v_len = strcspn(++p, "\"");
            snprintf(value, sizeof value, "%.*s", (int)(v_len < 63 ? v_len : 63), p);
            p += v_len + (p[v_len] == '"');
        } else {
            v_len = strcspn(p, "; \t");
            snprintf(value, sizeof value, "%.*s", (int)(v_len < 63 ? v_len : 63), p);
            p += v_len;
        }
        if (name_len == 7 && strncasecmp(name, "charset", 7) == 0 &&
            !(v_len == 5 && strcasecmp(value, "utf-8") == 0))
            *charset_ok = false;
        p += strspn(p, " \t");
        p += strcspn(p, ";");
    }
    return true;
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

int request_json_body_or_reply(struct request *r, json_object **out)
{
    *out = NULL;
    bool charset_ok;
    if (!is_json_content_type(request_param(r, "CONTENT_TYPE"), &charset_ok))
        return reply_error(r, 415, "Content-Type must be application/json", NULL);
    if (!charset_ok)
        return reply_error(r, 415, "Content-Type names a charset other than UTF-8: JSON bodies "
                                   "must be UTF-8", NULL);
    if (read_body_or_reply(r) < 0)
        return -1;
    char err[160];
    if (jsonbody_parse(r->body, r->body_len, out, err, sizeof err) < 0)
        return reply_error(r, 400, err, NULL);
    return 0;
}

int request_query_value_or_reply(struct request *r, const char *name, char **out)
{
    if (urlquery_value(r->query, name, out) == 0)
        return 0;
    char *msg = xasprintf("query parameter %s is malformed", name);
    reply_error(r, 400, msg, NULL);
    free(msg);
    return -1;
}

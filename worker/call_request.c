/*
 * call_request: building the request of a webhook call (see call_request.h).
 */
#include "call_request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "placeholder.h"
#include "sign.h"
#include "tokens.h"
#include "validate.h"
#include "webhook_headers.h"

/* ------------------------------------------------------------------------
 * Placeholders (shared/placeholder.h), filled with the call's context. The
 * values are data: percent-encoded in the URL (every byte but ALPHA, DIGIT,
 * "-", "_" and "~": a value can add no "/", "?", "#", "@", ":" nor a ".."
 * segment), refused in a header when they hold a control character (CR, LF
 * and NUL included), and inserted in the body as JSON values or JSON string
 * contents by json-c. A missing value fails the call for good, naming the
 * placeholder.
 */
enum fill_mode { FILL_URL, FILL_HEADER, FILL_BODY };

struct fill {
    const struct call *c;
    enum fill_mode mode;
    struct strbuf out;
    size_t done;        /* bytes of the template copied so far */
    char *why;
    size_t why_size;
};

static int fill_one(void *arg, const char *s, const struct ph_span *p)
{
    struct fill *f = arg;
    strbuf_add(&f->out, s + f->done, p->start - f->done);
    f->done = p->start + p->len;
    json_object *v = f->c->context ? placeholder_walk(f->c->context, p->expr) : NULL;
    if (!v) {
        snprintf(f->why, f->why_size, "placeholder {{%.128s}} has no value", p->expr);
        return -1;
    }
    const char *text = placeholder_text(v);
    if (json_object_is_type(v, json_type_string) &&
        strlen(text) != (size_t)json_object_get_string_len(v)) {
        snprintf(f->why, f->why_size, "placeholder {{%.128s}}: its value holds a NUL byte",
                 p->expr);
        return -1;
    }
    if (f->mode == FILL_URL) {
        char *e = curl_easy_escape(NULL, text, (int)strlen(text));
        if (!e)
            fatal("out of memory (curl_easy_escape)");
        for (const char *q = e; *q; q++) /* no "." nor ".." segment made of values */
            if (*q == '.')
                strbuf_adds(&f->out, "%2E");
            else
                strbuf_add(&f->out, q, 1);
        curl_free(e);
    } else {
        if (f->mode == FILL_HEADER && !webhook_header_value_ok(text)) {
            snprintf(f->why, f->why_size,
                     "placeholder {{%.128s}}: its value holds a control character (CR, LF, "
                     "NUL...), which a header cannot carry", p->expr);
            return -1;
        }
        strbuf_adds(&f->out, text);
    }
    return 0;
}

/* The template s with its placeholders filled, or NULL with why. */
static char *fill_text(const struct call *c, const char *s, enum fill_mode mode, char *why,
                       size_t why_size)
{
    struct fill f = {.c = c, .mode = mode, .why = why, .why_size = why_size};
    strbuf_init(&f.out);
    int rc = placeholder_scan(s, fill_one, &f, why, why_size);
    if (rc != 0) {
        strbuf_cleanup(&f.out);
        return NULL;
    }
    strbuf_adds(&f.out, s + f.done);
    char *r = f.out.data ? f.out.data : xstrdup("");
    return r;
}

/* Whether s is exactly one placeholder (the first one decides). */
static int exact_one(void *arg, const char *s, const struct ph_span *p)
{
    *(bool *)arg = p->start == 0 && p->len == strlen(s);
    return 1;
}

/* A copy of body value v with its strings' placeholders filled (a string
 * that is exactly one placeholder takes the value itself, with its JSON
 * type), or NULL with why. */
static json_object *fill_json(const struct call *c, json_object *v, char *why, size_t why_size)
{
    if (json_object_is_type(v, json_type_string)) {
        const char *s = json_object_get_string(v);
        if (!placeholder_any(s))
            return json_object_get(v);
        bool exact = false;
        char expr[PH_EXPR_MAX + 1] = "";
        if (placeholder_scan(s, exact_one, &exact, why, why_size) < 0)
            return NULL;
        if (exact) {
            size_t n = strlen(s) - 4; /* the scan checked it is at most PH_EXPR_MAX */
            memcpy(expr, s + 2, n);
            expr[n] = '\0';
            json_object *val = c->context ? placeholder_walk(c->context, expr) : NULL;
            if (!val) {
                snprintf(why, why_size, "placeholder {{%.128s}} has no value", expr);
                return NULL;
            }
            return json_object_get(val);
        }
        char *text = fill_text(c, s, FILL_BODY, why, why_size);
        if (!text)
            return NULL;
        json_object *r = json_object_new_string(text);
        free(text);
        return r;
    }
    if (json_object_is_type(v, json_type_array)) {
        size_t n = json_object_array_length(v);
        json_object *a = json_object_new_array_ext((int)n);
        for (size_t i = 0; i < n; i++) {
            json_object *x = json_object_array_get_idx(v, i);
            json_object *y = x ? fill_json(c, x, why, why_size) : NULL;
            if (x && !y) {
                json_object_put(a);
                return NULL;
            }
            json_object_array_add(a, y);
        }
        return a;
    }
    if (json_object_is_type(v, json_type_object)) {
        json_object *o = json_object_new_object();
        json_object_object_foreach(v, key, x)
        {
            json_object *y = x ? fill_json(c, x, why, why_size) : NULL;
            if (x && !y) {
                json_object_put(o);
                return NULL;
            }
            json_object_object_add(o, key, y);
        }
        return o;
    }
    return json_object_get(v);
}

/* Whether the URLs a and b have the same scheme, host, port and
 * credentials (curl's URL API parses both). */
static bool same_authority(const char *a, const char *b)
{
    static const CURLUPart parts[] = {CURLUPART_SCHEME, CURLUPART_HOST, CURLUPART_PORT,
                                      CURLUPART_USER, CURLUPART_PASSWORD, CURLUPART_OPTIONS,
                                      CURLUPART_ZONEID};
    CURLU *ua = curl_url(), *ub = curl_url();
    if (!ua || !ub)
        fatal("out of memory (curl_url)");
    bool same = curl_url_set(ua, CURLUPART_URL, a, 0) == CURLUE_OK &&
                curl_url_set(ub, CURLUPART_URL, b, 0) == CURLUE_OK;
    for (size_t i = 0; same && i < sizeof parts / sizeof *parts; i++) {
        char *x = NULL, *y = NULL;
        CURLUcode rx = curl_url_get(ua, parts[i], &x, CURLU_DEFAULT_PORT);
        CURLUcode ry = curl_url_get(ub, parts[i], &y, CURLU_DEFAULT_PORT);
        same = rx == ry && ((!x && !y) || (x && y && strcmp(x, y) == 0));
        curl_free(x);
        curl_free(y);
    }
    curl_url_cleanup(ua);
    curl_url_cleanup(ub);
    return same;
}

/* The template URL with its placeholders filled; NULL with why when a value
 * is missing, the result too long, or (a stored row written by hand: the
 * API refuses placeholders there) they stood in the authority. */
static char *fill_url(const struct call *c, const char *url, char *why, size_t why_size)
{
    char *filled = fill_text(c, url, FILL_URL, why, why_size);
    if (!filled)
        return NULL;
    if (strlen(filled) > CALL_URL_MAX) {
        snprintf(why, why_size, "the URL with its placeholders filled is longer than %d bytes",
                 CALL_URL_MAX);
        free(filled);
        return NULL;
    }
    /* The template without its placeholders: the authority the author wrote. */
    struct strbuf bare;
    strbuf_init(&bare);
    for (const char *p = url; *p;) {
        const char *open = strstr(p, "{{"), *close = open ? strstr(open, "}}") : NULL;
        if (!close) {
            strbuf_adds(&bare, p);
            break;
        }
        strbuf_add(&bare, p, (size_t)(open - p));
        p = close + 2;
    }
    bool same = same_authority(bare.data ? bare.data : "", filled);
    strbuf_cleanup(&bare);
    if (!same) {
        snprintf(why, why_size, "placeholders may not change the URL's scheme, host, port or "
                                "credentials");
        free(filled);
        return NULL;
    }
    return filled;
}

/* params.url with handle=<public url>/tasks/<id> added to its query; a start
 * call's handle carries the callback token of that start attempt (?token=)
 * when there is a callback secret. NULL unless it is an http(s) URL. */
static char *build_url(const struct call_request_settings *s, const char *url,
                       const struct call *c)
{
    CURLU *u = curl_url();
    if (!u)
        fatal("out of memory (curl_url)");
    /* A start call's handle names its attempt: a callback from an attempt
     * that a retry replaced is refused ("attempt superseded"). */
    char *handle;
    if (s->callback_secret && c->task_attempt > 0) {
        char token[CALLBACK_TOKEN_LEN + 1];
        tokens_callback(s->callback_secret, c->task_id, c->task_attempt, token);
        handle = xasprintf("handle=%s/tasks/%s?attempt=%d&token=%s", s->public_url, c->task_id,
                           c->task_attempt, token);
    } else if (c->task_attempt > 0) {
        handle = xasprintf("handle=%s/tasks/%s?attempt=%d", s->public_url, c->task_id,
                           c->task_attempt);
    } else {
        handle = xasprintf("handle=%s/tasks/%s", s->public_url, c->task_id);
    }
    char *out = NULL, *scheme = NULL, *result = NULL;
    if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        (strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0) &&
        curl_url_set(u, CURLUPART_QUERY, handle, CURLU_APPENDQUERY | CURLU_URLENCODE) ==
            CURLUE_OK &&
        curl_url_get(u, CURLUPART_URL, &out, 0) == CURLUE_OK) {
        result = xstrdup(out);
    }
    curl_free(out);
    curl_free(scheme);
    free(handle);
    curl_url_cleanup(u);
    return result;
}

static void add_line(struct call_request *r, char *line)
{
    struct curl_slist *l = curl_slist_append(r->headers, line);
    if (!l)
        fatal("out of memory (curl_slist_append)");
    r->headers = l;
    free(line);
}

/* Copies s into out (size bytes), cut, with '?' for what is not printable
 * ASCII: a name for a log line, not a way into it. */
static void copy_printable(char *out, size_t size, const char *s)
{
    size_t i = 0;
    for (; s[i] && i + 1 < size; i++)
        out[i] = s[i] > 0x20 && s[i] < 0x7F ? s[i] : '?';
    out[i] = '\0';
}

/* Whether the task's header name=value may be sent (see the top of call_request.h). */
static bool task_header_ok(const char *name, json_object *value)
{
    return json_object_is_type(value, json_type_string) && webhook_header_name_ok(name) &&
           !webhook_header_refused(name) &&
           webhook_header_value_ok(json_object_get_string(value)) &&
           json_object_get_string_len(value) <= WEBHOOK_HEADER_VALUE_MAX;
}

/* The task's own headers (params.headers), those that may be sent, their
 * placeholders filled. Sets *content_type when they name one. Returns -1
 * with why when a value is missing or unfit for a header. */
static int add_task_headers(struct call_request *r, const struct call *c, bool *content_type,
                            char *why, size_t why_size)
{
    json_object *headers;
    *content_type = false;
    if (!json_object_object_get_ex(c->params, "headers", &headers) ||
        !json_object_is_type(headers, json_type_object))
        return 0;
    json_object_object_foreach(headers, name, value)
    {
        if (!task_header_ok(name, value)) {
            if (r->dropped++ == 0)
                copy_printable(r->dropped_first, sizeof r->dropped_first, name);
            continue;
        }
        char *v = fill_text(c, json_object_get_string(value), FILL_HEADER, why, why_size);
        if (!v)
            return -1;
        if (strlen(v) > WEBHOOK_HEADER_VALUE_MAX) {
            snprintf(why, why_size, "header %.64s: longer than %d bytes with its placeholders "
                                    "filled", name, WEBHOOK_HEADER_VALUE_MAX);
            free(v);
            return -1;
        }
        *content_type = *content_type || strcasecmp(name, "Content-Type") == 0;
        /* curl drops a "Name:" line with no value (and the header of its own
         * by that name); "Name;" sends the header empty. */
        add_line(r, *v ? xasprintf("%s: %s", name, v) : xasprintf("%s;", name));
        free(v);
    }
    return 0;
}

static void add_service_headers(struct call_request *r, const struct call_request_settings *s,
                                const struct call *c, long long now, bool content_type)
{
    add_line(r, xasprintf("X-Task-Id: %s", c->task_id));
    add_line(r, xasprintf("X-Batch-Id: %s", c->batch_id));
    add_line(r, xasprintf("X-Task-Trigger: %s", webhook_trigger_header(c->trigger)));
    if (c->trigger == TRIGGER_START && c->task_attempt > 0)
        add_line(r, xasprintf("X-Task-Attempt: %d", c->task_attempt));
    if (c->outcome[0])
        add_line(r, xasprintf("X-Task-Status: %s", c->outcome));
    add_line(r, xasprintf("Idempotency-Key: %s", c->idem_key));
    add_line(r, xasprintf("webhook-id: %s", c->idem_key));
    if (c->from_executor) /* its URL and body were chosen by the executor (docs/security.md) */
        add_line(r, xstrdup("X-Task-Action-Source: executor"));
    add_line(r, xasprintf("webhook-timestamp: %lld", now));
    if (r->body && !content_type)
        add_line(r, xstrdup("Content-Type: application/json"));
    add_line(r, xstrdup("Expect:")); /* no 100-continue round trip */
    if (s->webhook_secret && s->webhook_secret[0]) {
        size_t len = r->body ? strlen(r->body) : 0;
        char sig[SIGN_HEADER_MAX];
        sign_webhook(s->webhook_secret, now, r->body, len, sig);
        add_line(r, xasprintf("X-Taskrunner-Signature: %s", sig));
        sign_standard_webhook(s->webhook_secret, c->idem_key, now, r->body, len, sig);
        add_line(r, xasprintf("webhook-signature: %s", sig));
    }
}

int call_request_build(const struct call_request_settings *s, const struct call *c,
                       long long now, struct call_request *out, char *error, size_t error_size)
{
    memset(out, 0, sizeof *out);
    json_object *v;
    const char *url = json_object_object_get_ex(c->params, "url", &v) &&
                              json_object_is_type(v, json_type_string)
                          ? json_object_get_string(v)
                          : NULL;
    /* The verb is one of the API's (a stored row may say anything). */
    const char *verb = "Post";
    if (json_object_object_get_ex(c->params, "verb", &v))
        verb = json_object_is_type(v, json_type_string)
                   ? validate_verb_name(json_object_get_string(v))
                   : NULL;
    if (!verb) {
        snprintf(error, error_size, "the stored verb is not one of Get, Post, Put, Patch, Delete");
        return -1;
    }
    if (!c->idem_key) {
        snprintf(error, error_size, "the call has no idempotency key");
        return -1;
    }
    char *filled = NULL;
    if (url && placeholder_any(url)) {
        filled = fill_url(c, url, error, error_size);
        if (!filled)
            goto fail;
        url = filled;
    }
    out->url = url ? build_url(s, url, c) : NULL;
    free(filled);
    if (!out->url) {
        snprintf(error, error_size, "the webhook URL cannot be used");
        return -1;
    }
    snprintf(out->method, sizeof out->method, "%s", verb);
    for (char *p = out->method; *p; p++)
        *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
    if (json_object_object_get_ex(c->params, "body", &v)) {
        const char *plain = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
        if (!placeholder_any(plain)) { /* the common case: sent as stored */
            out->body = xstrdup(plain);
        } else {
            json_object *body = fill_json(c, v, error, error_size);
            if (!body)
                goto fail;
            out->body = xstrdup(json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN));
            json_object_put(body);
        }
    }
    bool content_type;
    if (add_task_headers(out, c, &content_type, error, error_size) < 0)
        goto fail;
    add_service_headers(out, s, c, now, content_type);
    return 0;
fail:
    call_request_cleanup(out);
    return -1;
}

void call_request_cleanup(struct call_request *r)
{
    if (!r)
        return;
    free(r->url);
    free(r->body);
    curl_slist_free_all(r->headers);
    memset(r, 0, sizeof *r);
}

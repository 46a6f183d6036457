/*
 * call_request: building the request of a webhook call (see call_request.h).
 */
#include "call_request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "sign.h"
#include "tokens.h"
#include "validate.h"
#include "webhook_headers.h"

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

/* The task's own headers (params.headers), those that may be sent. Sets
 * *content_type when they name one. */
static void add_task_headers(struct call_request *r, const struct call *c, bool *content_type)
{
    json_object *headers;
    *content_type = false;
    if (!json_object_object_get_ex(c->params, "headers", &headers) ||
        !json_object_is_type(headers, json_type_object))
        return;
    json_object_object_foreach(headers, name, value)
    {
        if (!task_header_ok(name, value)) {
            if (r->dropped++ == 0)
                copy_printable(r->dropped_first, sizeof r->dropped_first, name);
            continue;
        }
        const char *v = json_object_get_string(value);
        *content_type = *content_type || strcasecmp(name, "Content-Type") == 0;
        /* curl drops a "Name:" line with no value (and the header of its own
         * by that name); "Name;" sends the header empty. */
        add_line(r, *v ? xasprintf("%s: %s", name, v) : xasprintf("%s;", name));
    }
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
                       long long now, struct call_request *out, const char **error)
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
        *error = "the stored verb is not one of Get, Post, Put, Patch, Delete";
        return -1;
    }
    if (!c->idem_key) {
        *error = "the call has no idempotency key";
        return -1;
    }
    out->url = url ? build_url(s, url, c) : NULL;
    if (!out->url) {
        *error = "the webhook URL cannot be used";
        return -1;
    }
    snprintf(out->method, sizeof out->method, "%s", verb);
    for (char *p = out->method; *p; p++)
        *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
    if (json_object_object_get_ex(c->params, "body", &v))
        out->body = xstrdup(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
    bool content_type;
    add_task_headers(out, c, &content_type);
    add_service_headers(out, s, c, now, content_type);
    return 0;
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

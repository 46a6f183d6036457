/*
 * fuzz_call_request: libFuzzer target for the request building of a webhook
 * call (worker/call_request.c), whatever the task's stored params say.
 *
 * The input is a call's params: either JSON (it starts with '{'), or
 * NUL-separated fields url, verb, body text, then header name/value pairs
 * (so that raw bytes, CR and LF included, reach names and values). The first
 * byte also picks the trigger, the outcome and whether the handle carries a
 * callback token.
 *
 * The request is serialized the way curl writes it (request line, Host,
 * User-Agent, Accept, Content-Length when there is a body, then the header
 * lines; "Name:" lines remove a header, "Name;" lines send it empty) and
 * read back. Invariants: exactly one request line, "<METHOD> <target>
 * HTTP/1.1" without white space or control characters in the target; every
 * other line a "name: value" header without CR, LF or NUL; exactly one Host,
 * at most one Content-Length (one exactly when there is a body, matching
 * it), no Transfer-Encoding, Connection, Keep-Alive, TE, Trailer, Upgrade,
 * Expect or Proxy-* line; the service's own headers exactly once each.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "call_request.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TASK_ID "0b7c6a3e-2f43-4c1e-9d7a-5e8f1a2b3c4d"
#define IDEM_KEY TASK_ID ":end:success:6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b"

/* params from NUL-separated fields: url, verb, body text, name, value, ... */
static json_object *params_from_fields(const char *p, size_t n)
{
    json_object *params = json_object_new_object(), *headers = json_object_new_object();
    const char *end = p + n, *name = NULL;
    int field = 0;
    while (p <= end && field < 64) {
        size_t len = strnlen(p, (size_t)(end - p));
        char *s = strndup(p, len);
        if (!s)
            abort();
        if (field == 0)
            json_object_object_add(params, "url", json_object_new_string(s));
        else if (field == 1 && len)
            json_object_object_add(params, "verb", json_object_new_string(s));
        else if (field == 2 && len)
            json_object_object_add(params, "body", json_object_new_string(s));
        else if (field >= 3 && field % 2 == 1)
            name = p;
        else if (field >= 3)
            json_object_object_add(headers, name, json_object_new_string(s));
        free(s);
        p += len + 1;
        field++;
    }
    json_object_object_add(params, "headers", headers);
    return params;
}

static size_t count_lines(char **lines, size_t n, const char *name, bool prefix)
{
    size_t count = 0, len = strlen(name);
    for (size_t i = 1; i < n; i++)
        if (prefix ? strncasecmp(lines[i], name, len) == 0
                   : strncasecmp(lines[i], name, len) == 0 && lines[i][len] == ':')
            count++;
    return count;
}

static void expect(bool ok, const char *what, const char *request)
{
    if (!ok) {
        fprintf(stderr, "fuzz_call_request: %s in:\n%s\n", what, request);
        abort();
    }
}

/* Serializes r as curl would, then checks it (see the top of the file). */
static void check_request(const struct call_request *r, const struct call *c)
{
    CURLU *u = curl_url();
    char *target = NULL, *query = NULL, *host = NULL, *port = NULL;
    if (!u || curl_url_set(u, CURLUPART_URL, r->url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PATH, &target, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
        expect(false, "the URL does not parse again", r->url);
    curl_url_get(u, CURLUPART_QUERY, &query, 0);
    curl_url_get(u, CURLUPART_PORT, &port, 0);

    struct strbuf b;
    strbuf_init(&b);
    strbuf_addf(&b, "%s %s%s%s HTTP/1.1\r\nHost: %s%s%s\r\nUser-Agent: taskrunner-worker\r\n"
                    "Accept: */*\r\n",
                r->method, target, query ? "?" : "", query ? query : "", host, port ? ":" : "",
                port ? port : "");
    if (r->body || strcmp(r->method, "POST") == 0)
        strbuf_addf(&b, "Content-Length: %zu\r\n", r->body ? strlen(r->body) : 0);
    for (struct curl_slist *l = r->headers; l; l = l->next) {
        const char *colon = strchr(l->data, ':'), *semi = strchr(l->data, ';');
        if (colon && colon[1 + strspn(colon + 1, " \t")] == '\0')
            continue; /* "Name:" removes a header */
        if (!colon && semi && semi[1] == '\0')
            strbuf_addf(&b, "%.*s:\r\n", (int)(semi - l->data), l->data);
        else
            strbuf_addf(&b, "%s\r\n", l->data);
    }
    strbuf_adds(&b, "\r\n");
    curl_free(target);
    curl_free(query);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);

    /* Read it back: the head ends at the first empty line. */
    const char *req = b.data;
    expect(strlen(req) == b.len, "a NUL byte", req);
    const char *head_end = strstr(req, "\r\n\r\n");
    expect(head_end && (size_t)(head_end + 4 - req) == b.len, "a head that ends early", req);
    char *lines[256];
    size_t n = 0;
    for (const char *p = req; p < head_end + 2 && n < 256;) {
        const char *e = strstr(p, "\r\n");
        size_t len = (size_t)(e - p);
        expect(memchr(p, '\r', len) == NULL && memchr(p, '\n', len) == NULL, "a bare CR or LF",
               req);
        lines[n++] = strndup(p, len);
        p = e + 2;
    }
    expect(n < 256, "too many lines", req);

    /* Exactly one request line. */
    char *sp1 = strchr(lines[0], ' '), *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    expect(sp1 && sp2 && strcmp(sp2, " HTTP/1.1") == 0, "a malformed request line", req);
    for (const char *p = sp1 + 1; p < sp2; p++)
        expect((unsigned char)*p > 0x20 && *p != 0x7F, "white space or a control in the target",
               req);
    for (size_t i = 1; i < n; i++) {
        const char *colon = strchr(lines[i], ':');
        expect(colon && colon > lines[i], "a line that is not a header", req);
        for (const char *p = lines[i]; p < colon; p++)
            expect((unsigned char)*p > 0x20 && *p != 0x7F && !strchr("()<>@,;\\\"/[]?={}", *p),
                   "a header name that is not a token", req);
        expect(strncasecmp(lines[i], "HTTP/", 5) != 0, "a second request line", req);
    }
    /* Framing: once, or never. */
    expect(count_lines(lines, n, "Host", false) == 1, "not exactly one Host", req);
    size_t cl = count_lines(lines, n, "Content-Length", false);
    expect(cl == ((r->body || strcmp(r->method, "POST") == 0) ? 1u : 0u),
           "a wrong number of Content-Length lines", req);
    static const char *const never[] = {"Transfer-Encoding", "Connection", "Keep-Alive", "TE",
                                        "Trailer", "Upgrade", "Expect"};
    for (size_t i = 0; i < sizeof never / sizeof never[0]; i++)
        expect(count_lines(lines, n, never[i], false) == 0, never[i], req);
    expect(count_lines(lines, n, "Proxy-", true) == 0, "a Proxy-* header", req);
    /* Who the call is: once each, the service's values. */
    static const char *const once[] = {"X-Task-Id", "X-Batch-Id", "X-Task-Trigger",
                                       "X-Task-Status", "Idempotency-Key", "webhook-id",
                                       "webhook-timestamp", "webhook-signature",
                                       "X-Taskrunner-Signature"};
    for (size_t i = 0; i < sizeof once / sizeof once[0]; i++) {
        bool wanted = strcmp(once[i], "X-Task-Status") != 0 || c->outcome[0];
        expect(count_lines(lines, n, once[i], false) == (wanted ? 1u : 0u), once[i], req);
    }
    /* X-Task-Id and X-Task-Trigger, X-Task-Status on end and cancel calls,
     * X-Task-Attempt on start calls, X-Task-Action-Source on executors' actions. */
    bool attempt = c->trigger == TRIGGER_START && c->task_attempt > 0;
    expect(count_lines(lines, n, "X-Task-Attempt", false) == (attempt ? 1u : 0u), "X-Task-Attempt",
           req);
    expect(count_lines(lines, n, "X-Task-", true) ==
               2u + (c->outcome[0] ? 1u : 0u) + (attempt ? 1u : 0u) + (c->from_executor ? 1u : 0u),
           "X-Task-*", req);
    expect(count_lines(lines, n, "webhook-", true) == 3, "webhook-*", req);
    for (size_t i = 1; i < n; i++)
        if (strncasecmp(lines[i], "webhook-id:", 11) == 0 ||
            strncasecmp(lines[i], "Idempotency-Key:", 16) == 0)
            expect(strcmp(strchr(lines[i], ':') + 2, IDEM_KEY) == 0, "a changed call id", req);
    for (size_t i = 0; i < n; i++)
        free(lines[i]);
    strbuf_cleanup(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || size > 65536)
        return 0;
    struct call c = {.delivery_id = 1, .attempts = 1};
    snprintf(c.task_id, sizeof c.task_id, "%s", TASK_ID);
    snprintf(c.batch_id, sizeof c.batch_id, "%s", "5a0c7e1d-3b2f-4e6a-8c9d-0f1e2d3c4b5a");
    c.trigger = (enum webhook_trigger)(data[0] % TRIGGER_COUNT);
    snprintf(c.outcome, sizeof c.outcome, "%s", data[0] % 3 ? "Success" : "");
    c.task_attempt = data[0] % 3 ? 0 : 1;
    c.idem_key = xstrdup(IDEM_KEY);
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    if (len > 0 && text[0] == '{') {
        json_tokener *tok = json_tokener_new();
        c.params = json_tokener_parse_ex(tok, text, (int)len);
        json_tokener_free(tok);
    } else {
        c.params = params_from_fields(text, len);
    }
    if (c.params && json_object_is_type(c.params, json_type_object)) {
        struct call_request_settings s = {.public_url = "http://127.0.0.1:8080",
                                          .callback_secret = data[0] & 4 ? "callback" : NULL,
                                          .webhook_secret = "webhook secret"};
        struct call_request r;
        char error[320] = "";
        if (call_request_build(&s, &c, 1700000000LL, &r, error, sizeof error) == 0)
            check_request(&r, &c);
        else if (!error[0])
            abort();
        call_request_cleanup(&r);
    }
    json_object_put(c.params); /* call_cleanup() lives with libpq in worker/call.c */
    free(c.idem_key);
    return 0;
}

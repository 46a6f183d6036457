/*
 * Unit tests of worker/call_request.c: the request of a webhook call is the
 * worker's own, whatever the stored params hold (refused and invalid
 * headers dropped, the service's headers once each, Standard Webhooks
 * headers signed over the call id), built with no network.
 */
#include "call_request.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "check.h"
#include "placeholder.h"
#include "sign.h"

#define TASK "0b7c6a3e-2f43-4c1e-9d7a-5e8f1a2b3c4d"
#define KEY TASK ":start:6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b"

static const struct call_request_settings settings = {
    .public_url = "http://127.0.0.1:8080", .callback_secret = NULL, .webhook_secret = "s3cret"};

static void call_init(struct call *c, const char *params)
{
    memset(c, 0, sizeof *c);
    snprintf(c->task_id, sizeof c->task_id, "%s", TASK);
    snprintf(c->batch_id, sizeof c->batch_id, "%s", "5a0c7e1d-3b2f-4e6a-8c9d-0f1e2d3c4b5a");
    c->trigger = TRIGGER_START;
    c->task_attempt = 1;
    c->idem_key = xstrdup(KEY);
    c->params = json_tokener_parse(params);
}

static void call_free(struct call *c)
{
    json_object_put(c->params);
    json_object_put(c->context);
    free(c->idem_key);
}

/* How many header lines are named name (any case); the last one's value in *value. */
static int count(const struct call_request *r, const char *name, const char **value)
{
    int n = 0;
    size_t len = strlen(name);
    for (struct curl_slist *l = r->headers; l; l = l->next)
        if (strncasecmp(l->data, name, len) == 0 && (l->data[len] == ':' || l->data[len] == ';')) {
            n++;
            if (value)
                *value = l->data + len + (l->data[len + 1] == ' ' ? 2 : 1);
        }
    return n;
}

static void test_hostile_headers(void)
{
    struct call c;
    call_init(&c, "{\"url\":\"http://127.0.0.1:9/x?a=1\",\"verb\":\"Post\",\"body\":{\"pad\":\"x\"},"
                  "\"headers\":{\"Content-Length\":\"0\",\"HOST\":\"evil\",\"x-task-id\":\"forged\","
                  "\"Idempotency-Key\":\"k\",\"Webhook-Id\":\"w\",\"Transfer-Encoding\":\"chunked\","
                  "\"Connection\":\"keep-alive\",\"Proxy-Authorization\":\"p\",\"X-Batch-Id\":\"b\","
                  "\"Bad Name\":\"v\",\"X-Split\":\"a\\r\\nContent-Length: 5\",\"X-Num\":5,"
                  "\"X-Ok\":\"fine\",\"X-Empty\":\"\"}}");
    struct call_request r;
    char error[320] = "";
    const char *v = NULL;
    if (!CHECK(call_request_build(&settings, &c, 1700000000LL, &r, error, sizeof error) == 0))
        goto out;
    CHECK_INT(r.dropped, 12);
    CHECK_STR(r.dropped_first, "Content-Length");
    CHECK_STR(r.method, "POST");
    CHECK_STR(r.body, "{\"pad\":\"x\"}");
    /* A start call's handle names its attempt. */
    CHECK_STR(r.url, "http://127.0.0.1:9/x?a=1&handle=http%3a%2f%2f127.0.0.1%3a8080%2ftasks%2f" TASK
                     "%3fattempt%3d1");
    CHECK_INT(count(&r, "X-Task-Attempt", &v), 1);
    CHECK_STR(v, "1");
    CHECK_INT(count(&r, "Content-Length", NULL), 0);
    CHECK_INT(count(&r, "Host", NULL), 0);
    CHECK_INT(count(&r, "Transfer-Encoding", NULL), 0);
    CHECK_INT(count(&r, "Connection", NULL), 0);
    CHECK_INT(count(&r, "Proxy-Authorization", NULL), 0);
    CHECK_INT(count(&r, "X-Split", NULL), 0);
    CHECK_INT(count(&r, "X-Num", NULL), 0);
    CHECK(count(&r, "X-Ok", &v) == 1 && CHECK_STR(v, "fine"));
    CHECK_INT(count(&r, "X-Empty", NULL), 1); /* sent empty ("X-Empty;") */
    CHECK(count(&r, "X-Task-Id", &v) == 1 && CHECK_STR(v, TASK));
    CHECK(count(&r, "X-Batch-Id", &v) == 1 && CHECK_STR(v, c.batch_id));
    CHECK(count(&r, "X-Task-Trigger", &v) == 1 && CHECK_STR(v, "start"));
    CHECK_INT(count(&r, "X-Task-Status", NULL), 0);
    CHECK(count(&r, "Idempotency-Key", &v) == 1 && CHECK_STR(v, KEY));
    CHECK(count(&r, "webhook-id", &v) == 1 && CHECK_STR(v, KEY));
    CHECK(count(&r, "webhook-timestamp", &v) == 1 && CHECK_STR(v, "1700000000"));
    char want[SIGN_HEADER_MAX];
    sign_standard_webhook("s3cret", KEY, 1700000000LL, r.body, strlen(r.body), want);
    CHECK(count(&r, "webhook-signature", &v) == 1 && CHECK_STR(v, want));
    sign_webhook("s3cret", 1700000000LL, r.body, strlen(r.body), want);
    CHECK(count(&r, "X-Taskrunner-Signature", &v) == 1 && CHECK_STR(v, want));
    CHECK(count(&r, "Content-Type", &v) == 1 && CHECK_STR(v, "application/json"));
out:
    call_request_cleanup(&r);
    call_free(&c);
}

static void test_plain_call(void)
{
    struct call c;
    call_init(&c, "{\"url\":\"https://x.example/p\",\"verb\":\"get\","
                  "\"headers\":{\"Content-Type\":\"text/plain\",\"Authorization\":\"Bearer t\"}}");
    c.trigger = TRIGGER_END;
    snprintf(c.outcome, sizeof c.outcome, "Success");
    c.task_attempt = 0;
    struct call_request_settings with_tokens = settings;
    with_tokens.callback_secret = "callback";
    with_tokens.webhook_secret = "";
    struct call_request r;
    char error[320] = "";
    const char *v = NULL;
    if (CHECK(call_request_build(&with_tokens, &c, 1700000000LL, &r, error, sizeof error) == 0)) {
        CHECK_INT(r.dropped, 0);
        CHECK_STR(r.method, "GET");
        CHECK(r.body == NULL);
        CHECK(strstr(r.url, "token") == NULL); /* end calls carry no callback token */
        CHECK(count(&r, "Content-Type", &v) == 1 && CHECK_STR(v, "text/plain"));
        CHECK(count(&r, "X-Task-Status", &v) == 1 && CHECK_STR(v, "Success"));
        CHECK_INT(count(&r, "webhook-signature", NULL), 0); /* no secret, no signature */
        CHECK_INT(count(&r, "webhook-id", NULL), 1);
    }
    call_request_cleanup(&r);
    /* A start call's handle carries its attempt and callback token. */
    c.trigger = TRIGGER_START;
    c.task_attempt = 2;
    if (CHECK(call_request_build(&with_tokens, &c, 1700000000LL, &r, error, sizeof error) == 0)) {
        CHECK(strstr(r.url, "%3fattempt%3d2%26token%3d") != NULL);
        CHECK_INT(count(&r, "X-Task-Attempt", &v), 1);
        CHECK_STR(v, "2");
    }
    call_request_cleanup(&r);
    call_free(&c);
}

static void test_unusable(void)
{
    static const char *const params[] = {
        "{\"url\":\"http://x.example/\",\"verb\":\"GET / HTTP/1.1\\r\\nHost: y\"}",
        "{\"url\":\"http://x.example/\",\"verb\":\"Options\"}",
        "{\"url\":\"http://x.example/\",\"verb\":5}",
        "{\"url\":\"ftp://x.example/\"}",
        "{\"url\":\"http://x.example/a b\"}",
        "{\"url\":\"http://x.example/\\r\\nHost: y\"}",
        "{\"url\":5}",
        "{}",
    };
    for (size_t i = 0; i < sizeof params / sizeof params[0]; i++) {
        struct call c;
        call_init(&c, params[i]);
        struct call_request r;
        char error[320] = "";
        if (!CHECK(call_request_build(&settings, &c, 1700000000LL, &r, error, sizeof error) == -1 && error[0]))
            fprintf(stderr, "    params %s should not make a call\n", params[i]);
        CHECK(r.url == NULL && r.headers == NULL);
        call_request_cleanup(&r);
        call_free(&c);
    }
}


/* ---------------------------------------------------------------- placeholders */

/* A call whose context holds metadata {"v": value} (and a few more). */
static void call_with_value(struct call *c, const char *params, json_object *value)
{
    call_init(c, params);
    c->context = json_tokener_parse("{\"task\":{\"id\":\"" TASK "\",\"name\":\"n\",\"kind\":\"k\","
                                    "\"attempt\":1,\"group\":null},\"output\":{\"rows\":7},"
                                    "\"metadata\":{},\"parents\":{\"exp\":{\"output\":"
                                    "{\"file\":\"a b.csv\"}}}}");
    json_object *m;
    json_object_object_get_ex(c->context, "metadata", &m);
    json_object_object_add(m, "v", value);
}

static const char *const HOSTILE[] = {
    "a\r\nX-Injected: 1", "user@evil.example:80", "x#frag", "x?admin=1&y=2", "../../etc/passwd",
    "..", ".", "//evil.example/x", "say \"hi\" \\ } {", "%2e%2e%2F", "http://evil.example/",
    " spaces and\ttab", "Zo\xc3\xab \xe2\x9c\x93", "{{metadata.v}}",
};

/* Every hostile value stays one piece of the path and of the query: same
 * scheme, host, port, no credentials, no fragment, no new query parameter,
 * no dot segment; decoded, it is the value itself. */
static void test_hostile_url_values(void)
{
    for (size_t i = 0; i < sizeof HOSTILE / sizeof *HOSTILE; i++) {
        struct call c;
        call_with_value(&c, "{\"url\":\"http://127.0.0.1:9/p/{{metadata.v}}/e?q={{metadata.v}}\"}",
                        json_object_new_string(HOSTILE[i]));
        struct call_request r;
        char error[320] = "";
        if (!CHECK(call_request_build(&settings, &c, 1700000000LL, &r, error, sizeof error) == 0)) {
            fprintf(stderr, "    value %zu: %s\n", i, error);
        } else {
            CURLU *u = curl_url();
            char *host = NULL, *port = NULL, *user = NULL, *frag = NULL, *path = NULL,
                 *query = NULL;
            CHECK(curl_url_set(u, CURLUPART_URL, r.url, 0) == CURLUE_OK);
            CHECK(curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && CHECK_STR(host, "127.0.0.1"));
            CHECK(curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK && CHECK_STR(port, "9"));
            CHECK(curl_url_get(u, CURLUPART_USER, &user, 0) != CURLUE_OK);
            CHECK(curl_url_get(u, CURLUPART_FRAGMENT, &frag, 0) != CURLUE_OK);
            CHECK(curl_url_get(u, CURLUPART_PATH, &path, 0) == CURLUE_OK);
            CHECK(curl_url_get(u, CURLUPART_QUERY, &query, 0) == CURLUE_OK);
            /* /p/<one segment>/e */
            CHECK(path && strncmp(path, "/p/", 3) == 0 && strchr(path + 3, '/') &&
                  strcmp(strchr(path + 3, '/'), "/e") == 0);
            CHECK(path && !strstr(path, "/../") && !strstr(path, "/./"));
            /* q=<value>&handle=...: exactly two parameters */
            int amps = 0;
            for (const char *q = query; q && *q; q++)
                amps += *q == '&';
            CHECK_INT(amps, 1);
            if (path) {
                const char *seg = path + 3;
                int n = (int)(strchr(seg, '/') - seg);
                int len = 0;
                char *dec = curl_easy_unescape(NULL, seg, n, &len);
                CHECK(dec && CHECK_STR(dec, HOSTILE[i]));
                curl_free(dec);
            }
            curl_free(host), curl_free(port), curl_free(user), curl_free(frag);
            curl_free(path), curl_free(query);
            curl_url_cleanup(u);
        }
        call_request_cleanup(&r);
        call_free(&c);
    }
}

/* Header values: text inserted, control characters refused (the call
 * fails, naming the placeholder), never a new line. */
static void test_hostile_header_values(void)
{
    for (size_t i = 0; i < sizeof HOSTILE / sizeof *HOSTILE; i++) {
        struct call c;
        call_with_value(&c, "{\"url\":\"http://127.0.0.1:9/\",\"headers\":{\"X-V\":\"<{{metadata.v}}>\"}}",
                        json_object_new_string(HOSTILE[i]));
        struct call_request r;
        char error[320] = "";
        const char *v = NULL;
        int rc = call_request_build(&settings, &c, 1700000000LL, &r, error, sizeof error);
        bool ctl = strpbrk(HOSTILE[i], "\r\n") != NULL;
        if (ctl) {
            CHECK(rc == -1 && strstr(error, "{{metadata.v}}") && strstr(error, "control"));
            CHECK(r.headers == NULL);
        } else if (CHECK(rc == 0)) {
            char want[256];
            snprintf(want, sizeof want, "<%s>", HOSTILE[i]);
            CHECK(count(&r, "X-V", &v) == 1 && CHECK_STR(v, want));
            CHECK_INT(count(&r, "X-Injected", NULL), 0);
        }
        call_request_cleanup(&r);
        call_free(&c);
    }
    /* A tab is fine in a header; NUL, CR and LF alone are not. */
    static const char *const bad[] = {"a\rb", "a\nb", "a\x01" "b"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct call c;
        call_with_value(&c, "{\"url\":\"http://127.0.0.1:9/\",\"headers\":{\"X-V\":\"{{metadata.v}}\"}}",
                        json_object_new_string(bad[i]));
        struct call_request r;
        char error[320] = "";
        CHECK(call_request_build(&settings, &c, 1700000000LL, &r, error, sizeof error) == -1);
        call_request_cleanup(&r);
        call_free(&c);
    }
    struct call c;
    /* (an exact body placeholder sends it as "\u0000": data) */
    call_with_value(&c, "{\"url\":\"http://127.0.0.1:9/\",\"body\":\"<{{metadata.v}}>\"}",
                    json_object_new_string_len("a\0b", 3));
    struct call_request r;
    char error[320] = "";
    CHECK(call_request_build(&settings, &c, 1700000000LL, &r, error, sizeof error) == -1 &&
          strstr(error, "NUL"));
    call_request_cleanup(&r);
    call_free(&c);
}

/* The body: values inserted by json-c (quotes, backslashes, braces stay
 * data), an exact placeholder keeps its JSON type, 1 MB strings and deep
 * objects go through whole. */
static void test_hostile_body_values(void)
{
    size_t big = 1 << 20;
    char *mb = xmalloc(big + 1);
    memset(mb, 'M', big);
    mb[big] = '\0';
    mb[10] = '"';
    mb[20] = '\\';
    json_object *deepv = json_object_new_string("bottom");
    for (int i = 0; i < 500; i++) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "d", deepv);
        deepv = o;
    }
    json_object *values[] = {json_object_new_string(HOSTILE[8]), json_object_new_string(mb), deepv,
                             json_object_new_int64(42)};
    for (size_t i = 0; i < sizeof values / sizeof *values; i++) {
        struct call c;
        json_object *expect = json_object_get(values[i]);
        call_with_value(&c, "{\"url\":\"http://127.0.0.1:9/\",\"body\":{\"exact\":\"{{metadata.v}}\","
                            "\"text\":\"[{{metadata.v}}]\",\"list\":[\"{{output.rows}}\","
                            "\"{{parents.exp.output.file}}\",\"{{task.name}}-{{task.attempt}}\"]}}",
                        values[i]);
        struct call_request r;
        char error[320] = "";
        if (CHECK(call_request_build(&settings, &c, 1700000000LL, &r, error, sizeof error) == 0)) {
            json_tokener *tok = json_tokener_new_ex(2000);
            json_object *got = json_tokener_parse_ex(tok, r.body, (int)strlen(r.body));
            json_tokener_free(tok);
            json_object *exact = NULL, *text = NULL, *list = NULL;
            CHECK(got && json_object_object_length(got) == 3);
            json_object_object_get_ex(got, "exact", &exact);
            json_object_object_get_ex(got, "text", &text);
            json_object_object_get_ex(got, "list", &list);
            CHECK(json_object_equal(exact, expect));
            const char *t = placeholder_text(expect);
            char *want = xasprintf("[%s]", t);
            CHECK(json_object_is_type(text, json_type_string) &&
                  strcmp(json_object_get_string(text), want) == 0);
            free(want);
            CHECK_STR(json_object_to_json_string_ext(list, JSON_C_TO_STRING_PLAIN),
                      "[7,\"a b.csv\",\"n-1\"]");
            json_object_put(got);
        }
        json_object_put(expect);
        call_request_cleanup(&r);
        call_free(&c);
    }
    free(mb);
}

/* A missing value, a stored placeholder in the authority, an over-long URL
 * or header: no request, and why names it. */
static void test_placeholder_failures(void)
{
    static const struct {
        const char *params;
        const char *why;
    } cases[] = {
        {"{\"url\":\"http://127.0.0.1:9/{{metadata.nope}}\"}", "{{metadata.nope}} has no value"},
        {"{\"url\":\"http://127.0.0.1:9/\",\"body\":[\"{{output.rows.x}}\"]}", "{{output.rows.x}} has no value"},
        {"{\"url\":\"http://127.0.0.1:9/\",\"headers\":{\"X\":\"{{task.group}}\"}}", "{{task.group}} has no value"},
        {"{\"url\":\"http://127.0.0.1:9/\",\"body\":\"{{parents.other.output}}\"}", "has no value"},
        {"{\"url\":\"http://{{metadata.v}}/x\"}", "scheme, host"},
        {"{\"url\":\"http://127.0.0.1:{{output.rows}}/x\"}", "scheme, host"},
        {"{\"url\":\"http://127.0.0.1:9/\",\"body\":\"{{nope}}\"}", "unknown root"},
        {"{\"url\":\"http://127.0.0.1:9/{{metadata.v\"}", "closing"},
        {"{\"url\":\"http://127.0.0.1:9/{{metadata.big}}\"}", "longer than"},
        {"{\"url\":\"http://127.0.0.1:9/\",\"headers\":{\"X\":\"{{metadata.big}}\"}}", "longer than"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct call c;
        call_with_value(&c, cases[i].params, json_object_new_string("evil.example"));
        json_object *m;
        json_object_object_get_ex(c.context, "metadata", &m);
        char *big = xmalloc(1 << 20);
        memset(big, 'x', (1 << 20) - 1);
        big[(1 << 20) - 1] = '\0';
        json_object_object_add(m, "big", json_object_new_string(big));
        free(big);
        struct call_request r;
        char error[320] = "";
        if (!CHECK(call_request_build(&settings, &c, 1700000000LL, &r, error, sizeof error) == -1 &&
                   strstr(error, cases[i].why)))
            fprintf(stderr, "    case %zu: error \"%s\", want \"%s\"\n", i, error, cases[i].why);
        CHECK(r.url == NULL && r.headers == NULL && r.body == NULL);
        call_request_cleanup(&r);
        call_free(&c);
    }
    /* Without a context (the row predates it): every placeholder is missing. */
    struct call c;
    call_init(&c, "{\"url\":\"http://127.0.0.1:9/\",\"body\":\"{{task.id}}\"}");
    struct call_request r;
    char error[320] = "";
    CHECK(call_request_build(&settings, &c, 1700000000LL, &r, error, sizeof error) == -1);
    call_request_cleanup(&r);
    call_free(&c);
}

int main(void)
{
    test_hostile_headers();
    test_plain_call();
    test_unusable();
    test_hostile_url_values();
    test_hostile_header_values();
    test_hostile_body_values();
    test_placeholder_failures();
    return check_exit();
}

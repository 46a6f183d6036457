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

int main(void)
{
    test_hostile_headers();
    test_plain_call();
    test_unusable();
    return check_exit();
}

/*
 * deliver: webhook calls over libcurl's multi interface (see deliver.h).
 *
 * Each transfer carries its struct transfer via CURLOPT_PRIVATE. The answer
 * body is kept only for start calls (it may register a cancel action), and
 * never beyond TASKRUNNER_MAX_RESPONSE_BYTES.
 *
 * SSRF protection: every socket a transfer opens goes through open_socket(),
 * which gets the address curl is about to connect to (after DNS, for every
 * address tried) and refuses any that the SSRF policy (shared/ssrf.h) does not permit (not public
 * and not in TASKRUNNER_WEBHOOK_ALLOW_CIDRS). A call refused that way fails
 * for good at once: retrying cannot make the address acceptable. Redirects
 * are not followed and no proxy is used, so the address checked is the
 * address called.
 */
#include "deliver.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "log.h"
#include "call_request.h"
#include "response.h"
#include "ssrf.h"
#include "targets.h"
#include "util.h"

struct transfer;

struct deliver {
    const struct config *cfg;
    CURLM *multi;
    int inflight;
    struct transfer *transfers; /* every transfer in flight (a list) */
    struct ssrf_list allow; /* non-public ranges calls may reach */
    bool callback_tokens;       /* API authentication is on: handles carry a token */
};

struct transfer {
    struct deliver *owner;
    struct transfer *prev, *next;
    CURL *easy;
    struct call_request req;    /* what is sent: URL, method, body, headers */
    struct strbuf response;
    bool keep_response;
    bool too_large;
    long long delivery_id;
    char task_id[40], trigger[12]; /* for the report: logs and metrics */
    char target[TARGET_MAX];    /* for the report: its target's breaker */
    bool is_start;
    int attempts;
    int timeout_ms;             /* params.timeout_ms, or the service's */
    int max_attempts;           /* params.max_attempts, or 0 */
    json_object *resp;          /* params.response (a reference), or NULL */
    long long started_ms;
    int sockets_opened;         /* connections open_socket() let through */
    int sockets_blocked;        /* and those it refused */
    char blocked_why[128];      /* why the first refused one was refused */
};

struct deliver *deliver_new(const struct config *cfg)
{
    struct deliver *d = xcalloc(1, sizeof *d);
    d->cfg = cfg;
    d->multi = curl_multi_init();
    if (!d->multi)
        fatal("could not create a curl multi handle");
    curl_multi_setopt(d->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)cfg->max_inflight);
    curl_multi_setopt(d->multi, CURLMOPT_MAXCONNECTS, (long)cfg->max_inflight);
    char why[160];
    if (ssrf_parse_list(cfg->webhook_allow_cidrs, &d->allow, why, sizeof why) < 0)
        fatal("bad value for TASKRUNNER_WEBHOOK_ALLOW_CIDRS: %s", why); /* cfg_load checked it */
    d->callback_tokens = cfg_auth_enabled(cfg);
    return d;
}

static void transfer_free(struct transfer *t)
{
    if (!t)
        return;
    if (t->prev)
        t->prev->next = t->next;
    else if (t->owner->transfers == t)
        t->owner->transfers = t->next;
    if (t->next)
        t->next->prev = t->prev;
    if (t->easy) {
        curl_multi_remove_handle(t->owner->multi, t->easy);
        curl_easy_cleanup(t->easy);
    }
    call_request_cleanup(&t->req);
    strbuf_cleanup(&t->response);
    json_object_put(t->resp);
    free(t);
}

void deliver_free(struct deliver *d)
{
    if (!d)
        return;
    curl_multi_cleanup(d->multi);
    ssrf_list_cleanup(&d->allow);
    free(d);
}

int deliver_inflight(const struct deliver *d)
{
    return d->inflight;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    struct transfer *t = arg;
    size_t len = size * n;
    if (!t->keep_response)
        return len;
    if (t->response.len + len > (size_t)t->owner->cfg->max_response_bytes) {
        t->too_large = true;
        return 0; /* stops reading: the status is known, the rest is not needed */
    }
    strbuf_add(&t->response, data, len);
    return len;
}

/* CURLOPT_OPENSOCKETFUNCTION: opens the socket of one connection attempt
 * only when its address is permitted (see the top of the file). */
static curl_socket_t open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *addr)
{
    struct transfer *t = arg;
    char why[sizeof t->blocked_why];
    bool ok = purpose == CURLSOCKTYPE_IPCXN &&
              ssrf_permitted(&t->owner->allow, &addr->addr, why, sizeof why);
    if (!ok) {
        if (purpose != CURLSOCKTYPE_IPCXN)
            snprintf(why, sizeof why, "not an IP connection");
        if (t->sockets_blocked++ == 0)
            snprintf(t->blocked_why, sizeof t->blocked_why, "%s", why);
        log_debug("call %lld: connection refused before connecting: %s", t->delivery_id, why);
        return CURL_SOCKET_BAD;
    }
    t->sockets_opened++;
    return socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
}

static void set_method(struct transfer *t)
{
    const struct call_request *r = &t->req;
    if (strcmp(r->method, "GET") == 0 && !r->body)
        curl_easy_setopt(t->easy, CURLOPT_HTTPGET, 1L);
    else if (strcmp(r->method, "POST") == 0)
        curl_easy_setopt(t->easy, CURLOPT_POST, 1L);
    else
        curl_easy_setopt(t->easy, CURLOPT_CUSTOMREQUEST, r->method);
    if (r->body)
        curl_easy_setopt(t->easy, CURLOPT_POSTFIELDS, r->body);
    else if (strcmp(r->method, "POST") == 0)
        curl_easy_setopt(t->easy, CURLOPT_POSTFIELDS, "");
}

static void request_settings(const struct deliver *d, struct call_request_settings *s)
{
    s->public_url = d->cfg->public_url;
    s->callback_secret = d->callback_tokens ? d->cfg->callback_secret : NULL;
    s->webhook_secret = d->cfg->webhook_secret;
}

int deliver_target(struct deliver *d, const struct call *c, char *target, size_t n,
                   char *error, size_t error_size)
{
    struct call_request req;
    struct call_request_settings settings;
    request_settings(d, &settings);
    int rc = call_request_build(&settings, c, (long long)time(NULL), &req, error, error_size);
    if (rc == 0 && targets_of_url(req.url, target, n) < 0) {
        snprintf(error, error_size, "the URL names no target");
        rc = -1;
    }
    call_request_cleanup(&req);
    return rc;
}

/* An integer of params within lo..hi, or def. */
static int param_int(json_object *params, const char *key, int lo, int hi, int def)
{
    json_object *v;
    if (!json_object_object_get_ex(params, key, &v) || !json_object_is_type(v, json_type_int))
        return def;
    int64_t i = json_object_get_int64(v);
    return i >= lo && i <= hi ? (int)i : def;
}

int deliver_start(struct deliver *d, const struct call *c, const char *target,
                  char *error, size_t error_size)
{
    const struct config *cfg = d->cfg;
    struct transfer *t = xcalloc(1, sizeof *t);
    t->owner = d;
    snprintf(t->target, sizeof t->target, "%s", target);
    strbuf_init(&t->response);
    t->delivery_id = c->delivery_id;
    snprintf(t->task_id, sizeof t->task_id, "%s", c->task_id);
    snprintf(t->trigger, sizeof t->trigger, "%s", webhook_trigger_name(c->trigger));
    t->is_start = c->trigger == TRIGGER_START;
    t->attempts = c->attempts;
    t->timeout_ms = param_int(c->params, "timeout_ms", 1, 300000, cfg->webhook_timeout_ms);
    t->max_attempts = param_int(c->params, "max_attempts", 1, 50, 0);
    json_object *response;
    if (json_object_object_get_ex(c->params, "response", &response) &&
        json_object_is_type(response, json_type_object))
        t->resp = json_object_get(response);
    /* The answer is read for start calls (it may register a cancel action
     * or be stored as output) and for calls whose rules read it. */
    t->keep_response = t->is_start || t->resp;
    t->started_ms = util_mono_ms();
    struct call_request_settings settings;
    request_settings(d, &settings);
    if (call_request_build(&settings, c, (long long)time(NULL), &t->req, error, error_size) < 0) {
        transfer_free(t);
        return -1;
    }
    if (t->req.dropped > 0)
        log_warn("call %lld: %d header(s) of params.headers not sent: names a task may not "
                 "set, or not valid headers (first: \"%s\")",
                 c->delivery_id, t->req.dropped, t->req.dropped_first);

    t->easy = curl_easy_init();
    if (!t->easy)
        fatal("could not create a curl handle");
    curl_easy_setopt(t->easy, CURLOPT_URL, t->req.url);
    curl_easy_setopt(t->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(t->easy, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(t->easy, CURLOPT_OPENSOCKETDATA, t);
    curl_easy_setopt(t->easy, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(t->easy, CURLOPT_PROXY, ""); /* not even from http_proxy */
    curl_easy_setopt(t->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(t->easy, CURLOPT_TIMEOUT_MS, (long)t->timeout_ms);
    curl_easy_setopt(t->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)t->timeout_ms);
    curl_easy_setopt(t->easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(t->easy, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(t->easy, CURLOPT_PRIVATE, t);
    curl_easy_setopt(t->easy, CURLOPT_USERAGENT, "taskrunner-worker");
    set_method(t);
    curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, t->req.headers);
    /* The request's framing is the worker's own (call_request.c drops what
     * could change it). A call whose stored headers had to be filtered was
     * written by someone trying: its connection is not kept for the next
     * call, whatever the answer looked like. */
    if (t->req.dropped > 0)
        curl_easy_setopt(t->easy, CURLOPT_FORBID_REUSE, 1L);
    if (curl_multi_add_handle(d->multi, t->easy) != CURLM_OK) {
        snprintf(error, error_size, "could not queue the call");
        transfer_free(t);
        return -1;
    }
    d->inflight++;
    t->next = d->transfers;
    if (d->transfers)
        d->transfers->prev = t;
    d->transfers = t;
    log_debug("call %lld started: %s %s", c->delivery_id, t->req.method, t->task_id);
    return 0;
}

void deliver_wait(struct deliver *d, struct curl_waitfd *extra, unsigned n_extra, int timeout_ms)
{
    int numfds;
    curl_multi_poll(d->multi, extra, n_extra, timeout_ms < 0 ? 0 : timeout_ms, &numfds);
}

void deliver_progress(struct deliver *d)
{
    int running;
    curl_multi_perform(d->multi, &running);
}

/* What params.response.rules make of an answer with status: sets res's
 * verdict fields. Returns false when no rule matched (the default applies). */
static bool apply_rules(const struct transfer *t, long status, struct call_result *res,
                        char *error, size_t error_size)
{
    json_object *rules = NULL;
    if (!t->resp || !json_object_object_get_ex(t->resp, "rules", &rules) || !rules)
        return false;
    int rule;
    enum response_verdict v = response_decide(rules, status, t->response.data ? t->response.data : "",
                                              t->response.len, !t->too_large, &rule);
    switch (v) {
    case RESPONSE_NONE:
        return false;
    case RESPONSE_ACCEPT:
    case RESPONSE_SUCCEED:
        res->ok = true;
        res->succeed = v == RESPONSE_SUCCEED && t->is_start;
        /* the answer's body means something only when it is a 2xx */
        res->body = status >= 200 && status < 300 && t->response.data ? t->response.data : "";
        res->body_len = status >= 200 && status < 300 ? t->response.len : 0;
        res->too_large = t->too_large && status >= 200 && status < 300;
        return true;
    case RESPONSE_FAIL:
    case RESPONSE_RETRY:
        snprintf(error, error_size, "HTTP %ld: response rule %d says %s", status, rule,
                 response_verdict_name(v));
        res->retryable = v == RESPONSE_RETRY;
        return true;
    }
    return false;
}

/* Reports transfer t as ended with curl code rc, then frees it. */
static void finish(struct deliver *d, struct transfer *t, CURLcode rc, deliver_done_fn done,
                   void *ctx)
{
    long status = 0;
    char error[256];
    struct call_result res = {.delivery_id = t->delivery_id, .is_start = t->is_start,
                              .task_id = t->task_id, .trigger = t->trigger,
                              .target = t->target,
                              .attempts = t->attempts,
                              .max_attempts = t->max_attempts,
                              .elapsed_ms = util_mono_ms() - t->started_ms};
    json_object *so = NULL;
    res.store_output = t->is_start && t->resp &&
                       json_object_object_get_ex(t->resp, "store_output", &so) &&
                       json_object_get_boolean(so);
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    res.http_status = status;
    /* An answer came (whole, or cut by the size bound): the rules decide
     * first, then the defaults below. */
    bool answered = status > 0 && (rc == CURLE_OK || t->too_large);
    if (answered && apply_rules(t, status, &res, error, sizeof error)) {
        /* decided */
    } else if (rc == CURLE_OK && status >= 200 && status < 300) {
        res.ok = true;
        res.body = t->response.data ? t->response.data : "";
        res.body_len = t->response.len;
    } else if (t->too_large && status >= 200 && status < 300) {
        /* A 2xx is success; an answer too large to read registers nothing
         * (the worker records why, loop.c). */
        res.ok = true;
        res.body = "";
        res.too_large = true;
    } else if (rc != CURLE_OK && t->sockets_blocked > 0 && t->sockets_opened == 0) {
        snprintf(error, sizeof error, "blocked: %s", t->blocked_why);
        res.retryable = false; /* the address will not become acceptable */
    } else if (rc == CURLE_OPERATION_TIMEDOUT) {
        snprintf(error, sizeof error, "no answer within %d ms", t->timeout_ms);
        res.retryable = true;
    } else if (rc != CURLE_OK) {
        snprintf(error, sizeof error, "%s", curl_easy_strerror(rc));
        res.retryable = true;
    } else {
        snprintf(error, sizeof error, "HTTP %ld", status);
        res.retryable = true;
    }
    if (!res.ok)
        res.error = error;
    d->inflight--;
    done(ctx, &res);
    transfer_free(t);
}

void deliver_collect(struct deliver *d, deliver_done_fn done, void *ctx)
{
    int running;
    curl_multi_perform(d->multi, &running);
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(d->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        struct transfer *t = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        finish(d, t, msg->data.result, done, ctx);
    }
}

void deliver_abort_all(struct deliver *d, deliver_done_fn done, void *ctx)
{
    while (d->transfers)
        finish(d, d->transfers, CURLE_ABORTED_BY_CALLBACK, done, ctx);
}

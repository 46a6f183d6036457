/*
 * call_request: the HTTP request of one webhook call, built from the call
 * alone — URL, method, body and header lines — with no network and no curl
 * handle, so that deliver.c sends exactly it and the unit test and the fuzz
 * target (tests/fuzz/fuzz_call_request.c) check exactly it.
 *
 * The request is framed by the worker only: params.headers entries that
 * are refused (shared/webhook_headers.h), not valid header names, or whose
 * values are not strings or hold control characters are dropped, whatever
 * the stored row says, and counted. The service's own headers come once
 * each, after the task's.
 */
#ifndef TR_CALL_REQUEST_H
#define TR_CALL_REQUEST_H

#include <curl/curl.h>

#include "call.h"
#include "util.h"

struct call_request_settings {
    const char *public_url;      /* base of the handle: <public_url>/tasks/<id> */
    const char *callback_secret; /* start handles carry a callback token; NULL: none */
    const char *webhook_secret;  /* signs the call; NULL or "": unsigned */
};

struct call_request {
    char *url;                  /* params.url with handle=… in its query (owned) */
    char method[8];             /* "GET", "POST", "PUT", "PATCH" or "DELETE" */
    char *body;                 /* params.body as compact JSON, or NULL (owned) */
    struct curl_slist *headers; /* every header line, "Name: value" (owned) */
    int dropped;                /* params.headers entries not sent */
    char dropped_first[64];     /* the name of the first of them (cut), for the log */
};

/* The longest URL a call is made to, placeholders filled (bytes). */
enum { CALL_URL_MAX = 16384 };

/* Builds the request of call c at unix time now, its placeholders filled
 * from c->context (see call_request.c). Returns 0, or -1 with why in error
 * (error_size bytes) when the call cannot be made as stored (no usable
 * http(s) URL, unknown verb, a placeholder without a value or with one a
 * header cannot carry); out is then empty. Release out with
 * call_request_cleanup either way. */
int call_request_build(const struct call_request_settings *s, const struct call *c,
                       long long now, struct call_request *out, char *error,
                       size_t error_size) WARN_UNUSED;
void call_request_cleanup(struct call_request *r);

#endif

/*
 * sign: the X-Taskrunner-Signature of outgoing webhook calls:
 *   t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>
 * so receivers can check a call came from this service and is fresh.
 */
#ifndef TR_SIGN_H
#define TR_SIGN_H

#include <stddef.h>

enum { SIGN_HEADER_MAX = 128 };

/* Writes the header value for body (may be NULL: signs "<t>.") at time t
 * into out (at least SIGN_HEADER_MAX bytes). */
void sign_webhook(const char *secret, long long t, const char *body, size_t body_len, char *out);

#endif

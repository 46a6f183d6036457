/*
 * sign: the signatures of outgoing webhook calls, so receivers can check a
 * call came from this service, is fresh and is the call it says it is:
 *   X-Taskrunner-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>
 *   webhook-signature:      v1,<base64 HMAC-SHA256(secret, "<id>.<t>.<raw body>")>
 * The second is the Standard Webhooks one (https://www.standardwebhooks.com):
 * <id> is the call's webhook-id (its Idempotency-Key), so the signature also
 * covers which task, trigger, outcome and action the call is for. Both use
 * the bytes of the secret as the HMAC key; in the specification's form the
 * secret is "whsec_" + base64(those bytes).
 */
#ifndef TR_SIGN_H
#define TR_SIGN_H

#include <stddef.h>

enum { SIGN_HEADER_MAX = 128 };

/* Writes the header value for body (may be NULL: signs "<t>.") at time t
 * into out (at least SIGN_HEADER_MAX bytes). */
void sign_webhook(const char *secret, long long t, const char *body, size_t body_len, char *out);

/* Writes the Standard Webhooks signature "v1,<base64>" of the call id at
 * time t for body (may be NULL: signs "<id>.<t>.") into out (at least
 * SIGN_HEADER_MAX bytes). */
void sign_standard_webhook(const char *secret, const char *id, long long t, const char *body,
                           size_t body_len, char *out);

#endif

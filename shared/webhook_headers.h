/*
 * webhook_headers: the header names a task may not set in the params.headers
 * of its webhook actions (API.md, "Webhook header safety"). One table, read
 * by validate.c (refused at creation, 400) and by the worker (dropped again
 * on every call, whatever the stored row holds):
 *   - framing and hop-by-hop headers, which would let one call change how
 *     the bytes of the next call on the same kept-alive connection are read;
 *   - the service's own headers, which say which task and call this is and
 *     sign it: a task must not claim to be another.
 */
#ifndef TR_WEBHOOK_HEADERS_H
#define TR_WEBHOOK_HEADERS_H

#include <stdbool.h>

/* Whether name (any letter case) is one of the refused header names. */
bool webhook_header_refused(const char *name);

enum { WEBHOOK_HEADER_NAME_MAX = 256, WEBHOOK_HEADER_VALUE_MAX = 8192 };

/* Whether name is a header name: an RFC 9110 token of 1 to
 * WEBHOOK_HEADER_NAME_MAX bytes. */
bool webhook_header_name_ok(const char *name);

/* Whether value can be sent as it is: no control characters (CR or LF would
 * end the header line), tab allowed. */
bool webhook_header_value_ok(const char *value);

/* The refused names as API.md lists them, for messages:
 * "Host, Content-Length, ..., webhook-*". */
const char *webhook_header_refused_list(void);

#endif

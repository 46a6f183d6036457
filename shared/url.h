/*
 * url: the one URL check of the service, shared by the responder (POST
 * /tasks, PATCH cancel actions) and the worker, parsed with uriparser
 * (RFC 3986) so that the responder needs no HTTP client library.
 */
#ifndef TR_URL_H
#define TR_URL_H

#include <stdbool.h>

/* Whether url is a webhook target the worker can call: an absolute RFC 3986
 * URI with scheme http or https (any case), a non-empty host and a port of
 * at most 65535. Characters RFC 3986 does not allow (spaces, controls,
 * non-ASCII bytes, {}|\^`"<>, a second '#') must be percent-encoded; a host
 * name is ASCII letters, digits and "-._~" (an IDN in its punycode form),
 * or an IPv4 or IPv6 address. */
bool url_webhook_ok(const char *url);

/* url with the credentials of its authority ("user:pw@" of
 * "http://user:pw@host/") replaced by "***@", for logs and answers: only the
 * worker's call uses them. Every byte up to the last '@' before the first '/',
 * '?' or '#' after "scheme://" is masked, as tr_mask_url does in SQL
 * (sql/functions/json.sql). A new string (the caller's); a copy of url when
 * it holds no credentials; NULL for NULL. */
char *url_mask_credentials(const char *url);

#endif

/*
 * query: reading parameters of a URL query string ("a=1&b=x%20y"), without
 * any FastCGI request around it (fcgi/request.c uses it; so does the fuzz
 * target tests/fuzz/fuzz_urlquery.c).
 */
#ifndef TR_URLQUERY_H
#define TR_URLQUERY_H

#include "util.h"

/* Sets *out to the decoded value of the first parameter called name in query
 * (the caller's; "" for "name" or "name="), or NULL when there is none.
 * '+' decodes to a space and %XX to its byte. Returns -1 (with *out NULL)
 * when the value is malformed: it decodes to a NUL byte. */
int urlquery_value(const char *query, const char *name, char **out) WARN_UNUSED;

#endif

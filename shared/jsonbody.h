/*
 * jsonbody: parsing a request body as one strict JSON document, as the
 * responders do (fcgi/request.c) and the fuzz target tests/fuzz/fuzz_validate.c
 * does: no NUL byte, no \u0000 escape, valid UTF-8, nesting bounded, nothing
 * but white space after the document.
 */
#ifndef TR_JSONBODY_H
#define TR_JSONBODY_H

#include <json-c/json.h>
#include <stddef.h>

#include "util.h"

enum { JSONBODY_MAX_DEPTH = 64 };

/* Parses the len bytes of text (text[len] need not be NUL). On success
 * returns 0 with *out the document (the caller's); otherwise returns -1,
 * *out NULL, and writes why into err. */
int jsonbody_parse(const char *text, size_t len, json_object **out, char *err,
                   size_t errsize) WARN_UNUSED;

#endif

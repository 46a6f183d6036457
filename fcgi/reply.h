/*
 * reply: writing answers. Every answer is JSON (but the Prometheus text of
 * GET /metrics); every error has the shape of API.md:
 * {"error": "...", "details": ["<path>: <why>", ...],
 *  "fields": [{"field": "<path>", "message": "<why>"}, ...]}.
 */
#ifndef TR_REPLY_H
#define TR_REPLY_H

#include <json-c/json.h>

#include "db.h"
#include "request.h"

struct verr_list;

/* Writes status, extra header lines (each ending in "\r\n", or NULL) and a
 * JSON body. */
void reply_json(struct request *r, int status, const char *extra_headers, const char *body);

/* Writes status and a body of another type than JSON (GET /metrics). */
void reply_text(struct request *r, int status, const char *content_type, const char *body,
                size_t len);

/* Writes an error answer; fields (an array of {"field", "message"}, or NULL)
 * is taken over, and its entries also become the "details" strings. Returns
 * -1 so that handlers can `return reply_error(...)`. */
int reply_error(struct request *r, int status, const char *message, json_object *fields);
/* reply_error with extra header lines (each ending in "\r\n", or NULL). */
int reply_error_headers(struct request *r, int status, const char *extra_headers,
                        const char *message, json_object *fields);
/* A 400 listing every validation problem. Returns -1. */
int reply_invalid(struct request *r, const char *message, const struct verr_list *errs);
/* The answer a failed query means (503 with Retry-After, 400, 409, 500). Returns -1. */
int reply_db_error(struct request *r, const struct db_error *err);

#endif

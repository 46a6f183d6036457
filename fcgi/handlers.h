/*
 * handlers: one function per endpoint. id is the lower-cased UUID from the
 * path, or NULL for routes without one. Each answers the request itself.
 */
#ifndef TR_HANDLERS_H
#define TR_HANDLERS_H

#include "request.h"

void tasks_create(struct request *r, const char *id);
void tasks_list(struct request *r, const char *id);
void tasks_get(struct request *r, const char *id);
void tasks_patch(struct request *r, const char *id);
void tasks_count(struct request *r, const char *id);
void tasks_cancel(struct request *r, const char *id);
void tasks_pause(struct request *r, const char *id);
void tasks_resume(struct request *r, const char *id);
void batches_get(struct request *r, const char *id);
void batches_stop(struct request *r, const char *id);
void health_check(struct request *r, const char *id);
void health_ready(struct request *r, const char *id);

/* Runs an API function of the database that returns (code, body) and
 * answers with it: the body as JSON for 2xx, an error object otherwise.
 * extra_headers (or NULL) go with a 2xx answer. */
void api_call(struct request *r, const char *sql, int n, const char *const *params,
              const char *extra_headers);

#endif

/*
 * handlers: one function per endpoint. id is the lower-cased UUID from the
 * path (the decimal delivery id for /dead-letters/{id}), or NULL for routes
 * without one. Each answers the request itself.
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
void tasks_history(struct request *r, const char *id);
void tasks_blockers(struct request *r, const char *id);
void batches_get(struct request *r, const char *id);
void batches_stop(struct request *r, const char *id);
void health_check(struct request *r, const char *id);
void health_ready(struct request *r, const char *id);
void metrics_get(struct request *r, const char *id);
void dead_letters_list(struct request *r, const char *id);
void dead_letters_replay(struct request *r, const char *id);

/* Runs an API function of the database that returns (code, body) and
 * answers with it: the body as JSON for 2xx, an error object otherwise.
 * extra_headers (or NULL) go with a 2xx answer. */
void api_call(struct request *r, const char *sql, int n, const char *const *params,
              const char *extra_headers);

/* One page of a list, as SQL LIMIT and OFFSET (decimal text). */
struct api_page {
    char limit[24], offset[24];
};

struct verr_list;
/* Reads the paging of a list from r's query: page (from 0; negative counts
 * as 0), page_size or its alias per_page (default and cap from the config).
 * A problem is added to errs (the caller answers 400 with all of them);
 * a malformed query value is answered at once (-1). */
int api_page_or_reply(struct request *r, struct verr_list *errs, struct api_page *out) WARN_UNUSED;

#endif

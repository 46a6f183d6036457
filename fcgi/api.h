/*
 * api: what every resource handler shares: answering with what a database
 * API function returned (code, body), and reading the paging of a list.
 */
#ifndef TR_API_H
#define TR_API_H

#include "request.h"

/* Runs an API function of the database that returns (code, body) and
 * answers with it: the body as JSON for 2xx, an error object otherwise.
 * extra_headers (or NULL) go with a 2xx answer. */
void api_call(struct request *r, const char *sql, int n, const char *const *params,
              const char *extra_headers);

/* api_call for a paged list: sql takes ($1 = id, when id is not NULL,) then
 * the page's LIMIT and OFFSET; a bad page in r's query is answered 400. */
void api_call_paged(struct request *r, const char *sql, const char *id);

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

/* Reads boolean query parameter name ("true" or "false"; absent: false)
 * into *out as SQL text ("true"/"false"); another value is a problem added
 * to errs; a malformed query value is answered at once (-1). */
int api_flag_or_reply(struct request *r, const char *name, struct verr_list *errs,
                      const char **out) WARN_UNUSED;

#endif

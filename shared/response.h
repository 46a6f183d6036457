/*
 * response: params.response of a webhook action (API.md, "Webhooks v2"):
 * the rules that decide what an answer means, and conditions on JSON values.
 * Pure: the worker's deliver.c asks it about each answer.
 *
 * Bounded cost: an answer is read only up to TASKRUNNER_MAX_RESPONSE_BYTES
 * (deliver.c), parsed once per decision with json-c at a depth of at most
 * RESPONSE_DEPTH_MAX; each path has at most PH_DEPTH_MAX segments
 * (shared/placeholder.h), each a key lookup or an array index; "in" lists
 * at most 64 values and there are at most 16 rules (checked at creation).
 */
#ifndef TR_RESPONSE_H
#define TR_RESPONSE_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

enum { RESPONSE_DEPTH_MAX = 64 };

enum response_verdict {
    RESPONSE_NONE,    /* no rule matched: 2xx accepts, anything else is retried */
    RESPONSE_ACCEPT,  /* the call succeeded */
    RESPONSE_SUCCEED, /* on_start: the call succeeded and the task ends Success */
    RESPONSE_FAIL,    /* the call failed for good */
    RESPONSE_RETRY,   /* the call failed and is tried again (backoff, max attempts) */
};

/*
 * The first of rules (params.response.rules, as validate.c normalized it;
 * NULL: none) whose "when" matches an answer with HTTP status and body
 * (len bytes; whole: false when it was cut, then no "json" condition
 * holds). *rule gets its 1-based index (0 when none matched).
 */
enum response_verdict response_decide(json_object *rules, long status, const char *body,
                                      size_t len, bool whole, int *rule);

/* Whether condition cond ({"path", "equals"|"in"|"exists"}) holds on root
 * (a JSON null counts as absent, as in SQL's tr_cond_holds). */
bool response_cond_holds(json_object *root, json_object *cond);

/* Parses text (len bytes) as one JSON value at a depth of at most
 * RESPONSE_DEPTH_MAX. Returns 0 with *out (caller owns; NULL for JSON null),
 * or -1 when it is not exactly one JSON value. */
int response_parse(const char *text, size_t len, json_object **out);

/* The verdict's name ("accept", ...). */
const char *response_verdict_name(enum response_verdict v);

#endif

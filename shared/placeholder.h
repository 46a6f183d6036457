/*
 * placeholder: the `{{...}}` placeholders of webhook params (API.md,
 * "Webhooks v2"), and the bounded JSON paths they and the response rules
 * use. One grammar, read by validate.c (checked at creation, 400 with the
 * field path) and by the worker (filled at call time, worker/call_request.c).
 *
 * A placeholder is "{{" expression "}}" with no spaces; an expression is a
 * root and a dot-separated path:
 *   task.id | task.name | task.kind | task.batch_id | task.group | task.attempt
 *   metadata[.<path>]   output[.<path>]   parents.<local id>.output[.<path>]
 * A path segment is 1..PH_SEGMENT_MAX bytes without '.', '{', '}', spaces or
 * control characters; an all-digit segment also indexes an array. Every
 * "{{" starts a placeholder: there is no escape.
 *
 * Bounded cost: an expression is at most PH_EXPR_MAX bytes and
 * PH_DEPTH_MAX segments, a string at most PH_PER_STRING_MAX placeholders;
 * a path walk is one step per segment (object key lookup or array index).
 */
#ifndef TR_PLACEHOLDER_H
#define TR_PLACEHOLDER_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

enum {
    PH_EXPR_MAX = 256,       /* bytes between the braces */
    PH_DEPTH_MAX = 32,       /* segments of a path */
    PH_SEGMENT_MAX = 255,    /* bytes of one segment (a local id is at most 255) */
    PH_PER_STRING_MAX = 64,  /* placeholders in one string */
};

/* One placeholder found in a string: where it is and what it names. */
struct ph_span {
    size_t start, len;          /* of the whole "{{...}}" in the string */
    char expr[PH_EXPR_MAX + 1]; /* between the braces */
};

/*
 * Calls fn for each placeholder of s, in order. Returns 0, or -1 with why
 * (why_size bytes) at the first syntax error (unterminated "{{", too long,
 * too many, a bad expression: see placeholder_check); fn returning nonzero
 * stops the scan and is returned.
 */
typedef int (*ph_fn)(void *ctx, const char *s, const struct ph_span *p);
int placeholder_scan(const char *s, ph_fn fn, void *ctx, char *why, size_t why_size);

/* Whether s holds "{{" at all (the cheap test before any scan). */
bool placeholder_any(const char *s);

/*
 * Checks expr (the text between the braces): a known root and a valid
 * path. Returns 0, or -1 with why. *parent gets the local id of a
 * parents.<x> expression (pointing into parent_buf, parent_size bytes), or
 * NULL.
 */
int placeholder_check(const char *expr, char *parent_buf, size_t parent_size,
                      const char **parent, char *why, size_t why_size);

/*
 * Walks path (dot-separated segments, at most PH_DEPTH_MAX; "" is root
 * itself) from root: an object key, or an array index for an all-digit
 * segment. Returns the value (borrowed), or NULL when absent or JSON null.
 */
json_object *placeholder_walk(json_object *root, const char *path);

/* Whether path is a valid JSON path for placeholder_walk (1..PH_EXPR_MAX
 * bytes, segments as above). */
bool placeholder_path_ok(const char *path);

/* The text a value takes inside a larger string: a string's own contents,
 * any other value its compact JSON. Borrowed from v (valid while v is). */
const char *placeholder_text(json_object *v);

#endif

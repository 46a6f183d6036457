/*
 * validate: checks a POST /tasks body against the rules of API.md and turns
 * it into the normalized JSON that the database function tr_create_batch()
 * takes. Every problem is reported with its field path; nothing partial is
 * ever produced.
 */
#ifndef TR_VALIDATE_H
#define TR_VALIDATE_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

#include "util.h"

/* One problem in a request: the JSON path ("[3].dependencies[0].id") and why. */
struct verr {
    char *field;
    char *message;
};

struct verr_list {
    struct verr *items;
    size_t n, cap;
};

void verr_list_init(struct verr_list *l);
void verr_list_cleanup(struct verr_list *l);
void verr_add(struct verr_list *l, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Returns a new json array [{"field":..,"message":..}] (caller owns it). */
json_object *verr_list_to_json(const struct verr_list *l);

struct validate_limits {
    int max_tasks; /* most tasks in one batch (API default 10000) */
};

/*
 * Validates body (the parsed request JSON; not taken over). On success
 * returns 0 and sets *out to a new array (caller owns) of normalized tasks;
 * on any problem returns -1, leaves *out NULL and fills errs with every
 * problem found. Task and action ids are new random UUIDs (libuuid).
 */
int validate_batch(json_object *body, const struct validate_limits *lim, json_object **out,
                   struct verr_list *errs) WARN_UNUSED;

/*
 * Checks an action object that an on_start answer returned, to be registered
 * as a cancel action, under the rules of an on_cancel action of POST /tasks.
 * Returns 0 with *out its normalized form (caller owns, with a new id), or
 * -1 when it is not a valid action, with the first problem ("params.url:
 * ...") written into why (why_size bytes, cut to fit).
 */
int validate_cancel_action(json_object *action, json_object **out, char *why,
                           size_t why_size) WARN_UNUSED;

/*
 * Rule and action templates (API.md Part 2, "Rule and action templates").
 * validate_template_name: 1..255 characters of UTF-8 without "/" (it names
 * the template in paths). validate_rule_template: a rule object as in a
 * task's rules, with matcher.kind required (no task to take it from);
 * *out its normalized form. validate_action_template: an action's kind
 * ("Webhook") and complete params; *out {"kind", "params"}. Both return 0,
 * or -1 with every problem in errs (*out NULL).
 */
bool validate_template_name(const char *s);
int validate_rule_template(json_object *body, json_object **out,
                           struct verr_list *errs) WARN_UNUSED;
int validate_action_template(json_object *body, json_object **out,
                             struct verr_list *errs) WARN_UNUSED;

/*
 * Checks free-form JSON (metadata, a webhook body) can be stored as sent:
 * strings valid UTF-8 without NUL, integers within 64 bits, finite numbers.
 * Problems are added to errs under path; returns -1 when there were any.
 */
int validate_json_value(json_object *v, const char *path, struct verr_list *errs);

/* Canonical spelling of an enum value given in any letter case, or NULL. */
const char *validate_status_name(const char *s);
const char *validate_verb_name(const char *s);

/* Whether the n bytes of s are valid UTF-8 (as PostgreSQL takes it). */
bool validate_is_utf8(const char *s, size_t n);

/* Whether s is an RFC 3339 date-time ("2026-12-24T08:00:00Z", an optional
 * fraction of up to 9 digits, "Z" or "+hh:mm") naming a real date and time. */
bool validate_is_rfc3339(const char *s);

/* Whether s is a UUID in canonical 8-4-4-4-12 hex text form. */
bool validate_is_uuid(const char *s);

#endif

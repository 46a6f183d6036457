/*
 * templates: the /rules and /action-templates endpoints (API.md Part 2,
 * "Rule and action templates (F2, F3)"). The body is checked with the
 * validator of POST /tasks (shared/validate.c); the database functions
 * (sql/functions/templates.sql) store it, answer 201 or 200, refuse a
 * DELETE while a task that has not ended names the template, and write the
 * audit rows. The name is the path's ":key" segment.
 */
#include <json-c/json.h>

#include "api.h"
#include "handlers.h"
#include "reply.h"
#include "validate.h"

static const char SQL_PUT_RULE[] = "SELECT code, body FROM tr_put_rule($1, $2::jsonb, $3)";
static const char SQL_LIST_RULES[] =
    "SELECT code, body FROM tr_list_rules($1::bigint, $2::bigint)";
static const char SQL_GET_RULE[] = "SELECT code, body FROM tr_get_rule($1)";
static const char SQL_DELETE_RULE[] = "SELECT code, body FROM tr_delete_rule($1, $2)";
static const char SQL_PUT_ACTION[] =
    "SELECT code, body FROM tr_put_action_template($1, $2, $3::jsonb, $4)";
static const char SQL_LIST_ACTIONS[] =
    "SELECT code, body FROM tr_list_action_templates($1::bigint, $2::bigint)";
static const char SQL_GET_ACTION[] = "SELECT code, body FROM tr_get_action_template($1)";
static const char SQL_DELETE_ACTION[] =
    "SELECT code, body FROM tr_delete_action_template($1, $2)";

static const char *json_plain(json_object *o)
{
    return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

/* -1 (answered 400) when name cannot name a template. */
static int name_ok_or_reply(struct request *r, const char *name)
{
    if (validate_template_name(name))
        return 0;
    struct verr_list errs;
    verr_list_init(&errs);
    verr_add(&errs, "name", "must be 1 to 255 characters without \"/\"");
    reply_invalid(r, "invalid template name", &errs);
    verr_list_cleanup(&errs);
    return -1;
}

void rules_put(struct request *r, const char *name)
{
    json_object *body = NULL, *rule = NULL;
    struct verr_list errs;
    verr_list_init(&errs);
    if (name_ok_or_reply(r, name) < 0 || request_json_body_or_reply(r, &body) < 0)
        goto out;
    if (validate_rule_template(body, &rule, &errs) < 0) {
        reply_invalid(r, "invalid rule", &errs);
        goto out;
    }
    const char *params[] = {name, json_plain(rule), r->actor};
    api_call(r, SQL_PUT_RULE, 3, params, NULL);
out:
    json_object_put(body);
    json_object_put(rule);
    verr_list_cleanup(&errs);
}

void rules_list(struct request *r, const char *unused)
{
    (void)unused;
    api_call_paged(r, SQL_LIST_RULES, NULL);
}

void rules_get(struct request *r, const char *name)
{
    const char *params[] = {name};
    api_call(r, SQL_GET_RULE, 1, params, NULL);
}

void rules_delete(struct request *r, const char *name)
{
    const char *params[] = {name, r->actor};
    api_call(r, SQL_DELETE_RULE, 2, params, NULL);
}

void action_templates_put(struct request *r, const char *name)
{
    json_object *body = NULL, *action = NULL;
    struct verr_list errs;
    verr_list_init(&errs);
    if (name_ok_or_reply(r, name) < 0 || request_json_body_or_reply(r, &body) < 0)
        goto out;
    if (validate_action_template(body, &action, &errs) < 0) {
        reply_invalid(r, "invalid action template", &errs);
        goto out;
    }
    json_object *kind = NULL, *params_obj = NULL;
    json_object_object_get_ex(action, "kind", &kind);
    json_object_object_get_ex(action, "params", &params_obj);
    const char *params[] = {name, json_object_get_string(kind), json_plain(params_obj),
                            r->actor};
    api_call(r, SQL_PUT_ACTION, 4, params, NULL);
out:
    json_object_put(body);
    json_object_put(action);
    verr_list_cleanup(&errs);
}

void action_templates_list(struct request *r, const char *unused)
{
    (void)unused;
    api_call_paged(r, SQL_LIST_ACTIONS, NULL);
}

void action_templates_get(struct request *r, const char *name)
{
    const char *params[] = {name};
    api_call(r, SQL_GET_ACTION, 1, params, NULL);
}

void action_templates_delete(struct request *r, const char *name)
{
    const char *params[] = {name, r->actor};
    api_call(r, SQL_DELETE_ACTION, 2, params, NULL);
}

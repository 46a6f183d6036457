/*
 * schedules: the /schedules endpoints (cron schedules that create a batch at
 * every slot). A handler checks its input, makes one call to a database
 * function (sql/functions/schedules.sql) and answers with its result. The
 * schedule's template is checked here with the validator of POST /tasks
 * (problems under "tasks..."), the cron expression and the time zone by the
 * database (tr_schedule_problems: the expression parser and the time-zone
 * data live there), and every problem is answered together.
 *
 * A schedule is named in paths by its id or its name; the worker fires
 * them (worker/loop.c).
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uuid/uuid.h>

#include "api.h"
#include "handlers.h"
#include "jsonbody.h"
#include "log.h"
#include "reply.h"
#include "validate.h"

static const char SQL_PROBLEMS[] = "SELECT tr_schedule_problems($1, $2)::text";
static const char SQL_CREATE[] =
    "SELECT code, body FROM tr_create_schedule($1::uuid, $2, $3, $4, $5::jsonb, $6, $7,"
    " $8::boolean, $9, $10)";
static const char SQL_LIST[] = "SELECT code, body FROM tr_list_schedules($1::bigint, $2::bigint)";
static const char SQL_GET[] = "SELECT code, body FROM tr_get_schedule($1)";
static const char SQL_PATCH[] =
    "SELECT code, body FROM tr_patch_schedule($1, $2, $3, $4::jsonb, $5, $6, $7::boolean, $8)";
static const char SQL_DELETE[] = "SELECT code, body FROM tr_delete_schedule($1, $2)";
static const char SQL_PAUSE[] = "SELECT code, body FROM tr_pause_schedule($1, $2::boolean, $3)";
static const char SQL_TEMPLATE[] = "SELECT id, template::text FROM tr_schedule_template($1)";
static const char SQL_TRIGGER[] =
    "SELECT code, body, batch_id FROM tr_trigger_schedule($1, $2::uuid, $3::jsonb, $4)";
static const char SQL_HISTORY[] =
    "SELECT code, body FROM tr_schedule_history($1, $2::bigint, $3::bigint)";

enum { NAME_MAX_CHARS = 255, CRON_MAX = 255, TZ_MAX = 255 };

static const char *const OVERLAPS[] = {"skip", "allow", "cancel_previous", NULL};
static const char *const CATCHUPS[] = {"none", "latest", "all", NULL};

static const char *json_plain(json_object *o)
{
    return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

/* A schedule's fields as read from a body; NULL: not given. */
struct schedule_input {
    const char *name, *cron, *timezone, *overlap, *catchup, *paused;
    json_object *tasks; /* borrowed from the body */
};

/* The canonical spelling of s among names (any letter case), or NULL. */
static const char *enum_value(const char *const *names, const char *s)
{
    for (size_t i = 0; names[i]; i++)
        if (strcasecmp(names[i], s) == 0)
            return names[i];
    return NULL;
}

/* Field key of body as a string of 1..max bytes (valid UTF-8), or NULL when
 * absent; a problem otherwise. */
static const char *string_field(json_object *body, const char *key, size_t max,
                                struct verr_list *errs)
{
    json_object *v;
    if (!json_object_object_get_ex(body, key, &v))
        return NULL;
    const char *s = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
    size_t n = s ? strlen(s) : 0;
    if (!s || n == 0 || n > max || n != (size_t)json_object_get_string_len(v) ||
        !validate_is_utf8(s, n)) {
        verr_add(errs, key, "must be a string of 1 to %zu characters", max);
        return NULL;
    }
    return s;
}

/* Checks the template (the "tasks" of the body) as POST /tasks would, with
 * its problems under "tasks". */
static void check_tasks(struct request *r, json_object *tasks, struct verr_list *errs)
{
    struct verr_list inner;
    verr_list_init(&inner);
    json_object *normalized = NULL;
    struct validate_limits lim = {.max_tasks = r->cfg->max_batch};
    if (validate_batch(tasks, &lim, &normalized, &inner) < 0) {
        for (size_t i = 0; i < inner.n; i++) {
            char *field = xasprintf("tasks%s", inner.items[i].field);
            verr_add(errs, field, "%s", inner.items[i].message);
            free(field);
        }
    }
    json_object_put(normalized);
    verr_list_cleanup(&inner);
}

/* Reads and checks the fields of body; creating: name, cron and tasks are
 * required, else name may not be given. */
static void read_input(struct request *r, json_object *body, bool creating,
                       struct schedule_input *in, struct verr_list *errs)
{
    memset(in, 0, sizeof *in);
    if (!json_object_is_type(body, json_type_object)) {
        verr_add(errs, "", "must be a JSON object");
        return;
    }
    json_object *v;
    if (creating) {
        in->name = string_field(body, "name", NAME_MAX_CHARS, errs);
        if (!json_object_object_get_ex(body, "name", &v))
            verr_add(errs, "name", "is required");
        else if (in->name && (validate_is_uuid(in->name) || strchr(in->name, '/')))
            verr_add(errs, "name", "must not be a UUID nor hold \"/\" (it names the schedule "
                                   "in paths)");
    } else if (json_object_object_get_ex(body, "name", &v)) {
        verr_add(errs, "name", "cannot be changed");
    }
    in->cron = string_field(body, "cron", CRON_MAX, errs);
    if (creating && !json_object_object_get_ex(body, "cron", &v))
        verr_add(errs, "cron", "is required");
    in->timezone = string_field(body, "timezone", TZ_MAX, errs);
    const char *s = string_field(body, "overlap", 64, errs);
    if (s && !(in->overlap = enum_value(OVERLAPS, s)))
        verr_add(errs, "overlap", "must be skip, allow or cancel_previous");
    s = string_field(body, "catchup", 64, errs);
    if (s && !(in->catchup = enum_value(CATCHUPS, s)))
        verr_add(errs, "catchup", "must be none, latest or all");
    if (json_object_object_get_ex(body, "paused", &v)) {
        if (json_object_is_type(v, json_type_boolean))
            in->paused = json_object_get_boolean(v) ? "true" : "false";
        else
            verr_add(errs, "paused", "must be true or false");
    }
    if (json_object_object_get_ex(body, "tasks", &v)) {
        in->tasks = v;
        check_tasks(r, v, errs);
    } else if (creating) {
        verr_add(errs, "tasks", "is required");
    }
}

/* Adds the database's problems with the cron expression and time zone
 * (either may be NULL) to errs. -1 when the database did not answer
 * (answered here). */
static int check_cron_or_reply(struct request *r, const char *cron, const char *tz,
                               struct verr_list *errs)
{
    if (!cron && !tz)
        return 0;
    const char *params[] = {cron, tz};
    PGresult *res;
    struct db_error err;
    if (db_query(r->db, SQL_PROBLEMS, 2, params, &res, &err) < 0)
        return reply_db_error(r, &err);
    json_object *list = json_tokener_parse(PQgetvalue(res, 0, 0));
    for (size_t i = 0; list && i < json_object_array_length(list); i++) {
        json_object *p = json_object_array_get_idx(list, i), *f = NULL, *m = NULL;
        json_object_object_get_ex(p, "field", &f);
        json_object_object_get_ex(p, "message", &m);
        verr_add(errs, json_object_get_string(f), "%s", json_object_get_string(m));
    }
    json_object_put(list);
    PQclear(res);
    return 0;
}

/* ---------------------------------------------------------------- create, change */

void schedules_create(struct request *r, const char *unused)
{
    (void)unused;
    json_object *body = NULL;
    struct verr_list errs;
    verr_list_init(&errs);
    struct schedule_input in;
    if (request_json_body_or_reply(r, &body) < 0)
        goto out;
    read_input(r, body, true, &in, &errs);
    if (check_cron_or_reply(r, in.cron, in.timezone ? in.timezone : "UTC", &errs) < 0)
        goto out;
    if (errs.n > 0) {
        reply_invalid(r, "invalid schedule", &errs);
        goto out;
    }
    uuid_t u;
    char id[37];
    uuid_generate_random(u);
    uuid_unparse_lower(u, id);
    const char *params[] = {id,
                            in.name,
                            in.cron,
                            in.timezone ? in.timezone : "UTC",
                            json_plain(in.tasks),
                            in.overlap ? in.overlap : "skip",
                            in.catchup ? in.catchup : "latest",
                            in.paused ? in.paused : "false",
                            r->requester,
                            r->actor};
    api_call(r, SQL_CREATE, 10, params, NULL);
out:
    json_object_put(body);
    verr_list_cleanup(&errs);
}

void schedules_patch(struct request *r, const char *key)
{
    json_object *body = NULL;
    struct verr_list errs;
    verr_list_init(&errs);
    struct schedule_input in;
    if (request_json_body_or_reply(r, &body) < 0)
        goto out;
    read_input(r, body, false, &in, &errs);
    if (check_cron_or_reply(r, in.cron, in.timezone, &errs) < 0)
        goto out;
    if (errs.n > 0) {
        reply_invalid(r, "invalid schedule", &errs);
        goto out;
    }
    const char *params[] = {key,        in.cron,    in.timezone, in.tasks ? json_plain(in.tasks) : NULL,
                            in.overlap, in.catchup, in.paused,   r->actor};
    api_call(r, SQL_PATCH, 8, params, NULL);
out:
    json_object_put(body);
    verr_list_cleanup(&errs);
}

/* ---------------------------------------------------------------- read */

void schedules_list(struct request *r, const char *unused)
{
    (void)unused;
    api_call_paged(r, SQL_LIST, NULL);
}

void schedules_get(struct request *r, const char *key)
{
    const char *params[] = {key};
    api_call(r, SQL_GET, 1, params, NULL);
}

void schedules_history(struct request *r, const char *key)
{
    api_call_paged(r, SQL_HISTORY, key);
}

/* ---------------------------------------------------------------- actions */

void schedules_delete(struct request *r, const char *key)
{
    const char *params[] = {key, r->actor};
    api_call(r, SQL_DELETE, 2, params, NULL);
}

void schedules_pause(struct request *r, const char *key)
{
    const char *params[] = {key, "true", r->actor};
    api_call(r, SQL_PAUSE, 3, params, NULL);
}

void schedules_resume(struct request *r, const char *key)
{
    const char *params[] = {key, "false", r->actor};
    api_call(r, SQL_PAUSE, 3, params, NULL);
}

/* Fires once now: the template is validated again (new task ids), then the
 * batch is made as a firing makes it. A template that no longer passes is
 * 409 with its problems. */
void schedules_trigger(struct request *r, const char *key)
{
    PGresult *res = NULL;
    json_object *tasks = NULL, *normalized = NULL;
    struct verr_list errs;
    verr_list_init(&errs);
    struct db_error err;
    const char *params[] = {key};
    if (db_query(r->db, SQL_TEMPLATE, 1, params, &res, &err) < 0) {
        reply_db_error(r, &err);
        goto out;
    }
    char why[128];
    const char *text = PQgetvalue(res, 0, 1);
    struct validate_limits lim = {.max_tasks = r->cfg->max_batch};
    if (jsonbody_parse(text, strlen(text), &tasks, why, sizeof why) < 0 ||
        validate_batch(tasks, &lim, &normalized, &errs) < 0) {
        reply_error(r, 409, "the schedule's tasks are no longer valid", verr_list_to_json(&errs));
        goto out;
    }
    uuid_t u;
    char batch_id[37];
    uuid_generate_random(u);
    uuid_unparse_lower(u, batch_id);
    const char *trigger[] = {key, batch_id, json_plain(normalized), r->actor};
    PQclear(res);
    res = NULL;
    if (db_query(r->db, SQL_TRIGGER, 4, trigger, &res, &err) < 0) {
        reply_db_error(r, &err);
        goto out;
    }
    char header[96];
    snprintf(header, sizeof header, "X-Batch-ID: %s\r\n", PQgetvalue(res, 0, 2));
    log_set_context("req=%s batch=%s requester=%s", r->request_id, PQgetvalue(res, 0, 2),
                    r->requester);
    reply_json(r, atoi(PQgetvalue(res, 0, 0)), header, PQgetvalue(res, 0, 1));
out:
    PQclear(res);
    json_object_put(tasks);
    json_object_put(normalized);
    verr_list_cleanup(&errs);
}

/*
 * router: the route table of the API, with the compatibility paths of the
 * original service (/task = /tasks, PATCH /task/pause/{id}, GET /dag/{id}).
 * docs/openapi.json describes every route here (t-openapi checks both ways).
 */
#include "router.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "handlers.h"
#include "log.h"
#include "reply.h"
#include "urlquery.h"
#include "validate.h"

typedef void (*handler_fn)(struct request *r, const char *id);

/* A pattern may hold one parameter segment: ":id" stands for a UUID, ":n"
 * for a positive integer (a dead letter's delivery id), ":key" for a
 * schedule's id or name, or a template's name (any segment of at most KEY_MAX
 * bytes), ":group" for a group's name (URL-encoded: an encoded '/' stays
 * inside the segment). subject names what
 * the parameter identifies in the log lines of the request ("task=..."). */
struct route {
    const char *method;
    const char *pattern;
    handler_fn handler;
    const char *subject;
};

static const struct route routes[] = {
    {"POST", "/tasks", tasks_create, NULL},
    {"GET", "/tasks", tasks_list, NULL},
    {"GET", "/tasks/:id", tasks_get, "task"},
    {"PATCH", "/tasks/:id", tasks_patch, "task"},
    {"PUT", "/tasks/:id", tasks_count, "task"},
    {"DELETE", "/tasks/:id", tasks_cancel, "task"},
    {"POST", "/tasks/:id/pause", tasks_pause, "task"},
    {"POST", "/tasks/:id/resume", tasks_resume, "task"},
    {"POST", "/tasks/:id/retry", tasks_retry, "task"},
    {"GET", "/tasks/:id/history", tasks_history, "task"},
    {"GET", "/tasks/:id/blockers", tasks_blockers, "task"},
    {"POST", "/tasks/:id/delete", tasks_soft_delete, "task"},
    {"POST", "/tasks/:id/restore", tasks_restore, "task"},
    {"POST", "/task", tasks_create, NULL},
    {"GET", "/task", tasks_list, NULL},
    {"GET", "/task/:id", tasks_get, "task"},
    {"PATCH", "/task/:id", tasks_patch, "task"},
    {"PUT", "/task/:id", tasks_count, "task"},
    {"DELETE", "/task/:id", tasks_cancel, "task"},
    {"PATCH", "/task/pause/:id", tasks_pause, "task"},
    {"GET", "/batches", batches_list, NULL},
    {"GET", "/batches/:id", batches_get, "batch"},
    {"GET", "/batches/:id/dag", batches_dag, "batch"},
    {"GET", "/dag/:id", batches_dag, "batch"},
    {"DELETE", "/batches/:id", batches_stop, "batch"},
    {"POST", "/batches/:id/pause", batches_pause, "batch"},
    {"POST", "/batches/:id/resume", batches_resume, "batch"},
    {"GET", "/groups", groups_list, NULL},
    {"GET", "/groups/:group", groups_get, "group"},
    {"DELETE", "/groups/:group", groups_cancel, "group"},
    {"POST", "/groups/:group/pause", groups_pause, "group"},
    {"POST", "/groups/:group/resume", groups_resume, "group"},
    {"POST", "/batches/:id/delete", batches_soft_delete, "batch"},
    {"POST", "/batches/:id/restore", batches_restore, "batch"},
    {"GET", "/health", health_check, NULL},
    {"GET", "/ready", health_ready, NULL},
    {"GET", "/metrics", metrics_get, NULL},
    {"GET", "/openapi.json", openapi_get, NULL},
    {"GET", "/dead-letters", dead_letters_list, NULL},
    {"POST", "/dead-letters/:n/replay", dead_letters_replay, "delivery"},
    {"POST", "/schedules", schedules_create, NULL},
    {"GET", "/schedules", schedules_list, NULL},
    {"GET", "/schedules/:key", schedules_get, "schedule"},
    {"PATCH", "/schedules/:key", schedules_patch, "schedule"},
    {"DELETE", "/schedules/:key", schedules_delete, "schedule"},
    {"POST", "/schedules/:key/pause", schedules_pause, "schedule"},
    {"POST", "/schedules/:key/resume", schedules_resume, "schedule"},
    {"POST", "/schedules/:key/trigger", schedules_trigger, "schedule"},
    {"GET", "/schedules/:key/history", schedules_history, "schedule"},
    {"GET", "/rules", rules_list, NULL},
    {"PUT", "/rules/:key", rules_put, "rule"},
    {"GET", "/rules/:key", rules_get, "rule"},
    {"DELETE", "/rules/:key", rules_delete, "rule"},
    {"GET", "/action-templates", action_templates_list, NULL},
    {"PUT", "/action-templates/:key", action_templates_put, "action_template"},
    {"GET", "/action-templates/:key", action_templates_get, "action_template"},
    {"DELETE", "/action-templates/:key", action_templates_delete, "action_template"},
};
/* ID_LEN: the buffer of a path parameter; a schedule's name is at most 255
 * characters of up to 4 bytes. */
enum { N_ROUTES = sizeof routes / sizeof routes[0], ID_LEN = 1024, KEY_MAX = 1020 };

/* Whether path matches pattern; the parameter segment is copied into id. */
static bool route_matches(const char *pattern, const char *path, char *id, size_t idsize)
{
    const char *p = pattern, *s = path;
    id[0] = '\0';
    while (*p && *s) {
        if (*p == ':') {
            size_t n = strcspn(s, "/");
            snprintf(id, idsize, "%.*s", (int)(n < idsize - 1 ? n : idsize - 1), s);
            if (n >= idsize)
                id[0] = '\x01'; /* too long to be an id: still this route, bad id */
            p += strcspn(p, "/");
            s += n;
            continue;
        }
        if (*p != *s)
            return false;
        p++;
        s++;
    }
    /* A trailing slash names the same resource. */
    return *p == '\0' && (*s == '\0' || (s[0] == '/' && s[1] == '\0'));
}

/* Whether s is a positive decimal integer that fits a bigint. */
static bool is_positive_integer(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 19 || s[0] == '0' || strspn(s, "0123456789") != n)
        return false;
    return n < 19 || strcmp(s, "9223372036854775807") <= 0;
}

/* HEAD is served wherever GET is (RFC 9110): the GET handler answers, and
 * reply.c leaves the body out. */
static bool method_served_by(const char *route_method, const char *method)
{
    return strcmp(route_method, method) == 0 ||
           (strcmp(method, "HEAD") == 0 && strcmp(route_method, "GET") == 0);
}

/* The group name of path segment id, decoded in place. nginx hands over a
 * decoded path, except one holding an encoded '/' (fcgi/request.c): that
 * one is routed as sent, and its segment decoded here ('+' stays '+'). A
 * name must be 1..255 characters of UTF-8 (as "group" in a task). */
static int group_name_or_reply(struct request *r, char *id, size_t idsize)
{
    if (id[0] == '\x01' || strlen(id) > KEY_MAX) {
        reply_error(r, 400, "malformed group name in path", NULL);
        return -1;
    }
    if (r->path_buf) {
        struct strbuf q;
        strbuf_init(&q);
        strbuf_adds(&q, "g=");
        for (const char *c = id; *c; c++) {
            if (*c == '+')
                strbuf_adds(&q, "%2B");
            else
                strbuf_addf(&q, "%c", *c);
        }
        char *name = NULL;
        int rc = urlquery_value(q.data, "g", &name);
        strbuf_cleanup(&q);
        if (rc < 0 || !name) {
            reply_error(r, 400, "malformed group name in path", NULL);
            return -1;
        }
        snprintf(id, idsize, "%s", name);
        free(name);
    }
    size_t n = strlen(id), chars = 0;
    for (size_t i = 0; i < n; i++) /* code points: bytes that do not continue one */
        chars += ((unsigned char)id[i] & 0xC0) != 0x80;
    if (n == 0 || !validate_is_utf8(id, n) || chars > 255) {
        reply_error(r, 400, "malformed group name in path: 1 to 255 characters", NULL);
        return -1;
    }
    return 0;
}

static const struct route *route_find(const struct request *r, char *id, size_t idsize,
                                      bool *path_known)
{
    *path_known = false;
    for (size_t i = 0; i < N_ROUTES; i++) {
        if (!route_matches(routes[i].pattern, r->path, id, idsize))
            continue;
        *path_known = true;
        if (method_served_by(routes[i].method, r->method))
            return &routes[i];
    }
    return NULL;
}

const char *router_route_name(const struct request *r)
{
    char id[ID_LEN + 2];
    bool known;
    const struct route *rt = route_find(r, id, sizeof id, &known);
    if (rt)
        return rt->pattern;
    for (size_t i = 0; known && i < N_ROUTES; i++) /* a known path, another method: 405 */
        if (route_matches(routes[i].pattern, r->path, id, sizeof id))
            return routes[i].pattern;
    return "unknown";
}

/* Adds method to the Allow list being built, once. */
static void allow_add(struct strbuf *allow, const char *method)
{
    if (allow->data) {
        for (const char *p = allow->data + strlen("Allow: "); *p;) {
            size_t n = strcspn(p, ",");
            if (n == strlen(method) && strncmp(p, method, n) == 0)
                return;
            p += n;
            p += strspn(p, ", ");
        }
    }
    strbuf_addf(allow, "%s%s", allow->len ? ", " : "Allow: ", method);
}

static void reply_method_not_allowed(struct request *r)
{
    struct strbuf allow;
    strbuf_init(&allow);
    char id[ID_LEN + 2];
    for (size_t i = 0; i < N_ROUTES; i++) {
        if (!route_matches(routes[i].pattern, r->path, id, sizeof id))
            continue;
        allow_add(&allow, routes[i].method);
        if (strcmp(routes[i].method, "GET") == 0)
            allow_add(&allow, "HEAD");
    }
    strbuf_adds(&allow, "\r\n");
    json_object *o = json_object_new_object();
    json_object_object_add(o, "error", json_object_new_string("method not allowed"));
    json_object_object_add(o, "details", json_object_new_array());
    json_object_object_add(o, "fields", json_object_new_array());
    reply_json(r, 405, allow.data, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    strbuf_cleanup(&allow);
}

void router_dispatch(struct request *r)
{
    char id[ID_LEN + 2];
    bool known;
    const struct route *rt = route_find(r, id, sizeof id, &known);
    if (!rt) {
        if (known)
            reply_method_not_allowed(r);
        else
            reply_error(r, 404, "no such route", NULL);
        return;
    }
    bool is_uuid = strstr(rt->pattern, ":id") != NULL;
    bool is_number = strstr(rt->pattern, ":n") != NULL;
    bool is_key = strstr(rt->pattern, ":key") != NULL;
    bool is_group = strstr(rt->pattern, ":group") != NULL;
    bool has_id = is_uuid || is_number || is_key || is_group;
    if (request_check_headers_or_reply(r) < 0 ||
        auth_check_or_reply(r, rt->pattern, has_id ? id : NULL) < 0)
        return;
    if (is_uuid) {
        if (!validate_is_uuid(id)) {
            reply_error(r, 400, "malformed id in path: expected a UUID", NULL);
            return;
        }
        for (char *c = id; *c; c++)
            *c = (char)tolower((unsigned char)*c);
    }
    if (is_key && (id[0] == '\0' || id[0] == '\x01' || strlen(id) > KEY_MAX ||
                   !validate_is_utf8(id, strlen(id)))) {
        reply_error(r, 400, "malformed schedule id or name in path", NULL);
        return;
    }
    if (is_key && validate_is_uuid(id))
        for (char *c = id; *c; c++)
            *c = (char)tolower((unsigned char)*c);
    if (is_group && group_name_or_reply(r, id, sizeof id) < 0)
        return;
    if (is_number && !is_positive_integer(id)) {
        reply_error(r, 400, "malformed id in path: expected a positive integer", NULL);
        return;
    }
    if (has_id && rt->subject) /* every line about it says which */
        log_set_context("req=%s %s=%s requester=%s", r->request_id, rt->subject, id,
                        r->requester);
    rt->handler(r, has_id ? id : NULL);
}

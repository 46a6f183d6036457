/*
 * router: the route table of the API, with the compatibility paths of the
 * original service (/task = /tasks, PATCH /task/pause/{id}).
 */
#include "router.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "handlers.h"
#include "reply.h"
#include "validate.h"

typedef void (*handler_fn)(struct request *r, const char *id);

struct route {
    const char *method;
    const char *pattern; /* ":id" stands for one UUID segment */
    handler_fn handler;
};

static const struct route routes[] = {
    {"POST", "/tasks", tasks_create},
    {"GET", "/tasks", tasks_list},
    {"GET", "/tasks/:id", tasks_get},
    {"PATCH", "/tasks/:id", tasks_patch},
    {"PUT", "/tasks/:id", tasks_count},
    {"DELETE", "/tasks/:id", tasks_cancel},
    {"POST", "/tasks/:id/pause", tasks_pause},
    {"POST", "/tasks/:id/resume", tasks_resume},
    {"POST", "/task", tasks_create},
    {"GET", "/task", tasks_list},
    {"GET", "/task/:id", tasks_get},
    {"PATCH", "/task/:id", tasks_patch},
    {"PUT", "/task/:id", tasks_count},
    {"DELETE", "/task/:id", tasks_cancel},
    {"PATCH", "/task/pause/:id", tasks_pause},
    {"GET", "/batches/:id", batches_get},
    {"DELETE", "/batches/:id", batches_stop},
    {"GET", "/health", health_check},
    {"GET", "/ready", health_ready},
};
enum { N_ROUTES = sizeof routes / sizeof routes[0], ID_LEN = 36 };

/* Whether path matches pattern; the ":id" segment is copied into id. */
static bool route_matches(const char *pattern, const char *path, char *id, size_t idsize)
{
    const char *p = pattern, *s = path;
    id[0] = '\0';
    while (*p && *s) {
        if (strncmp(p, ":id", 3) == 0) {
            size_t n = strcspn(s, "/");
            snprintf(id, idsize, "%.*s", (int)(n < idsize - 1 ? n : idsize - 1), s);
            if (n >= idsize)
                id[0] = '\x01'; /* too long to be an id: still this route, bad id */
            p += 3;
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

static const struct route *route_find(const struct request *r, char *id, size_t idsize,
                                      bool *path_known)
{
    *path_known = false;
    for (size_t i = 0; i < N_ROUTES; i++) {
        if (!route_matches(routes[i].pattern, r->path, id, idsize))
            continue;
        *path_known = true;
        if (strcmp(routes[i].method, r->method) == 0)
            return &routes[i];
    }
    return NULL;
}

const char *router_route_name(const struct request *r)
{
    char id[ID_LEN + 2];
    bool known;
    const struct route *rt = route_find(r, id, sizeof id, &known);
    return rt ? rt->pattern : "unknown";
}

static void reply_method_not_allowed(struct request *r)
{
    struct strbuf allow;
    strbuf_init(&allow);
    char id[ID_LEN + 2];
    for (size_t i = 0; i < N_ROUTES; i++) {
        if (route_matches(routes[i].pattern, r->path, id, sizeof id) &&
            !(allow.data && strstr(allow.data, routes[i].method)))
            strbuf_addf(&allow, "%s%s", allow.len ? ", " : "Allow: ", routes[i].method);
    }
    strbuf_adds(&allow, "\r\n");
    json_object *o = json_object_new_object();
    json_object_object_add(o, "error", json_object_new_string("method not allowed"));
    json_object_object_add(o, "details", json_object_new_array());
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
    bool has_id = strstr(rt->pattern, ":id") != NULL;
    if (has_id) {
        if (!validate_is_uuid(id)) {
            reply_error(r, 400, "malformed id in path: expected a UUID", NULL);
            return;
        }
        for (char *c = id; *c; c++)
            *c = (char)tolower((unsigned char)*c);
    }
    rt->handler(r, has_id ? id : NULL);
}

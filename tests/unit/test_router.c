/*
 * Unit tests of fcgi/router.c: which route a method and path reach (the
 * pattern the logs and metrics name), table-driven.
 */
#include <string.h>

#include "check.h"
#include "router.h"

#define ID "0b7c6a3e-2f43-4c1e-9d7a-5e8f1a2b3c4d"

static const char *route(const char *method, const char *path)
{
    struct request r;
    memset(&r, 0, sizeof r);
    r.method = method;
    r.path = path;
    r.query = "";
    return router_route_name(&r);
}

int main(void)
{
    static const struct {
        const char *method, *path, *want;
    } cases[] = {
        {"POST", "/tasks", "/tasks"},
        {"GET", "/tasks", "/tasks"},
        {"GET", "/tasks/", "/tasks"}, /* a trailing slash names the same resource */
        {"HEAD", "/tasks", "/tasks"}, /* HEAD wherever GET is */
        {"GET", "/tasks/" ID, "/tasks/:id"},
        {"PATCH", "/tasks/" ID, "/tasks/:id"},
        {"PUT", "/tasks/" ID, "/tasks/:id"},
        {"DELETE", "/tasks/" ID "/", "/tasks/:id"},
        {"POST", "/tasks/" ID "/pause", "/tasks/:id/pause"},
        {"POST", "/tasks/" ID "/resume", "/tasks/:id/resume"},
        {"POST", "/tasks/" ID "/retry", "/tasks/:id/retry"},
        {"GET", "/tasks/" ID "/history", "/tasks/:id/history"},
        {"GET", "/tasks/" ID "/blockers", "/tasks/:id/blockers"},
        /* The original's paths. */
        {"POST", "/task", "/task"},
        {"GET", "/task/" ID, "/task/:id"},
        {"PATCH", "/task/pause/" ID, "/task/pause/:id"},
        {"GET", "/batches/" ID, "/batches/:id"},
        {"DELETE", "/batches/" ID, "/batches/:id"},
        {"POST", "/dead-letters/12/replay", "/dead-letters/:n/replay"},
        {"GET", "/health", "/health"},
        {"GET", "/metrics", "/metrics"},
        /* A known path with another method: still that route (answered 405). */
        {"DELETE", "/health", "/health"},
        {"GET", "/tasks/" ID "/pause", "/tasks/:id/pause"},
        {"POST", "/task/pause/" ID, "/task/pause/:id"},
        /* Unknown paths. */
        {"GET", "/", "unknown"},
        {"GET", "/nope", "unknown"},
        {"GET", "/tasks/" ID "/nope", "unknown"},
        {"GET", "/tasks/" ID "/history/x", "unknown"},
        {"GET", "/taskss", "unknown"},
        /* An empty id still picks the route (answered 400: malformed id). */
        {"GET", "/tasks//history", "/tasks/:id/history"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *got = route(cases[i].method, cases[i].path);
        if (!CHECK_STR(got, cases[i].want))
            fprintf(stderr, "    for %s %s\n", cases[i].method, cases[i].path);
    }
    return check_exit();
}

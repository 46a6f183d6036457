/*
 * router: the route table. Maps method and path to a handler, answering 404
 * for an unknown path, 405 (with Allow) for a known path with another method,
 * and 400 for a malformed id in the path.
 */
#ifndef TR_ROUTER_H
#define TR_ROUTER_H

#include "request.h"

/* Finds the handler of r and runs it; every outcome answers r. */
void router_dispatch(struct request *r);

/* The route pattern that matched r ("/tasks/:id"), for logs and metrics:
 * the pattern of its path when only the method is wrong, "unknown" when no
 * pattern matches its path. */
const char *router_route_name(const struct request *r);

#endif

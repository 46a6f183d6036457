/*
 * auth: who may call the API (docs/security.md).
 *
 * With no API token configured the API is open and the actor of a request
 * is its X-Requester. Otherwise every route but /health and /ready needs
 * `Authorization: Bearer <token>` (401 without or with an unknown token, 403
 * when the token's scope does not allow the method; a `read` token may only
 * GET), and the actor is the token's name. A PATCH or PUT on /tasks/{id}
 * (or /task/{id}) may instead carry the task's callback token as ?token=
 * (the handle the worker gave the executor): valid only for that task and
 * its current start attempt; its actor is "executor".
 */
#ifndef TR_AUTH_H
#define TR_AUTH_H

#include "config.h"
#include "request.h"

/* Loads the API tokens of cfg (TASKRUNNER_API_TOKENS and the file of
 * TASKRUNNER_API_TOKENS_FILE) once, before the responder threads start; cfg
 * must outlive every request. Returns -1 after logging which setting is bad. */
int auth_init(const struct config *cfg) WARN_UNUSED;

/* Checks the credentials of r for the route pattern ("/tasks/:id") with path
 * id (NULL when none). Sets r->actor. On refusal answers 401/403 (or 503
 * when the task's attempt cannot be read) and returns -1. */
int auth_check_or_reply(struct request *r, const char *pattern, const char *id) WARN_UNUSED;

#endif

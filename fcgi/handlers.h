/*
 * handlers: one function per endpoint. id is the lower-cased UUID from the
 * path (the decimal delivery id for /dead-letters/{id}), or NULL for routes
 * without one. Each answers the request itself.
 */
#ifndef TR_HANDLERS_H
#define TR_HANDLERS_H

#include "request.h"

void tasks_create(struct request *r, const char *id);
void tasks_list(struct request *r, const char *id);
void tasks_get(struct request *r, const char *id);
void tasks_patch(struct request *r, const char *id);
void tasks_count(struct request *r, const char *id);
void tasks_cancel(struct request *r, const char *id);
void tasks_pause(struct request *r, const char *id);
void tasks_resume(struct request *r, const char *id);
void tasks_retry(struct request *r, const char *id);
void tasks_history(struct request *r, const char *id);
void tasks_blockers(struct request *r, const char *id);
void tasks_soft_delete(struct request *r, const char *id);
void tasks_restore(struct request *r, const char *id);
void batches_list(struct request *r, const char *id);
void batches_get(struct request *r, const char *id);
void batches_dag(struct request *r, const char *id);
void batches_stop(struct request *r, const char *id);
void batches_pause(struct request *r, const char *id);
void batches_resume(struct request *r, const char *id);
void groups_list(struct request *r, const char *id);
void groups_get(struct request *r, const char *id);
void groups_cancel(struct request *r, const char *id);
void groups_pause(struct request *r, const char *id);
void groups_resume(struct request *r, const char *id);
void batches_soft_delete(struct request *r, const char *id);
void batches_restore(struct request *r, const char *id);
void health_check(struct request *r, const char *id);
void health_ready(struct request *r, const char *id);
void metrics_get(struct request *r, const char *id);
void openapi_get(struct request *r, const char *id);
void dead_letters_list(struct request *r, const char *id);
void dead_letters_replay(struct request *r, const char *id);
/* The schedule's id or name (":key" in the route table) as id. */
void schedules_create(struct request *r, const char *id);
void schedules_list(struct request *r, const char *id);
void schedules_get(struct request *r, const char *id);
void schedules_patch(struct request *r, const char *id);
void schedules_delete(struct request *r, const char *id);
void schedules_pause(struct request *r, const char *id);
void schedules_resume(struct request *r, const char *id);
void schedules_trigger(struct request *r, const char *id);
void schedules_history(struct request *r, const char *id);
/* A template's name (":key") as id. */
void rules_put(struct request *r, const char *id);
void rules_list(struct request *r, const char *id);
void rules_get(struct request *r, const char *id);
void rules_delete(struct request *r, const char *id);
void action_templates_put(struct request *r, const char *id);
void action_templates_list(struct request *r, const char *id);
void action_templates_get(struct request *r, const char *id);
void action_templates_delete(struct request *r, const char *id);

#endif

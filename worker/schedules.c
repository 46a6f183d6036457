/*
 * schedules: firing due cron schedules (see schedules.h). Any number of
 * workers may run this at once: tr_fire_schedule takes the schedule's row
 * with SKIP LOCKED and only for the slot read, so a slot another worker
 * fired (or is firing) is left alone ("gone"), and the unique slot of
 * batches refuses a second batch in any case.
 */
#include "schedules.h"

#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>
#include <uuid/uuid.h>

#include "jsonbody.h"
#include "log.h"
#include "queries.h"
#include "validate.h"

enum { DUE_LIMIT = 32 };

/* The template of a due schedule, validated as POST /tasks would: *tasks
 * the normalized batch (new ids), or *problems the reasons (both the
 * caller's, as JSON text). */
static void check_template(const struct config *cfg, const char *text, char **tasks,
                           char **problems)
{
    json_object *body = NULL, *normalized = NULL;
    struct verr_list errs;
    verr_list_init(&errs);
    char why[160];
    struct validate_limits lim = {.max_tasks = cfg->max_batch};
    *tasks = *problems = NULL;
    if (jsonbody_parse(text, strlen(text), &body, why, sizeof why) < 0)
        verr_add(&errs, "tasks", "%s", why);
    else if (validate_batch(body, &lim, &normalized, &errs) == 0)
        *tasks = xstrdup(json_object_to_json_string_ext(normalized, JSON_C_TO_STRING_PLAIN));
    if (!*tasks) {
        json_object *list = verr_list_to_json(&errs);
        /* The paths as the API gives them: under "tasks". */
        for (size_t i = 0; i < json_object_array_length(list); i++) {
            json_object *e = json_object_array_get_idx(list, i), *f = NULL;
            json_object_object_get_ex(e, "field", &f);
            const char *field = json_object_get_string(f);
            if (field && strncmp(field, "tasks", 5) != 0) {
                char *p = xasprintf("tasks%s", field);
                json_object_object_add(e, "field", json_object_new_string(p));
                free(p);
            }
        }
        *problems = xstrdup(json_object_to_json_string_ext(list, JSON_C_TO_STRING_PLAIN));
        json_object_put(list);
    }
    json_object_put(body);
    json_object_put(normalized);
    verr_list_cleanup(&errs);
}

int schedules_fire_due(struct db *db, const struct config *cfg, struct metrics *m, bool *again)
{
    PGresult *due = NULL;
    int rc = -1;
    *again = false;
    if (queries_due_schedules(db, DUE_LIMIT, &due) < 0)
        return -1;
    for (int i = 0; i < PQntuples(due); i++) {
        const char *id = PQgetvalue(due, i, 0);
        char *tasks, *problems;
        check_template(cfg, PQgetvalue(due, i, 2), &tasks, &problems);
        uuid_t u;
        char batch_id[37];
        uuid_generate_random(u);
        uuid_unparse_lower(u, batch_id);
        PGresult *res;
        int fired = queries_fire_schedule(db, id, PQgetvalue(due, i, 1), batch_id, tasks,
                                          problems, &res);
        free(tasks);
        free(problems);
        if (fired < 0)
            goto out;
        const char *outcome = PQgetvalue(res, 0, 0);
        if (strcmp(outcome, "gone") != 0) {
            log_set_context("schedule=%s", id);
            if (strcmp(outcome, "fired") == 0)
                log_info("fired slot %s: batch %s", PQgetvalue(due, i, 1), batch_id);
            else if (strcmp(outcome, "failed") == 0)
                log_warn("slot %s: firing failed (see the schedule's history)",
                         PQgetvalue(due, i, 1));
            else
                log_info("slot %s: %s", PQgetvalue(due, i, 1), outcome);
            log_set_context(NULL);
        }
        if (!PQgetisnull(res, 0, 1))
            metrics_observe(m, METRIC_SCHEDULE_DELAY, NULL, metrics_schedule_buckets,
                            metrics_schedule_buckets_n, atof(PQgetvalue(res, 0, 1)) / 1000.0);
        if (PQgetvalue(res, 0, 2)[0] == 't')
            *again = true;
        PQclear(res);
    }
    if (PQntuples(due) == DUE_LIMIT)
        *again = true;
    rc = 0;
out:
    PQclear(due);
    return rc;
}

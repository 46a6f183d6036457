/*
 * fuzz_validate: libFuzzer target for the batch parser and validator. The
 * bytes are a POST /tasks body: parsed as the responders parse it
 * (jsonbody_parse, the code of fcgi/request.c), then validated and
 * normalized (validate_batch) as tasks_create does, and also checked as a
 * registered cancel action (validate_cancel_action, the worker's use).
 *
 * Invariants besides "no crash, no leak, no undefined behaviour": a body
 * that validates yields an array of as many tasks, and the normalized JSON
 * (what goes to PostgreSQL) is itself a body jsonbody_parse accepts.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jsonbody.h"
#include "log.h"
#include "validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    log_init("fuzz_validate", LOG_ERROR);
    return 0;
}

static void check_normalized(json_object *body, json_object *out)
{
    if (!json_object_is_type(out, json_type_array) ||
        json_object_array_length(out) != json_object_array_length(body))
        abort();
    const char *text = json_object_to_json_string_ext(out, JSON_C_TO_STRING_PLAIN |
                                                               JSON_C_TO_STRING_NOSLASHESCAPE);
    json_object *again = NULL;
    char err[200];
    if (jsonbody_parse(text, strlen(text), &again, err, sizeof err) != 0)
        abort(); /* the normalized batch must be valid, storable JSON */
    json_object_put(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_object *body = NULL, *out = NULL, *action = NULL;
    char err[200];
    if (jsonbody_parse((const char *)data, size, &body, err, sizeof err) != 0)
        return 0;

    struct verr_list errs;
    verr_list_init(&errs);
    struct validate_limits lim = {.max_tasks = 10000};
    if (validate_batch(body, &lim, &out, &errs) == 0) {
        if (errs.n != 0)
            abort();
        check_normalized(body, out);
    } else {
        if (out != NULL || errs.n == 0)
            abort(); /* a refusal says why and produces nothing */
        json_object *details = verr_list_to_json(&errs);
        (void)json_object_to_json_string(details);
        json_object_put(details);
    }
    verr_list_cleanup(&errs);

    json_object *first =
        json_object_is_type(body, json_type_array) && json_object_array_length(body) > 0
            ? json_object_array_get_idx(body, 0)
            : body;
    char why[160] = "";
    if (json_object_is_type(first, json_type_object)) {
        if (validate_cancel_action(first, &action, why, sizeof why) == 0)
            (void)json_object_to_json_string(action);
        else if (!why[0])
            abort(); /* a refusal says why */
    }

    json_object_put(action);
    json_object_put(out);
    json_object_put(body);
    return 0;
}

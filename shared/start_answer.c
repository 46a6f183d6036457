/*
 * start_answer: reading the answer to an on_start call (see start_answer.h).
 */
#include "start_answer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonbody.h"
#include "util.h"
#include "validate.h"

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Whether the body means to be an action: '{' first, or an object with
 * "params" to json-c's lenient parser (which takes a comment first). */
static bool looks_like_action(const char *body, size_t len)
{
    size_t i = 0;
    while (i < len && is_space(body[i]))
        i++;
    if (i < len && body[i] == '{')
        return true;
    char *text = xmalloc(len + 1);
    memcpy(text, body, len);
    text[len] = '\0';
    json_object *doc = json_tokener_parse(text);
    bool has_params = doc && json_object_is_type(doc, json_type_object) &&
                      json_object_object_get_ex(doc, "params", NULL);
    json_object_put(doc);
    free(text);
    return has_params;
}

static void refuse(struct start_answer *out, const char *fmt, const char *detail)
{
    out->kind = START_ANSWER_REFUSED;
    snprintf(out->reason, sizeof out->reason, fmt, detail);
}

void start_answer_read(const char *body, size_t len, bool too_large, size_t max_bytes,
                       struct start_answer *out)
{
    memset(out, 0, sizeof *out);
    out->kind = START_ANSWER_NONE;
    if (too_large) {
        char limit[32];
        snprintf(limit, sizeof limit, "%zu", max_bytes);
        refuse(out, "answer longer than %s bytes (TASKRUNNER_MAX_RESPONSE_BYTES): not read, "
                    "no action registered", limit);
        return;
    }
    if (len == 0 || !looks_like_action(body, len))
        return;
    char err[160];
    json_object *doc = NULL, *action = NULL;
    if (jsonbody_parse(body, len, &doc, err, sizeof err) < 0) {
        refuse(out, "answer is not valid JSON: %s", err);
        return;
    }
    if (!json_object_is_type(doc, json_type_object)) {
        refuse(out, "%s", "answer is not a JSON object");
    } else if (!json_object_object_get_ex(doc, "params", NULL)) {
        /* An object without params asks nothing, as before: {"ok": true}. */
    } else if (validate_cancel_action(doc, &action, err, sizeof err) < 0) {
        refuse(out, "not a valid action: %s", err);
    } else {
        out->kind = START_ANSWER_REGISTER;
        out->action = action;
        action = NULL;
    }
    json_object_put(action);
    json_object_put(doc);
}

void start_answer_cleanup(struct start_answer *a)
{
    if (!a)
        return;
    json_object_put(a->action);
    a->action = NULL;
}

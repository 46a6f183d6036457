/*
 * start_answer: what the 2xx answer to an on_start call asks for. A body
 * that is an action object registers that action as a cancel action of the
 * task (API.md, "Webhooks sent by the worker"). The body is read under the
 * same strict JSON rules as a request body (shared/jsonbody.h: no comments,
 * single quotes, trailing bytes, lone surrogates nor \u0000) and the action
 * under the same rules as an on_cancel action of POST /tasks
 * (validate_cancel_action), so that an answer registers exactly what it
 * says or nothing, and says why not.
 *
 * Whether an answer means to register an action: its body is a JSON object
 * with "params" (read leniently, so that a malformed one is still
 * recognised), or anything beginning with '{' that is not strict JSON. Any
 * other body (empty, plain text, an object without "params") asks nothing.
 */
#ifndef TR_START_ANSWER_H
#define TR_START_ANSWER_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

enum start_answer_kind {
    START_ANSWER_NONE,     /* asks nothing */
    START_ANSWER_REGISTER, /* a valid action: action holds it */
    START_ANSWER_REFUSED,  /* meant as an action but refused: reason says why */
};

struct start_answer {
    enum start_answer_kind kind;
    json_object *action; /* REGISTER: the normalized action, with a new id
                            (owned) */
    char reason[256]; /* REFUSED: why, for the history and the log */
};

/* Reads the len bytes of body (body[len] need not be NUL; NULL when len is
 * 0). too_large: the answer was longer than max_bytes and was not read (it
 * may have held an action: refused, with the reason). Fills out; release it
 * with start_answer_cleanup. */
void start_answer_read(const char *body, size_t len, bool too_large, size_t max_bytes,
                       struct start_answer *out);
void start_answer_cleanup(struct start_answer *a);

#endif

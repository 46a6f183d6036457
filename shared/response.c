/*
 * response: rules on webhook answers (see response.h).
 */
#include "response.h"

#include <string.h>

#include "placeholder.h"

const char *response_verdict_name(enum response_verdict v)
{
    switch (v) {
    case RESPONSE_ACCEPT:
        return "accept";
    case RESPONSE_SUCCEED:
        return "succeed";
    case RESPONSE_FAIL:
        return "fail";
    case RESPONSE_RETRY:
        return "retry";
    case RESPONSE_NONE:
        break;
    }
    return "none";
}

int response_parse(const char *text, size_t len, json_object **out)
{
    *out = NULL;
    if (!text || len == 0 || len > (size_t)INT32_MAX)
        return -1;
    json_tokener *tok = json_tokener_new_ex(RESPONSE_DEPTH_MAX);
    if (!tok)
        return -1;
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    json_object *v = json_tokener_parse_ex(tok, text, (int)len);
    enum json_tokener_error e = json_tokener_get_error(tok);
    size_t used = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    /* whitespace may follow the value; nothing else */
    while (e == json_tokener_success && used < len &&
           (text[used] == ' ' || text[used] == '\n' || text[used] == '\r' || text[used] == '\t'))
        used++;
    if (e != json_tokener_success || used != len) {
        json_object_put(v);
        return -1;
    }
    *out = v;
    return 0;
}

/* JSON equality, numbers by value (1 equals 1.0, as jsonb compares). */
static bool same_value(json_object *a, json_object *b)
{
    bool na = json_object_is_type(a, json_type_int) || json_object_is_type(a, json_type_double);
    bool nb = json_object_is_type(b, json_type_int) || json_object_is_type(b, json_type_double);
    if (na && nb) {
        if (json_object_is_type(a, json_type_int) && json_object_is_type(b, json_type_int))
            return json_object_get_int64(a) == json_object_get_int64(b);
        return json_object_get_double(a) == json_object_get_double(b);
    }
    return json_object_equal(a, b) != 0;
}

bool response_cond_holds(json_object *root, json_object *cond)
{
    json_object *path, *x;
    if (!json_object_object_get_ex(cond, "path", &path) ||
        !json_object_is_type(path, json_type_string))
        return false;
    json_object *v = root ? placeholder_walk(root, json_object_get_string(path)) : NULL;
    if (json_object_object_get_ex(cond, "exists", &x))
        return (v != NULL) == (json_object_get_boolean(x) != 0);
    if (json_object_object_get_ex(cond, "equals", &x))
        return v && x && same_value(v, x);
    if (json_object_object_get_ex(cond, "in", &x) && json_object_is_type(x, json_type_array)) {
        for (size_t i = 0; v && i < json_object_array_length(x); i++) {
            json_object *e = json_object_array_get_idx(x, i);
            if (e && same_value(v, e))
                return true;
        }
    }
    return false;
}

static bool status_matches(json_object *list, long status)
{
    for (size_t i = 0; i < json_object_array_length(list); i++) {
        json_object *m = json_object_array_get_idx(list, i);
        if (json_object_is_type(m, json_type_int) && json_object_get_int64(m) == status)
            return true;
        if (json_object_is_type(m, json_type_string)) {
            const char *s = json_object_get_string(m);
            if (s[0] >= '1' && s[0] <= '5' && status / 100 == s[0] - '0')
                return true;
        }
    }
    return false;
}

static enum response_verdict verdict_of(const char *then)
{
    if (strcmp(then, "accept") == 0)
        return RESPONSE_ACCEPT;
    if (strcmp(then, "succeed") == 0)
        return RESPONSE_SUCCEED;
    if (strcmp(then, "fail") == 0)
        return RESPONSE_FAIL;
    if (strcmp(then, "retry") == 0)
        return RESPONSE_RETRY;
    return RESPONSE_NONE;
}

enum response_verdict response_decide(json_object *rules, long status, const char *body,
                                      size_t len, bool whole, int *rule)
{
    json_object *doc = NULL;
    bool parsed = false;
    enum response_verdict verdict = RESPONSE_NONE;
    *rule = 0;
    for (size_t i = 0; rules && json_object_is_type(rules, json_type_array) &&
                       i < json_object_array_length(rules);
         i++) {
        json_object *r = json_object_array_get_idx(rules, i), *when = NULL, *then, *x;
        if (!json_object_object_get_ex(r, "then", &then) ||
            !json_object_is_type(then, json_type_string))
            continue;
        json_object_object_get_ex(r, "when", &when);
        if (when && json_object_object_get_ex(when, "status", &x) && x &&
            !status_matches(x, status))
            continue;
        if (when && json_object_object_get_ex(when, "json", &x) && x) {
            if (!parsed) {
                parsed = true;
                if (!whole || response_parse(body, len, &doc) < 0)
                    doc = NULL;
            }
            if (!doc || !response_cond_holds(doc, x))
                continue;
        }
        verdict = verdict_of(json_object_get_string(then));
        if (verdict != RESPONSE_NONE) {
            *rule = (int)i + 1;
            break;
        }
    }
    json_object_put(doc);
    return verdict;
}

/*
 * Unit tests of shared/start_answer.c: what an on_start answer registers,
 * and that every answer the lenient parser would have taken is refused with
 * a reason.
 */
#include <stdlib.h>

#include "check.h"
#include "start_answer.h"

#define ACTION "\"params\": {\"url\": \"http://127.0.0.1:9/cancel\"}"

struct answer_case {
    const char *body;
    size_t len;              /* 0: strlen(body) */
    enum start_answer_kind want;
    const char *reason_part; /* REFUSED: a part of the reason */
};

static const char *kind_name(enum start_answer_kind k)
{
    return k == START_ANSWER_NONE ? "none" : k == START_ANSWER_REGISTER ? "register" : "refused";
}

int main(void)
{
    static const struct answer_case cases[] = {
        /* Asks nothing. */
        {"", 0, START_ANSWER_NONE, NULL},
        {"OK", 0, START_ANSWER_NONE, NULL},
        {"  \n", 0, START_ANSWER_NONE, NULL},
        {"{\"ok\": true}", 0, START_ANSWER_NONE, NULL},
        {"[{" ACTION "}]", 0, START_ANSWER_NONE, NULL},
        /* Registers. */
        {"{" ACTION "}", 0, START_ANSWER_REGISTER, NULL},
        {" \r\n{\"kind\": \"webhook\", " ACTION "}\n", 0, START_ANSWER_REGISTER, NULL},
        /* Refused: the lenient parser took each of these (issue 24). */
        {"{'params': {'url': 'http://127.0.0.1:9/c'}}", 0, START_ANSWER_REFUSED,
         "not valid JSON"},
        {"/* c */ {" ACTION "}", 0, START_ANSWER_REFUSED, "not valid JSON"},
        {"{" ACTION "} // c", 0, START_ANSWER_REFUSED, "not valid JSON"},
        {"{" ACTION "}junk", 0, START_ANSWER_REFUSED, "after the document"},
        {"{" ACTION ", \"x\": \"\\ud800\"}", 0, START_ANSWER_REFUSED, "surrogate"},
        {"{" ACTION ", \"a\\u0000b\": 1}", 0, START_ANSWER_REFUSED, "NUL"},
        {"{\"params\": {\"url\": \"ftp://x/\"}}", 0, START_ANSWER_REFUSED, "params.url"},
        {"{\"params\": {\"url\": \"http://x/\", \"verb\": \"Fly\"}}", 0, START_ANSWER_REFUSED,
         "verb"},
        {"{\"params\": 5}", 0, START_ANSWER_REFUSED, "not a valid action"},
        {"{" ACTION "}\0", sizeof("{" ACTION "}"), START_ANSWER_REFUSED, "not valid JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const struct answer_case *c = &cases[i];
        struct start_answer a;
        start_answer_read(c->body, c->len ? c->len : strlen(c->body), false, 65536, &a);
        if (!CHECK_STR(kind_name(a.kind), kind_name(c->want)))
            fprintf(stderr, "    body: %s (reason: %s)\n", c->body, a.reason);
        if (c->want == START_ANSWER_REGISTER)
        {
            const char *text = a.action ? json_object_to_json_string_ext(
                                              a.action, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
                                        : "";
            CHECK(strstr(text, "\"trigger\":\"Cancel\"") &&
                  strstr(text, "http://127.0.0.1:9/cancel"));
        }
        if (c->reason_part && !CHECK(strstr(a.reason, c->reason_part) != NULL))
            fprintf(stderr, "    body: %s\n    reason: %s\n", c->body, a.reason);
        start_answer_cleanup(&a);
    }

    struct start_answer big;
    start_answer_read(NULL, 0, true, 65536, &big);
    CHECK_STR(kind_name(big.kind), "refused");
    CHECK(strstr(big.reason, "65536 bytes") != NULL);
    CHECK(big.action == NULL);
    start_answer_cleanup(&big);
    return check_exit();
}

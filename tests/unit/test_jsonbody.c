/*
 * Unit tests of shared/jsonbody.c: strict parsing of request bodies.
 */
#include <stdlib.h>

#include "check.h"
#include "jsonbody.h"

/* "ok" when text parses, else the error message. */
static const char *parse(const char *text, size_t n)
{
    static char err[200];
    json_object *doc = NULL;
    if (jsonbody_parse(text, n, &doc, err, sizeof err) == 0) {
        json_object_put(doc);
        return "ok";
    }
    CHECK(doc == NULL);
    return err;
}

#define P(s) parse((s), sizeof(s) - 1)
#define P2(s) parse((s), strlen(s))

int main(void)
{
    CHECK_STR(P("[]"), "ok");
    CHECK_STR(P("  {\"a\": [1, 2.5, \"x\", null, true]} \r\n\t"), "ok");
    CHECK_STR(P("\"\\ud83d\\ude00\""), "ok"); /* a surrogate pair */
    CHECK_STR(P("\"\\\\u0000\""), "ok");      /* an escaped backslash, then text */
    CHECK_STR(P("\"\\\\ud800\""), "ok");
    CHECK_STR(P("\"\\u00e9\""), "ok");

    CHECK_STR(P(""), "request body is empty; a JSON document is required");
    CHECK_STR(P("[1]x"), "malformed JSON: unexpected data after the document (at byte 3)");
    CHECK_STR(P("[1,"), "malformed JSON: unexpected end of data (at byte 3)");
    CHECK_STR(P("{'a': 1}"),
              "malformed JSON: object keys must be strings in double quotes (at byte 1)");
    /* What json-c's tokener would take although it is not JSON. */
    static const char *not_json[] = {"[1,]",
                                     "{,}",
                                     "[NaN]",
                                     "[Infinity]",
                                     "[-Infinity]",
                                     "[1.]",
                                     "[.5]",
                                     "[01]",
                                     "[-]",
                                     "[1e]",
                                     "[1e+]",
                                     "[+1]",
                                     "[\"a\tb\"]",
                                     "[tru]",
                                     "[truex]",
                                     "[True]",
                                     "{\"a\" 1}",
                                     "{\"a\":1,}",
                                     "{\"a\":}",
                                     "{\"a\"}",
                                     "[\"\\x41\"]",
                                     "[\"\\u12\"]",
                                     "[\"\\uZZZZ\"]",
                                     "[\"a]",
                                     "[1 2]",
                                     "{\"a\":1 \"b\":2}",
                                     "[}",
                                     "{]",
                                     "//c\n[]",
                                     "/* c */[]",
                                     "[] []",
                                     "\xef\xbb\xbf[]",
                                     "'a'",
                                     "[\"\\\"]",
                                     "[nul]",
                                     "[1]]",
                                     "{\"a\":1}}",
                                     "[-01]",
                                     "[1.5.5]"};
    for (size_t i = 0; i < sizeof not_json / sizeof not_json[0]; i++)
        if (!CHECK(strncmp(P2(not_json[i]), "malformed JSON: ", 16) == 0))
            fprintf(stderr, "    accepted or other error: %s -> %s\n", not_json[i],
                    P2(not_json[i]));
    static const char *json[] = {"0",
                                 "-0",
                                 "-0.5e+10",
                                 "1E5",
                                 "1e-5",
                                 "\"\"",
                                 "\"\\/\\b\\f\"",
                                 "true",
                                 "false",
                                 "null",
                                 "{}",
                                 "[[], {}]",
                                 "{\"a\": {\"b\": [1, {\"c\": null}]}}",
                                 " \n[ 1 , 2 ]\n "};
    for (size_t i = 0; i < sizeof json / sizeof json[0]; i++)
        if (!CHECK(strcmp(P2(json[i]), "ok") == 0))
            fprintf(stderr, "    refused: %s -> %s\n", json[i], P2(json[i]));
    CHECK(strncmp(P("[\"\xff\"]"), "malformed JSON: ", 16) == 0); /* invalid UTF-8 */
    CHECK_STR(parse("[\"a\0b\"]", 7), "request body contains a NUL byte");
    CHECK_STR(P("[\"\\u0000\"]"), "JSON strings must not contain \\u0000 (NUL)");
    CHECK_STR(P("{\"a\\u0000b\": 1}"), "JSON strings must not contain \\u0000 (NUL)");
    CHECK_STR(P("[\"\\\\\\u0000\"]"), "JSON strings must not contain \\u0000 (NUL)");
    CHECK(strstr(P("[\"\\ud800\"]"), "lone UTF-16 surrogate") != NULL);
    CHECK(strstr(P("[\"\\udc00\"]"), "lone UTF-16 surrogate") != NULL);
    CHECK(strstr(P("[\"\\ud800\\u0041\"]"), "lone UTF-16 surrogate") != NULL);
    CHECK(strstr(P("[\"\\ud800\\\\udc00\"]"), "lone UTF-16 surrogate") != NULL);
    CHECK(strstr(P("[\"\\ud800"), "lone UTF-16 surrogate") != NULL);
    CHECK(strstr(P("[\"\\udbff\\udfff\\udc00\"]"), "lone UTF-16 surrogate") != NULL);

    /* Integers beyond 64 bits, which json-c would clamp, reach json-c as
     * doubles that keep their text (validate.c refuses them with their path);
     * both ends of the range stay integers. */
    CHECK_STR(P("[9223372036854775807, -9223372036854775808, 1e400, 1e-400]"), "ok");
    {
        const char *text = "{\"a\": [-9223372036854775809, 1, 123456789012345678901234567890]}";
        json_object *doc = NULL, *a = NULL;
        char err[160];
        if (CHECK(jsonbody_parse(text, strlen(text), &doc, err, sizeof err) == 0) &&
            CHECK(json_object_object_get_ex(doc, "a", &a))) {
            json_object *x = json_object_array_get_idx(a, 0);
            CHECK(json_object_is_type(x, json_type_double));
            CHECK_STR(json_object_to_json_string_ext(x, JSON_C_TO_STRING_PLAIN),
                      "-9223372036854775809e0");
            CHECK(json_object_is_type(json_object_array_get_idx(a, 1), json_type_int));
            CHECK_STR(json_object_to_json_string_ext(json_object_array_get_idx(a, 2),
                                                     JSON_C_TO_STRING_PLAIN),
                      "123456789012345678901234567890e0");
        }
        json_object_put(doc);
        /* Alone, at the very end of the text. */
        if (CHECK(jsonbody_parse("18446744073709551616", 20, &doc, err, sizeof err) == 0))
            CHECK(json_object_is_type(doc, json_type_double));
        json_object_put(doc);
    }

    /* Nesting is bounded. */
    char deep[2 * 100 + 1];
    memset(deep, '[', 100);
    memset(deep + 100, ']', 100);
    deep[200] = '\0';
    CHECK(strncmp(parse(deep, 200), "malformed JSON: nested too deep", 31) == 0);
    CHECK_STR(parse(deep + 100 - JSONBODY_MAX_DEPTH, 2 * JSONBODY_MAX_DEPTH), "ok");
    CHECK(strncmp(parse(deep + 100 - JSONBODY_MAX_DEPTH - 1, 2 * JSONBODY_MAX_DEPTH + 2),
                  "malformed JSON: nested too deep", 31) == 0);
    return check_exit();
}

/*
 * Unit tests of shared/jsontext.c: compacting JSON text as PostgreSQL writes it.
 */
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "jsontext.h"

static char out[4096];

static const char *compact(const char *in)
{
    size_t n = jsontext_compact(out, in, strlen(in));
    out[n] = '\0';
    return out;
}

/* Compacting never changes what the text means: json-c reads the same value
 * from both, and prints the same plain text. */
static void same_value(const char *in)
{
    json_object *a = json_tokener_parse(in);
    char copy[4096];
    snprintf(copy, sizeof copy, "%s", compact(in));
    json_object *b = json_tokener_parse(copy);
    if (CHECK(a && b))
        CHECK_STR(json_object_to_json_string_ext(b, JSON_C_TO_STRING_PLAIN),
                  json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN));
    json_object_put(a);
    json_object_put(b);
}

int main(void)
{
    /* What json_build_object, json_agg and jsonb write. */
    CHECK_STR(compact("{\"id\" : 1, \"name\" : \"a\"}"), "{\"id\":1,\"name\":\"a\"}");
    CHECK_STR(compact("[{\"a\" : 1}, \n {\"a\" : 2}]"), "[{\"a\":1},{\"a\":2}]");
    CHECK_STR(compact("{\"m\": {\"k\": [1, 2, null, true]}}"), "{\"m\":{\"k\":[1,2,null,true]}}");
    /* Strings are kept byte for byte: spaces, escaped quotes and backslashes. */
    CHECK_STR(compact("{\"s\" : \"a : b, c\"}"), "{\"s\":\"a : b, c\"}");
    CHECK_STR(compact("[\"q\\\" , x\", \"b\\\\\" , 1]"), "[\"q\\\" , x\",\"b\\\\\",1]");
    CHECK_STR(compact("\"\\u0020 \\t\""), "\"\\u0020 \\t\"");
    CHECK_STR(compact("{\"é\" : \"ü ü\"}"), "{\"é\":\"ü ü\"}");
    CHECK_STR(compact(" \t\r\n[ ] "), "[]");
    CHECK_STR(compact(""), "");
    same_value("{\"id\" : \"x\", \"list\" : [1.5, -2e3, \"s p\"], \"o\" : {\"k\\\"\" : \"v\\\\\"}}");
    same_value("[{\"a\" : 9223372036854775807}, \n {\"b\" : -9223372036854775808}]");
    /* In place. */
    char buf[] = "{\"a\" : [1, 2]}";
    size_t n = jsontext_compact(buf, buf, strlen(buf));
    buf[n] = '\0';
    CHECK_STR(buf, "{\"a\":[1,2]}");
    return check_exit();
}

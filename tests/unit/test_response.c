/*
 * Unit tests of shared/response.c: params.response.rules on answers (first
 * match decides, status codes and classes, JSON conditions, a cut answer)
 * and conditions on JSON values.
 */
#include "response.h"

#include <string.h>

#include "check.h"

static enum response_verdict decide(const char *rules, long status, const char *body, bool whole,
                                    int *rule)
{
    json_object *r = json_tokener_parse(rules);
    enum response_verdict v = response_decide(r, status, body, strlen(body), whole, rule);
    json_object_put(r);
    return v;
}

static void test_rules(void)
{
    const char *rules =
        "[{\"when\":{\"status\":[\"2xx\"],\"json\":{\"path\":\"state\",\"equals\":\"done\"}},"
        "\"then\":\"succeed\"},"
        "{\"when\":{\"status\":[\"2xx\"],\"json\":{\"path\":\"state\",\"in\":[\"queued\",\"busy\"]}},"
        "\"then\":\"retry\"},"
        "{\"when\":{\"status\":[404,\"5xx\"]},\"then\":\"fail\"},"
        "{\"when\":{\"json\":{\"path\":\"ok\",\"exists\":true}},\"then\":\"accept\"}]";
    int rule;
    CHECK(decide(rules, 200, "{\"state\":\"done\"}", true, &rule) == RESPONSE_SUCCEED && rule == 1);
    CHECK(decide(rules, 202, "{\"state\":\"busy\"}", true, &rule) == RESPONSE_RETRY && rule == 2);
    CHECK(decide(rules, 404, "", true, &rule) == RESPONSE_FAIL && rule == 3);
    CHECK(decide(rules, 503, "{\"state\":\"done\"}", true, &rule) == RESPONSE_FAIL && rule == 3);
    CHECK(decide(rules, 400, "{\"ok\":1}", true, &rule) == RESPONSE_ACCEPT && rule == 4);
    CHECK(decide(rules, 400, "{\"ok\":null}", true, &rule) == RESPONSE_NONE && rule == 0);
    CHECK(decide(rules, 200, "{\"state\":\"other\"}", true, &rule) == RESPONSE_NONE);
    /* Not JSON, trailing bytes, or cut: no json condition holds. */
    CHECK(decide(rules, 200, "{\"state\":\"done\"} x", true, &rule) == RESPONSE_NONE);
    CHECK(decide(rules, 200, "state=done", true, &rule) == RESPONSE_NONE);
    CHECK(decide(rules, 200, "{\"state\":\"done\"}", false, &rule) == RESPONSE_NONE);
    CHECK(decide(rules, 200, "{\"state\":\"done\"}\n", true, &rule) == RESPONSE_SUCCEED);
    CHECK(decide("[]", 500, "", true, &rule) == RESPONSE_NONE);
    CHECK(decide("[{\"then\":\"retry\"}]", 200, "", true, &rule) == RESPONSE_RETRY);
    /* Deeper than RESPONSE_DEPTH_MAX: not read. */
    char deep[400];
    memset(deep, '[', 200);
    memset(deep + 200, ']', 200);
    json_object *r = json_tokener_parse("[{\"when\":{\"json\":{\"path\":\"0\",\"exists\":true}},"
                                        "\"then\":\"fail\"}]");
    CHECK(response_decide(r, 200, deep, sizeof deep, true, &rule) == RESPONSE_NONE);
    json_object_put(r);
}

static void test_conditions(void)
{
    json_object *doc = json_tokener_parse("{\"n\":1,\"f\":1.0,\"s\":\"x\",\"o\":{\"a\":[1,2]},\"z\":null}");
    static const struct {
        const char *cond;
        bool holds;
    } cases[] = {
        {"{\"path\":\"n\",\"equals\":1}", true},
        {"{\"path\":\"n\",\"equals\":1.0}", true},
        {"{\"path\":\"f\",\"equals\":1}", true},
        {"{\"path\":\"s\",\"equals\":\"x\"}", true},
        {"{\"path\":\"s\",\"equals\":\"y\"}", false},
        {"{\"path\":\"o\",\"equals\":{\"a\":[1,2]}}", true},
        {"{\"path\":\"o.a.1\",\"in\":[5,2]}", true},
        {"{\"path\":\"o.a.1\",\"in\":[]}", false},
        {"{\"path\":\"z\",\"exists\":false}", true},
        {"{\"path\":\"z\",\"equals\":null}", false},
        {"{\"path\":\"missing\",\"exists\":false}", true},
        {"{\"path\":\"s\",\"exists\":true}", true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_object *c = json_tokener_parse(cases[i].cond);
        if (!CHECK(response_cond_holds(doc, c) == cases[i].holds))
            fprintf(stderr, "    %s\n", cases[i].cond);
        json_object_put(c);
    }
    json_object_put(doc);
}

int main(void)
{
    test_rules();
    test_conditions();
    return check_exit();
}

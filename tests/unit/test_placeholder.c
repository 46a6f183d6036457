/*
 * Unit tests of shared/placeholder.c: the grammar of placeholders (what
 * validate.c refuses at creation) and the bounded path walk.
 */
#include "placeholder.h"

#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "util.h"

static int count_fn(void *ctx, const char *s, const struct ph_span *p)
{
    (void)s;
    (void)p;
    (*(int *)ctx)++;
    return 0;
}

static void test_scan(void)
{
    static const struct {
        const char *s;
        int n; /* placeholders, or -1: refused */
    } cases[] = {
        {"plain text", 0},
        {"}} alone", 0},
        {"{{task.id}}", 1},
        {"a {{task.name}} b {{metadata.x.0.y}} c", 2},
        {"{{output}}{{metadata}}", 2},
        {"{{parents.export.output.file}}", 1},
        {"{{parents.export.output}}", 1},
        {"{{parents.export}}", -1},
        {"{{parents.export.metadata}}", -1},
        {"{{task}}", -1},
        {"{{task.secret}}", -1},
        {"{{task.id.x}}", -1},
        {"{{nope.x}}", -1},
        {"{{ metadata.x }}", -1},
        {"{{metadata..x}}", -1},
        {"{{metadata.x.}}", -1},
        {"{{}}", -1},
        {"{{metadata.x", -1},
        {"{{metadata.{{x}}", -1},
        {"{{metadata.a\nb}}", -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int n = 0;
        char why[200] = "";
        int rc = placeholder_scan(cases[i].s, count_fn, &n, why, sizeof why);
        if (!CHECK(cases[i].n < 0 ? rc == -1 && why[0] : rc == 0 && n == cases[i].n))
            fprintf(stderr, "    case \"%s\": rc %d n %d why %s\n", cases[i].s, rc, n, why);
    }
    /* Bounds: the expression's length, its depth, placeholders per string. */
    struct strbuf b;
    strbuf_init(&b);
    strbuf_adds(&b, "{{metadata");
    for (int i = 0; i < PH_DEPTH_MAX; i++)
        strbuf_adds(&b, ".a");
    strbuf_adds(&b, "}}");
    int n = 0;
    char why[200];
    CHECK(placeholder_scan(b.data, count_fn, &n, why, sizeof why) == -1); /* 33 segments */
    strbuf_cleanup(&b);
    strbuf_init(&b);
    for (int i = 0; i <= PH_PER_STRING_MAX; i++)
        strbuf_adds(&b, "{{task.id}}");
    CHECK(placeholder_scan(b.data, count_fn, &n, why, sizeof why) == -1);
    strbuf_cleanup(&b);
    char *longer = xmalloc(PH_EXPR_MAX + 20);
    memset(longer, 'a', PH_EXPR_MAX + 19);
    memcpy(longer, "{{metadata.", 11);
    memcpy(longer + PH_EXPR_MAX + 15, "}}", 3);
    CHECK(placeholder_scan(longer, count_fn, &n, why, sizeof why) == -1);
    free(longer);
}

static void test_walk(void)
{
    json_object *doc = json_tokener_parse(
        "{\"a\":{\"b\":[10,{\"c\":\"x\"},null]},\"n\":null,\"s\":\"t\",\"01\":1}");
    CHECK(json_object_get_int(placeholder_walk(doc, "a.b.0")) == 10);
    CHECK_STR(json_object_get_string(placeholder_walk(doc, "a.b.1.c")), "x");
    CHECK(placeholder_walk(doc, "a.b.2") == NULL);  /* null counts as absent */
    CHECK(placeholder_walk(doc, "n") == NULL);
    CHECK(placeholder_walk(doc, "a.b.3") == NULL);  /* out of range */
    CHECK(placeholder_walk(doc, "a.b.x") == NULL);  /* not an index */
    CHECK(placeholder_walk(doc, "s.x") == NULL);    /* into a string */
    CHECK(placeholder_walk(doc, "a.b.99999999999") == NULL);
    CHECK(json_object_get_int(placeholder_walk(doc, "01")) == 1);
    CHECK(placeholder_walk(doc, "") == doc);
    CHECK_STR(placeholder_text(placeholder_walk(doc, "a.b.1")), "{\"c\":\"x\"}");
    CHECK_STR(placeholder_text(placeholder_walk(doc, "s")), "t");
    CHECK(placeholder_path_ok("a.b.0") && !placeholder_path_ok("") && !placeholder_path_ok("a..b") &&
          !placeholder_path_ok("a b"));
    json_object_put(doc);
}

int main(void)
{
    test_scan();
    test_walk();
    return check_exit();
}

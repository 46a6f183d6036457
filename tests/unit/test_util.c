/*
 * Unit tests of shared/util.c: the string buffer and formatting helpers.
 */
#include <stdlib.h>

#include "check.h"
#include "util.h"

int main(void)
{
    struct strbuf b;
    strbuf_init(&b);
    strbuf_adds(&b, "abc");
    strbuf_addf(&b, "-%d-", 42);
    strbuf_add(&b, "xyz", 2);
    CHECK_STR(b.data, "abc-42-xy");
    CHECK_INT((long long)b.len, 9);
    for (int i = 0; i < 1000; i++)
        strbuf_adds(&b, "0123456789");
    CHECK_INT((long long)b.len, 10009);
    CHECK(b.data[b.len] == '\0');
    strbuf_cleanup(&b);
    CHECK(b.data == NULL && b.len == 0);

    char *s = xasprintf("%s/%05d", "t", 7);
    CHECK_STR(s, "t/00007");
    free(s);
    CHECK(xstrdup(NULL) == NULL);
    const char *item = "  a b \t", *start = item, *end = item + strlen(item);
    util_trim(&start, &end);
    CHECK_INT((long long)(start - item), 2);
    CHECK_INT((long long)(end - start), 3);
    const char *blank = " \t ", *bs = blank, *be = blank + strlen(blank);
    util_trim(&bs, &be);
    CHECK(bs == be);
    long long a = util_mono_ms(), c = util_mono_ms();
    CHECK(c >= a);
    return check_exit();
}

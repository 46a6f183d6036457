/*
 * Unit tests of shared/urlquery.c: finding and decoding query parameters.
 */
#include <stdlib.h>

#include "check.h"
#include "urlquery.h"

/* The value of name in query as a printable string: "<absent>", "<bad>" or it. */
static const char *value(const char *query, const char *name)
{
    static char buf[256];
    char *v = NULL;
    if (urlquery_value(query, name, &v) < 0) {
        CHECK(v == NULL);
        return "<bad>";
    }
    if (!v)
        return "<absent>";
    snprintf(buf, sizeof buf, "%s", v);
    free(v);
    return buf;
}

int main(void)
{
    CHECK_STR(value("", "a"), "<absent>");
    CHECK_STR(value(NULL, "a"), "<absent>");
    CHECK_STR(value("a=1", "a"), "1");
    CHECK_STR(value("a=1&b=2", "b"), "2");
    CHECK_STR(value("a=1&a=2", "a"), "1");  /* the first wins */
    CHECK_STR(value("ab=1&a=2", "a"), "2"); /* names match whole */
    CHECK_STR(value("a", "a"), "");
    CHECK_STR(value("a=", "a"), "");
    CHECK_STR(value("b&a", "a"), "");
    CHECK_STR(value("&&a=x&&", "a"), "x");
    CHECK_STR(value("a=x+y%20z", "a"), "x y z");
    CHECK_STR(value("a=%7B%22k%22%3A1%7D", "a"), "{\"k\":1}");
    CHECK_STR(value("a=%41%42", "a"), "AB");
    CHECK_STR(value("a=%2", "a"), "%2"); /* a broken escape stays as it is */
    CHECK_STR(value("a=%zz", "a"), "%zz");
    CHECK_STR(value("a=%C3%A9", "a"), "\xc3\xa9");
    CHECK_STR(value("a=1+%2B+2", "a"), "1 + 2"); /* an encoded '+' stays a '+' */
    CHECK_STR(value("a=%2x%41", "a"), "%2xA");
    CHECK_STR(value("a=%00", "a"), "<bad>"); /* NUL cannot be passed on */
    CHECK_STR(value("a=x%00y", "a"), "<bad>");
    CHECK_STR(value("a=%00&b=1", "b"), "1"); /* only the asked parameter counts */
    CHECK_STR(value("token=abc&x=1", "token"), "abc");
    CHECK_STR(value("=1&a=2", "a"), "2");
    CHECK_STR(value("=1", ""), "1");
    return check_exit();
}

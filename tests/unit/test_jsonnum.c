/*
 * Unit tests of shared/jsonnum.c: which JSON numbers are kept exactly
 * (stored by PostgreSQL as numeric, read back by json-c).
 */
#include "jsonnum.h"

#include <string.h>

#include "check.h"

static const char *problem(const char *text)
{
    return jsonnum_problem(text, strlen(text));
}

int main(void)
{
    static const char *const accepted[] = {
        "0", "-0", "1", "-1", "9223372036854775807", "-9223372036854775808",
        "0.0", "-0.0", "0e5", "-0.0e99", "1.5", "1e3", "1.0e1", "1.5e15",
        "9.223372036854775807e18", "-9.223372036854775808e18", "5e-324", "3e-324",
        "0.1234567890123456789012345678901234567890",
        "123456789012345678901234.5", "1.7976931348623157e-300", "9223372036854775807.5",
        "0.0000000000000000000000000000000000001", "1e-300", "2.5e-10"};
    for (size_t i = 0; i < sizeof accepted / sizeof accepted[0]; i++) {
        const char *why = problem(accepted[i]);
        if (!CHECK(why == NULL))
            fprintf(stderr, "    %s: %s\n", accepted[i], why);
    }
    static const struct {
        const char *text, *why;
    } refused[] = {
        {"9223372036854775808", "signed 64-bit range"},
        {"-9223372036854775809", "signed 64-bit range"},
        {"18446744073709551616", "signed 64-bit range"},
        {"123456789012345678901234567890", "signed 64-bit range"},
        {"1e19", "signed 64-bit range"},
        {"9.223372036854775808e18", "signed 64-bit range"},
        {"1e308", "signed 64-bit range"},
        {"1.5e308", "signed 64-bit range"},
        {"1e400", "range of a double"},
        {"1.7976931348623157e300", "signed 64-bit range"},
        {"1.8e308", "range of a double"},
        {"1e-400", "closer to zero"},
        {"0.1e-400", "closer to zero"},
        {"2e-324", "closer to zero"},
        {"1e1001", "exponent"},
        {"1e-1001", "exponent"},
        {"1.5.5", "not a JSON number"},
        {"01", "not a JSON number"},
        {"", "not a JSON number"},
        {"Infinity", "not a JSON number"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        const char *why = problem(refused[i].text);
        if (!CHECK(why && strstr(why, refused[i].why)))
            fprintf(stderr, "    %s: got %s, wanted \"%s\"\n", refused[i].text,
                    why ? why : "accepted", refused[i].why);
    }
    /* 20,000 digits after the point: more than PostgreSQL's numeric keeps. */
    char many[20004] = "0.";
    memset(many + 2, '1', 20000);
    many[20002] = '\0';
    CHECK(problem(many) && strstr(problem(many), "16383 digits"));
    CHECK(jsonnum_is_integer_literal("-12", 3));
    CHECK(!jsonnum_is_integer_literal("1.0", 3));
    CHECK(!jsonnum_is_integer_literal("1e2", 3));
    return check_exit();
}

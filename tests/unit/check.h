/*
 * check: the tiny assert helper of the unit tests. A failed check prints
 * where and what, and is counted; the test goes on, so one run shows every
 * failure. main() ends with `return check_exit();`.
 */
#ifndef TR_CHECK_H
#define TR_CHECK_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* One test executable per module, so these live in its single translation unit. */
static int check_total;    /* checks run */
static int check_failures; /* checks that failed */

static inline bool check_at(bool ok, const char *what, const char *file, int line)
{
    check_total++;
    if (!ok) {
        check_failures++;
        fprintf(stderr, "%s:%d: check failed: %s\n", file, line, what);
    }
    return ok;
}

static inline bool check_str_at(const char *got, const char *want, const char *what,
                                const char *file, int line)
{
    bool ok = got && want ? strcmp(got, want) == 0 : got == want;
    if (!check_at(ok, what, file, line))
        fprintf(stderr, "    got:  %s%s%s\n    want: %s%s%s\n", got ? "\"" : "", got ? got : "NULL",
                got ? "\"" : "", want ? "\"" : "", want ? want : "NULL", want ? "\"" : "");
    return ok;
}

static inline bool check_int_at(long long got, long long want, const char *what, const char *file,
                                int line)
{
    bool ok = got == want;
    if (!check_at(ok, what, file, line))
        fprintf(stderr, "    got: %lld, want: %lld\n", got, want);
    return ok;
}

/* Each returns whether it held, so a test can skip what would crash after. */
#define CHECK(cond) check_at((cond), #cond, __FILE__, __LINE__)
#define CHECK_STR(got, want) check_str_at((got), (want), #got " == " #want, __FILE__, __LINE__)
#define CHECK_INT(got, want) check_int_at((got), (want), #got " == " #want, __FILE__, __LINE__)

/* Prints the tally; returns the process exit status. */
static inline int check_exit(void)
{
    printf("%d checks, %d failed\n", check_total, check_failures);
    return check_failures ? 1 : 0;
}

#endif

/*
 * jsonnum: which JSON numbers are kept exactly (see jsonnum.h).
 */
#include "jsonnum.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum {
    EXPONENT_MAX = 1000,    /* PostgreSQL numeric input: exponent within ±1000 */
    SCALE_MAX = 16383,      /* PostgreSQL numeric: digits after the point */
    INT64_DIGITS = 19,      /* 9223372036854775807 */
    TEXT_MAX = 64,          /* an integer worth comparing fits */
};

static const char INT64_MAX_TEXT[] = "9223372036854775807";
static const char INT64_MIN_ABS_TEXT[] = "9223372036854775808";

/* The parts of a number literal: -? int (. frac)? ([eE] [+-]? exp)? */
struct parts {
    bool negative;
    const char *digits; /* the integer part */
    size_t n_int;
    const char *frac;   /* the fraction's digits */
    size_t n_frac;
    bool has_exp;
    long exp;           /* saturated at ±(EXPONENT_MAX + 1) */
};

static size_t count_digits(const char *s, size_t len, size_t i)
{
    size_t k = i;
    while (k < len && s[k] >= '0' && s[k] <= '9')
        k++;
    return k - i;
}

/* Splits text into its parts; -1 when it is not a JSON number literal. */
static int split(const char *s, size_t len, struct parts *p)
{
    size_t i = 0;
    memset(p, 0, sizeof *p);
    if (i < len && s[i] == '-')
        p->negative = true, i++;
    p->digits = s + i;
    p->n_int = count_digits(s, len, i);
    if (p->n_int == 0 || (p->n_int > 1 && s[i] == '0'))
        return -1;
    i += p->n_int;
    if (i < len && s[i] == '.') {
        p->frac = s + ++i;
        p->n_frac = count_digits(s, len, i);
        if (p->n_frac == 0)
            return -1;
        i += p->n_frac;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        p->has_exp = true;
        bool neg = false;
        if (++i < len && (s[i] == '+' || s[i] == '-'))
            neg = s[i++] == '-';
        size_t n = count_digits(s, len, i);
        if (n == 0)
            return -1;
        for (size_t k = 0; k < n; k++)
            if (p->exp <= EXPONENT_MAX)
                p->exp = p->exp * 10 + (s[i + k] - '0');
        if (neg)
            p->exp = -p->exp;
        i += n;
    }
    return i == len ? 0 : -1;
}

/* Whether the integer of the given digits (no sign, no leading zeros
 * unless it is 0) fits the signed 64-bit range with that sign. */
static bool int64_fits(const char *digits, size_t n, bool negative)
{
    if (n != INT64_DIGITS)
        return n < INT64_DIGITS;
    return strncmp(digits, negative ? INT64_MIN_ABS_TEXT : INT64_MAX_TEXT, n) <= 0;
}

bool jsonnum_is_integer_literal(const char *text, size_t len)
{
    struct parts p;
    return split(text, len, &p) == 0 && !p.frac && !p.has_exp;
}

const char *jsonnum_problem(const char *text, size_t len)
{
    static const char BEYOND_INT64[] =
        "is an integer beyond the signed 64-bit range (-9223372036854775808 to "
        "9223372036854775807)";
    struct parts p;
    if (split(text, len, &p) < 0)
        return "is not a JSON number";
    if (!p.frac && !p.has_exp)
        return int64_fits(p.digits, p.n_int, p.negative) ? NULL : BEYOND_INT64;
    if (p.exp > EXPONENT_MAX || p.exp < -EXPONENT_MAX)
        return "has an exponent beyond ±1000";
    /* Every digit, without the leading zeros: the value is all × 10^shift. */
    char all[TEXT_MAX + 1];
    size_t n_all = 0;
    bool zero = true, long_digits = false;
    for (size_t k = 0; k < p.n_int + p.n_frac; k++) {
        char d = k < p.n_int ? p.digits[k] : p.frac[k - p.n_int];
        if (zero && d == '0')
            continue;
        zero = false;
        if (n_all < TEXT_MAX)
            all[n_all++] = d;
        else
            long_digits = true;
    }
    long shift = p.exp - (long)p.n_frac;
    if (shift < -SCALE_MAX)
        return "has more than 16383 digits after the decimal point";
    if (zero)
        return NULL; /* 0.0, -0e5: zero, stored as such */
    char *copy = strndup(text, len);
    if (!copy)
        abort();
    double d = strtod(copy, NULL);
    free(copy);
    if (!isfinite(d))
        return "is beyond the range of a double (about ±1.8e308)";
    if (d == 0)
        return "is closer to zero than the smallest double (about 4.9e-324): it would be "
               "read as 0";
    if (shift >= 0) {
        /* Integral, and printed back as a plain integer: it must fit 64 bits. */
        size_t n_digits = (long_digits ? TEXT_MAX + 1 : n_all) + (size_t)shift;
        if (n_digits > INT64_DIGITS)
            return BEYOND_INT64;
        for (long k = 0; k < shift; k++)
            all[n_all++] = '0';
        if (!int64_fits(all, n_all, p.negative))
            return BEYOND_INT64;
    }
    return NULL;
}

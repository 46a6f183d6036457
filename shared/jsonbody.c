/*
 * jsonbody: strict parsing of a JSON request body (see jsonbody.h).
 */
#include "jsonbody.h"

#include "jsonnum.h"

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The value of the 4 hex digits at p (n bytes available), or -1. */
static long hex4(const char *p, size_t n)
{
    if (n < 4)
        return -1;
    long v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

static const char ERR_NUL[] = "JSON strings must not contain \\u0000 (NUL)";
static const char ERR_SURROGATE[] = "JSON strings must not contain a lone UTF-16 surrogate";
static const char ERR_END[] = "unexpected end of data";

/* Where integer literals beyond 64 bits end (offsets in the text), so that
 * they reach json-c as doubles (see mark_wide_integers). */
struct wide_ints {
    size_t *ends;
    size_t n, cap;
};

/* Scans the string at s[*i] (a '"'); moves *i past it. Besides JSON's rules,
 * refuses \u0000 (json-c cuts object keys at a NUL and PostgreSQL cannot
 * store one) and a surrogate escape that is not half of a pair (json-c
 * would store U+FFFD: not what was sent). Returns the problem, or NULL. */
static const char *scan_string(const char *s, size_t n, size_t *i)
{
    size_t k = *i + 1;
    while (k < n) {
        unsigned char c = (unsigned char)s[k];
        if (c == '"') {
            *i = k + 1;
            return NULL;
        }
        if (c < 0x20)
            return "control character in a string (escape it)";
        if (c != '\\') {
            k++;
            continue;
        }
        if (k + 1 >= n)
            return ERR_END;
        char e = s[k + 1];
        if (e && strchr("\"\\/bfnrt", e)) {
            k += 2;
            continue;
        }
        if (e != 'u')
            return "invalid escape in a string";
        long v = hex4(s + k + 2, n - k - 2);
        if (v < 0)
            return "invalid \\u escape in a string";
        if (v == 0)
            return ERR_NUL;
        if (v >= 0xDC00 && v <= 0xDFFF)
            return ERR_SURROGATE;
        if (v >= 0xD800 && v <= 0xDBFF) {
            bool next = k + 7 < n && s[k + 6] == '\\' && s[k + 7] == 'u';
            long low = next ? hex4(s + k + 8, n - k - 8) : -1;
            if (low < 0xDC00 || low > 0xDFFF)
                return ERR_SURROGATE;
            k += 6;
        }
        k += 6;
    }
    return ERR_END;
}

static bool is_digit(const char *s, size_t n, size_t k)
{
    return k < n && s[k] >= '0' && s[k] <= '9';
}

/* Scans the number at s[*i] (RFC 8259: no leading zeros, no "1.", no NaN). */
static const char *scan_number(const char *s, size_t n, size_t *i, struct wide_ints *wide)
{
    size_t k = *i;
    if (k < n && s[k] == '-')
        k++;
    if (k < n && s[k] == '0')
        k++;
    else if (is_digit(s, n, k))
        while (is_digit(s, n, k))
            k++;
    else
        return "invalid number";
    if (k < n && s[k] == '.') {
        if (!is_digit(s, n, ++k))
            return "invalid number";
        while (is_digit(s, n, k))
            k++;
    }
    if (k < n && (s[k] == 'e' || s[k] == 'E')) {
        k++;
        if (k < n && (s[k] == '+' || s[k] == '-'))
            k++;
        if (!is_digit(s, n, k))
            return "invalid number";
        while (is_digit(s, n, k))
            k++;
    }
    if (jsonnum_is_integer_literal(s + *i, k - *i) && jsonnum_problem(s + *i, k - *i)) {
        if (wide->n == wide->cap) {
            wide->cap = wide->cap ? 2 * wide->cap : 8;
            wide->ends = xrealloc(wide->ends, wide->cap * sizeof *wide->ends);
        }
        wide->ends[wide->n++] = k;
    }
    *i = k;
    return NULL;
}

static size_t skip_space(const char *s, size_t n, size_t i)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n'))
        i++;
    return i;
}

/* Checks that the n bytes of s are exactly one JSON document (RFC 8259)
 * nested at most JSONBODY_MAX_DEPTH deep, which json-c's tokener, lenient
 * even when strict (it takes 'single quoted' keys, NaN, Infinity and "1."),
 * does not. Iterative: the nesting cannot exhaust the stack. Returns the
 * problem (and its offset in *at), or NULL. */
static const char *scan_json(const char *s, size_t n, size_t *at, struct wide_ints *wide)
{
    char stack[JSONBODY_MAX_DEPTH]; /* '[' or '{' per open container */
    int depth = 0;
    enum { VALUE, KEY, AFTER } state = VALUE;
    const char *why = NULL;
    size_t i = 0;
    while (!why) {
        i = skip_space(s, n, i);
        if (state == AFTER && depth == 0) {
            if (i < n)
                why = "unexpected data after the document";
            break;
        }
        if (i >= n) {
            why = ERR_END;
            break;
        }
        char c = s[i];
        if (state == KEY) {
            if (c != '"') {
                why = "object keys must be strings in double quotes";
            } else if (!(why = scan_string(s, n, &i))) {
                i = skip_space(s, n, i);
                if (i >= n)
                    why = ERR_END;
                else if (s[i] != ':')
                    why = "expected ':' after an object key";
                else
                    i++, state = VALUE;
            }
        } else if (state == AFTER) {
            char open = stack[depth - 1];
            if (c == ',') {
                i++;
                state = open == '{' ? KEY : VALUE;
            } else if ((open == '[' && c == ']') || (open == '{' && c == '}')) {
                i++;
                depth--;
            } else {
                why = open == '[' ? "expected ',' or ']'" : "expected ',' or '}'";
            }
        } else if (c == '[' || c == '{') {
            if (depth == JSONBODY_MAX_DEPTH) {
                why = "nested too deep";
                break;
            }
            stack[depth++] = c;
            i = skip_space(s, n, i + 1);
            if (i < n && s[i] == (c == '[' ? ']' : '}'))
                i++, depth--, state = AFTER;
            else
                state = c == '[' ? VALUE : KEY;
        } else if (c == '"') {
            why = scan_string(s, n, &i);
            state = AFTER;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            why = scan_number(s, n, &i, wide);
            state = AFTER;
        } else {
            static const char *const literals[] = {"true", "false", "null"};
            size_t len = 0;
            for (int k = 0; k < 3 && !len; k++)
                if (n - i >= strlen(literals[k]) &&
                    memcmp(s + i, literals[k], strlen(literals[k])) == 0)
                    len = strlen(literals[k]);
            if (!len)
                why = "unexpected character";
            i += len;
            state = AFTER;
        }
    }
    *at = i;
    return why;
}

/*
 * json-c clamps an integer literal beyond 64 bits (-9223372036854775809 reads
 * as INT64_MIN, the same as the real INT64_MIN): what was sent would be lost
 * before validate.c sees it. Such literals go to json-c with "e0" appended:
 * the same number, which json-c reads as a double keeping its text, so that
 * validate.c refuses it with its field path (shared/jsonnum.h), as any other
 * number that cannot be kept. Returns the new text (the caller's).
 */
static char *mark_wide_integers(const char *text, size_t len, const struct wide_ints *wide)
{
    char *out = xmalloc(len + 2 * wide->n + 1);
    size_t from = 0, to = 0;
    for (size_t k = 0; k < wide->n; k++) {
        memcpy(out + to, text + from, wide->ends[k] - from);
        to += wide->ends[k] - from;
        memcpy(out + to, "e0", 2);
        to += 2;
        from = wide->ends[k];
    }
    memcpy(out + to, text + from, len - from);
    out[to + len - from] = '\0';
    return out;
}

static int parse_scanned(const char *text, size_t len, const char *why, size_t at,
                         json_object **out, char *err, size_t errsize);

int jsonbody_parse(const char *text, size_t len, json_object **out, char *err, size_t errsize)
{
    *out = NULL;
    if (len == 0) {
        snprintf(err, errsize, "request body is empty; a JSON document is required");
        return -1;
    }
    if (len > INT_MAX) {
        snprintf(err, errsize, "request body too large");
        return -1;
    }
    if (memchr(text, '\0', len)) {
        snprintf(err, errsize, "request body contains a NUL byte");
        return -1;
    }
    size_t at;
    struct wide_ints wide = {0};
    const char *why = scan_json(text, len, &at, &wide);
    char *marked = NULL;
    if (!why && wide.n > 0) {
        marked = mark_wide_integers(text, len, &wide);
        len += 2 * wide.n;
        text = marked;
    }
    free(wide.ends);
    int rc = parse_scanned(text, len, why, at, out, err, errsize);
    free(marked);
    return rc;
}

/* jsonbody_parse, once the text is scanned (why: the scan's problem, or NULL). */
static int parse_scanned(const char *text, size_t len, const char *why, size_t at,
                         json_object **out, char *err, size_t errsize)
{
    if (why == ERR_NUL || why == ERR_SURROGATE) {
        snprintf(err, errsize, "%s", why);
        return -1;
    }
    if (why) {
        snprintf(err, errsize, "malformed JSON: %s (at byte %zu)", why, at);
        return -1;
    }
    json_tokener *tok = json_tokener_new_ex(JSONBODY_MAX_DEPTH + 1);
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *doc = json_tokener_parse_ex(tok, text, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t used = json_tokener_get_parse_end(tok);
    if (jerr == json_tokener_continue) {
        /* A number or literal alone: json-c waits for what ends it. */
        doc = json_tokener_parse_ex(tok, " ", 1);
        jerr = json_tokener_get_error(tok);
        used = len;
    }
    json_tokener_free(tok);
    if (jerr != json_tokener_success) {
        json_object_put(doc);
        /* What the scan leaves to json-c: invalid UTF-8. */
        snprintf(err, errsize, "malformed JSON: %s",
                 jerr == json_tokener_continue ? ERR_END : json_tokener_error_desc(jerr));
        return -1;
    }
    for (size_t i = used; i < len; i++) {
        if (!strchr(" \t\r\n", text[i])) {
            json_object_put(doc);
            snprintf(err, errsize, "malformed JSON: unexpected data after the document");
            return -1;
        }
    }
    *out = doc;
    return 0;
}

/*
 * placeholder: placeholders and bounded JSON paths (see placeholder.h).
 */
#include "placeholder.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const PH_TASK_FIELDS[] = {"id", "name", "kind", "batch_id", "group",
                                             "attempt"};

static void ph_why(char *why, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void ph_why(char *why, size_t n, const char *fmt, ...)
{
    if (!why || n == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, n, fmt, ap);
    va_end(ap);
}

static bool ph_segment_byte(unsigned char b)
{
    return b > 0x20 && b != 0x7F && b != '.' && b != '{' && b != '}';
}

bool placeholder_any(const char *s)
{
    return s && strstr(s, "{{") != NULL;
}

/* Splits path into at most PH_DEPTH_MAX segments of valid bytes. Returns
 * the count, or -1 when a segment is empty, too long or holds a refused
 * byte, or there are too many. "" is zero segments. */
static int ph_split(const char *path, const char *seg[PH_DEPTH_MAX], size_t len[PH_DEPTH_MAX])
{
    if (!*path)
        return 0;
    int n = 0;
    const char *p = path;
    for (;;) {
        const char *start = p;
        while (*p && *p != '.') {
            if (!ph_segment_byte((unsigned char)*p))
                return -1;
            p++;
        }
        size_t l = (size_t)(p - start);
        if (l == 0 || l > PH_SEGMENT_MAX || n == PH_DEPTH_MAX)
            return -1;
        seg[n] = start;
        len[n] = l;
        n++;
        if (!*p)
            return n;
        p++;
    }
}

bool placeholder_path_ok(const char *path)
{
    const char *seg[PH_DEPTH_MAX];
    size_t len[PH_DEPTH_MAX];
    return path && *path && strlen(path) <= PH_EXPR_MAX && ph_split(path, seg, len) > 0;
}

static bool ph_is(const char *seg, size_t len, const char *word)
{
    return strlen(word) == len && memcmp(seg, word, len) == 0;
}

int placeholder_check(const char *expr, char *parent_buf, size_t parent_size,
                      const char **parent, char *why, size_t why_size)
{
    const char *seg[PH_DEPTH_MAX];
    size_t len[PH_DEPTH_MAX];
    *parent = NULL;
    if (strlen(expr) > PH_EXPR_MAX) {
        ph_why(why, why_size, "placeholder longer than %d bytes", PH_EXPR_MAX);
        return -1;
    }
    int n = ph_split(expr, seg, len);
    if (n <= 0) {
        ph_why(why, why_size,
               "placeholder {{%.*s}} is not a dot-separated path (no spaces, empty or "
               "over-long segments, or more than %d)",
               64, expr, PH_DEPTH_MAX);
        return -1;
    }
    if (ph_is(seg[0], len[0], "task")) {
        for (size_t i = 0; n == 2 && i < sizeof PH_TASK_FIELDS / sizeof *PH_TASK_FIELDS; i++)
            if (ph_is(seg[1], len[1], PH_TASK_FIELDS[i]))
                return 0;
        ph_why(why, why_size,
               "placeholder {{%.*s}}: task has id, name, kind, batch_id, group and attempt", 64,
               expr);
        return -1;
    }
    if (ph_is(seg[0], len[0], "metadata") || ph_is(seg[0], len[0], "output"))
        return 0;
    if (ph_is(seg[0], len[0], "parents")) {
        if (n < 3 || !ph_is(seg[2], len[2], "output")) {
            ph_why(why, why_size,
                   "placeholder {{%.*s}}: a parent is read as parents.<local id>.output[.<path>]",
                   64, expr);
            return -1;
        }
        snprintf(parent_buf, parent_size, "%.*s", (int)len[1], seg[1]);
        *parent = parent_buf;
        return 0;
    }
    ph_why(why, why_size,
           "placeholder {{%.*s}}: unknown root (task, metadata, output or parents)", 64, expr);
    return -1;
}

int placeholder_scan(const char *s, ph_fn fn, void *ctx, char *why, size_t why_size)
{
    const char *p = s;
    int count = 0;
    while ((p = strstr(p, "{{")) != NULL) {
        const char *end = strstr(p + 2, "}}");
        if (!end) {
            ph_why(why, why_size, "\"{{\" without its closing \"}}\"");
            return -1;
        }
        size_t len = (size_t)(end - (p + 2));
        if (len > PH_EXPR_MAX) {
            ph_why(why, why_size, "placeholder longer than %d bytes", PH_EXPR_MAX);
            return -1;
        }
        if (++count > PH_PER_STRING_MAX) {
            ph_why(why, why_size, "more than %d placeholders in one string", PH_PER_STRING_MAX);
            return -1;
        }
        struct ph_span span = {.start = (size_t)(p - s), .len = len + 4};
        memcpy(span.expr, p + 2, len);
        span.expr[len] = '\0';
        if (strstr(span.expr, "{{")) {
            ph_why(why, why_size, "\"{{\" inside a placeholder");
            return -1;
        }
        char pbuf[PH_SEGMENT_MAX + 1];
        const char *parent;
        if (placeholder_check(span.expr, pbuf, sizeof pbuf, &parent, why, why_size) < 0)
            return -1;
        int rc = fn ? fn(ctx, s, &span) : 0;
        if (rc != 0)
            return rc;
        p = end + 2;
    }
    return 0;
}

json_object *placeholder_walk(json_object *root, const char *path)
{
    const char *seg[PH_DEPTH_MAX];
    size_t len[PH_DEPTH_MAX];
    if (strlen(path) > PH_EXPR_MAX)
        return NULL;
    int n = ph_split(path, seg, len);
    if (n < 0)
        return NULL;
    json_object *v = root;
    for (int i = 0; i < n && v; i++) {
        char key[PH_SEGMENT_MAX + 1];
        memcpy(key, seg[i], len[i]);
        key[len[i]] = '\0';
        if (json_object_is_type(v, json_type_object)) {
            json_object *next = NULL;
            v = json_object_object_get_ex(v, key, &next) ? next : NULL;
        } else if (json_object_is_type(v, json_type_array)) {
            bool digits = len[i] <= 9;
            for (size_t k = 0; digits && k < len[i]; k++)
                digits = key[k] >= '0' && key[k] <= '9';
            size_t idx = digits ? (size_t)strtoul(key, NULL, 10) : 0;
            v = digits && idx < json_object_array_length(v) ? json_object_array_get_idx(v, idx)
                                                            : NULL;
        } else {
            v = NULL;
        }
    }
    return v && !json_object_is_type(v, json_type_null) ? v : NULL;
}

const char *placeholder_text(json_object *v)
{
    if (json_object_is_type(v, json_type_string))
        return json_object_get_string(v);
    return json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
}

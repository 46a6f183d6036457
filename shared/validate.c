/*
 * validate: checks a POST /tasks body (see "Create a batch" in API.md) and
 * builds the normalized batch that tr_create_batch() stores.
 *
 * Two passes over the tasks: the first checks each task on its own and builds
 * its output, remembering the local ids in a hash table; the second resolves
 * dependencies through that table, then Kahn's algorithm detects cycles and,
 * only if there are any, Tarjan's algorithm splits them into components so
 * that each is reported once, naming the ids on one actual cycle.
 *
 * Every problem is collected with its JSON path; the output is only handed
 * back when there were none. An explicit JSON null counts as "not given" for
 * every optional field (as a serde Option field would read it).
 */
#include "validate.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uuid/uuid.h>

#include "jsonnum.h"
#include "placeholder.h"
#include "statuses.h"
#include "url.h"
#include "webhook_headers.h"

#define VAL_DEFAULT_MAX_TASKS 10000
#define VAL_ID_MAX 255          /* local id, code points */
#define VAL_NAME_MAX 255        /* code points */
#define VAL_GROUP_MAX 255       /* code points */
#define VAL_KIND_MAX 100        /* code points */
#define VAL_LIST_MAX 16         /* actions per trigger, rules, dedupe matchers */
#define VAL_METADATA_MAX 65536  /* bytes, compact serialization */
#define VAL_URL_MAX 2048        /* bytes */
#define VAL_HEADER_NAME_MAX WEBHOOK_HEADER_NAME_MAX /* bytes (a token is ASCII) */
#define VAL_HEADER_VALUE_MAX WEBHOOK_HEADER_VALUE_MAX
#define VAL_CYCLE_SHOWN 20 /* ids listed in a cycle message before eliding */
#define VAL_NONE SIZE_MAX  /* "no task" in index arrays */

/* ------------------------------------------------------------------------ */
/* Error list                                                                */
/* ------------------------------------------------------------------------ */

/* nonnull: without it gcc 12's -fsanitize=undefined at -O1 warns "null format
 * string" about the vsnprintf below (a false positive that -Werror breaks on). */
static char *val_vformat(const char *fmt, va_list ap) __attribute__((nonnull(1)));

static char *val_vformat(const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        abort(); /* only a bad format string gets here: a programming error */
    char *s = xmalloc((size_t)n + 1);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    return s;
}

void verr_list_init(struct verr_list *l)
{
    l->items = NULL;
    l->n = l->cap = 0;
}

void verr_list_cleanup(struct verr_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++) {
        free(l->items[i].field);
        free(l->items[i].message);
    }
    free(l->items);
    verr_list_init(l);
}

static void verr_add_owned(struct verr_list *l, const char *field, char *message)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 8;
        l->items = xrealloc(l->items, l->cap * sizeof *l->items);
    }
    l->items[l->n].field = xstrdup(field ? field : "");
    l->items[l->n].message = message;
    l->n++;
}

void verr_add(struct verr_list *l, const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *message = val_vformat(fmt, ap);
    va_end(ap);
    verr_add_owned(l, field, message);
}

/* json-c returns NULL when it cannot allocate; like xmalloc, we do not go on. */
static json_object *val_j(json_object *o)
{
    if (!o) {
        fprintf(stderr, "fatal: out of memory building JSON\n");
        abort();
    }
    return o;
}

json_object *verr_list_to_json(const struct verr_list *l)
{
    json_object *arr = val_j(json_object_new_array());
    for (size_t i = 0; i < l->n; i++) {
        json_object *e = val_j(json_object_new_object());
        json_object_object_add(e, "field", val_j(json_object_new_string(l->items[i].field)));
        json_object_object_add(e, "message", val_j(json_object_new_string(l->items[i].message)));
        json_object_array_add(arr, e);
    }
    return arr;
}

/* ------------------------------------------------------------------------ */
/* Enum names and UUIDs                                                      */
/* ------------------------------------------------------------------------ */

static const char *const val_verbs[] = {"Get", "Post", "Put", "Patch", "Delete"};

static const char *val_lookup(const char *const *names, size_t n, const char *s)
{
    if (!s)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(names[i], s) == 0)
            return names[i];
    return NULL;
}

const char *validate_status_name(const char *s)
{
    enum task_status st;
    return task_status_parse(s, &st) ? task_status_name(st) : NULL;
}

const char *validate_verb_name(const char *s)
{
    return val_lookup(val_verbs, sizeof val_verbs / sizeof *val_verbs, s);
}

bool validate_is_uuid(const char *s)
{
    if (!s || strlen(s) != 36)
        return false;
    for (size_t i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !strchr("0123456789abcdefABCDEF", s[i]))
            return false;
    }
    return true;
}


static void val_new_uuid(char out[37])
{
    uuid_t u;
    uuid_generate_random(u);
    uuid_unparse_lower(u, out);
}

/* ------------------------------------------------------------------------ */
/* Context: where we are in the input, and the errors so far                 */
/* ------------------------------------------------------------------------ */

struct val_ctx {
    struct verr_list *errs;
    struct strbuf path; /* JSON path of the value being checked */
    /* parents.<x> placeholders of the task being checked: [{"id","path"}],
     * checked against its dependencies in the second pass; NULL where no
     * parent can be named (an action an on_start answer registers). */
    json_object *parent_refs;
};

static const char *val_path(const struct val_ctx *c)
{
    return c->path.data ? c->path.data : "";
}

/* Path segments are pushed before checking a value and popped after, so
 * building paths costs nothing until an error is actually reported. */
static size_t val_push_key(struct val_ctx *c, const char *key)
{
    size_t mark = c->path.len;
    strbuf_adds(&c->path, ".");
    strbuf_adds(&c->path, key);
    return mark;
}

static size_t val_push_index(struct val_ctx *c, size_t i)
{
    size_t mark = c->path.len;
    char buf[32];
    snprintf(buf, sizeof buf, "[%zu]", i);
    strbuf_adds(&c->path, buf);
    return mark;
}

static void val_pop(struct val_ctx *c, size_t mark)
{
    c->path.len = mark;
    if (c->path.data)
        c->path.data[mark] = '\0';
}

static void val_err(struct val_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Reports a problem at the current path. */
static void val_err(struct val_ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *message = val_vformat(fmt, ap);
    va_end(ap);
    verr_add_owned(c->errs, val_path(c), message);
}

/* The value of key, or NULL when it is absent or JSON null. */
static json_object *val_field(json_object *obj, const char *key)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(obj, key, &v))
        return NULL;
    return v;
}

/* ------------------------------------------------------------------------ */
/* Scalars                                                                   */
/* ------------------------------------------------------------------------ */

/* Length of the UTF-8 sequence at s (at most n bytes), or 0 when it is not
 * valid UTF-8: overlong forms and surrogates are refused, as PostgreSQL
 * refuses them. */
static size_t val_utf8_seq(const unsigned char *s, size_t n)
{
    if (s[0] < 0x80)
        return 1;
    size_t len;
    uint32_t cp, min;
    if ((s[0] & 0xE0) == 0xC0) {
        len = 2, cp = s[0] & 0x1F, min = 0x80;
    } else if ((s[0] & 0xF0) == 0xE0) {
        len = 3, cp = s[0] & 0x0F, min = 0x800;
    } else if ((s[0] & 0xF8) == 0xF0) {
        len = 4, cp = s[0] & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

/* Counts the code points of s; returns -1 when s is not valid UTF-8. */
static int val_utf8_count(const char *s, size_t n, size_t *count)
{
    size_t i = 0, cps = 0;
    while (i < n) {
        size_t len = val_utf8_seq((const unsigned char *)s + i, n - i);
        if (len == 0)
            return -1;
        i += len;
        cps++;
    }
    *count = cps;
    return 0;
}

bool validate_is_utf8(const char *s, size_t n)
{
    size_t cps;
    return val_utf8_count(s, n, &cps) == 0;
}

/*
 * Checks that the string v can be stored: PostgreSQL text and jsonb take
 * neither NUL bytes nor invalid UTF-8. Reports at the current path. On
 * success sets *cps to its length in code points.
 */
static int val_storable(struct val_ctx *c, json_object *v, size_t *cps)
{
    const char *s = json_object_get_string(v);
    size_t n = (size_t)json_object_get_string_len(v);
    if (strlen(s) != n) {
        val_err(c, "must not contain a NUL byte");
        return -1;
    }
    if (val_utf8_count(s, n, cps) < 0) {
        val_err(c, "must be valid UTF-8");
        return -1;
    }
    return 0;
}

/* Checks v (not NULL) is a storable string of 1..maxc code points. */
static int val_text(struct val_ctx *c, json_object *v, size_t maxc, const char **out)
{
    size_t cps;
    if (!json_object_is_type(v, json_type_string)) {
        val_err(c, "must be a string of 1 to %zu characters", maxc);
        return -1;
    }
    if (val_storable(c, v, &cps) < 0)
        return -1;
    if (cps < 1 || cps > maxc) {
        val_err(c, "must be a string of 1 to %zu characters", maxc);
        return -1;
    }
    *out = json_object_get_string(v);
    return 0;
}

/* A required text field of obj; *out is left alone on failure. */
static int val_req_text(struct val_ctx *c, json_object *obj, const char *key, size_t maxc,
                        const char **out)
{
    size_t mark = val_push_key(c, key);
    json_object *v = val_field(obj, key);
    int rc = -1;
    if (!v)
        val_err(c, "is required");
    else
        rc = val_text(c, v, maxc, out);
    val_pop(c, mark);
    return rc;
}

/*
 * Reads v as an integer in lo..hi. Integral doubles (60.0, 1e3) count as
 * integers; booleans, strings, fractions and non-finite values do not.
 * json-c clamps overflowing integer literals to INT64_MIN/MAX (or UINT64_MAX),
 * which is out of every range here, so they are refused rather than wrapped.
 */
static int val_int_value(json_object *v, long long lo, long long hi, long long *out)
{
    if (json_object_is_type(v, json_type_int)) {
        int64_t i = json_object_get_int64(v);
        if (i < lo || i > hi)
            return -1;
        *out = (long long)i;
        return 0;
    }
    if (json_object_is_type(v, json_type_double)) {
        double d = json_object_get_double(v);
        /* range first, so that the cast is defined; the cast then drops any
         * fraction (NaN fails every comparison, hence the isfinite) */
        if (!isfinite(d) || d < (double)lo || d > (double)hi || (double)(long long)d != d)
            return -1;
        *out = (long long)d;
        return 0;
    }
    return -1;
}

/* An optional integer field of obj, def when not given. */
static int val_opt_int(struct val_ctx *c, json_object *obj, const char *key, long long lo,
                       long long hi, long long def, long long *out)
{
    json_object *v = val_field(obj, key);
    *out = def;
    if (!v)
        return 0;
    if (val_int_value(v, lo, hi, out) == 0)
        return 0;
    size_t mark = val_push_key(c, key);
    val_err(c, "must be an integer between %lld and %lld", lo, hi);
    val_pop(c, mark);
    *out = def;
    return -1;
}

/*
 * An optional array field of obj of at most maxn entries. Sets *arr to it,
 * or NULL when it is not given or not valid (reported).
 */
static int val_opt_array(struct val_ctx *c, json_object *obj, const char *key, size_t maxn,
                         json_object **arr)
{
    json_object *v = val_field(obj, key);
    *arr = NULL;
    if (!v)
        return 0;
    size_t mark = val_push_key(c, key);
    int rc = -1;
    if (!json_object_is_type(v, json_type_array)) {
        val_err(c, "must be an array");
    } else if (maxn && json_object_array_length(v) > maxn) {
        val_err(c, "must have at most %zu entries", maxn);
    } else {
        *arr = v;
        rc = 0;
    }
    val_pop(c, mark);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Free-form JSON (metadata, webhook body)                                   */
/* ------------------------------------------------------------------------ */

/* Checks every string and key inside v is storable; reports each at its path. */
static int val_scan(struct val_ctx *c, json_object *v)
{
    int rc = 0;
    size_t cps;
    switch (json_object_get_type(v)) {
    case json_type_string:
        return val_storable(c, v, &cps);
    case json_type_array:
        for (size_t i = 0; i < json_object_array_length(v); i++) {
            size_t mark = val_push_index(c, i);
            if (val_scan(c, json_object_array_get_idx(v, i)) < 0)
                rc = -1;
            val_pop(c, mark);
        }
        return rc;
    case json_type_object: {
        json_object_object_foreach(v, key, child)
        {
            /* keys cannot hold NUL (json-c stops them there), but bytes can be bad */
            if (val_utf8_count(key, strlen(key), &cps) < 0) {
                val_err(c, "has a key that is not valid UTF-8");
                rc = -1;
                continue;
            }
            size_t mark = val_push_key(c, key);
            if (child && val_scan(c, child) < 0)
                rc = -1;
            val_pop(c, mark);
        }
        return rc;
    }
    case json_type_int:
        /* json-c holds integers above INT64_MAX as unsigned; those beyond
         * 64 bits were refused by jsonbody.c while their text was at hand. */
        if (json_object_get_int64(v) == INT64_MAX && json_object_get_uint64(v) > INT64_MAX) {
            val_err(c, "is an integer beyond the signed 64-bit range");
            return -1;
        }
        return 0;
    case json_type_double: {
        /* json-c keeps the text of a parsed double: the rule is on that. */
        const char *text = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
        const char *why = isfinite(json_object_get_double(v))
                              ? jsonnum_problem(text, strlen(text))
                              : "is beyond the range of a double (about ±1.8e308)";
        if (why) {
            val_err(c, "%s", why);
            return -1;
        }
        return 0;
    }
    default:
        return 0;
    }
}

int validate_json_value(json_object *v, const char *path, struct verr_list *errs)
{
    struct val_ctx c = {.errs = errs};
    strbuf_init(&c.path);
    strbuf_adds(&c.path, path);
    int rc = val_scan(&c, v);
    strbuf_cleanup(&c.path);
    return rc;
}

/*
 * A new reference to a copy of v for the output, so that the result owns
 * nothing of the request. Should json-c fail to copy (an object with a custom
 * serializer, or no memory), the value is shared instead: neither tree is
 * changed afterwards, so sharing is still correct.
 */
static json_object *val_copy(json_object *v)
{
    json_object *copy = NULL;
    if (!v)
        return NULL;
    if (json_object_deep_copy(v, &copy, NULL) == 0)
        return copy;
    return json_object_get(v);
}

/* ------------------------------------------------------------------------ */
/* Actions                                                                   */
/* ------------------------------------------------------------------------ */

/* ------------------------------------------------------------------------ */
/* Placeholders (API.md, "Webhooks v2"; grammar in placeholder.h)            */
/* ------------------------------------------------------------------------ */

static int val_ph_found(void *ctx, const char *s, const struct ph_span *p)
{
    (void)s;
    struct val_ctx *c = ctx;
    char pbuf[PH_SEGMENT_MAX + 1], why[160];
    const char *parent;
    if (placeholder_check(p->expr, pbuf, sizeof pbuf, &parent, why, sizeof why) == 0 && parent) {
        if (!c->parent_refs) {
            val_err(c, "placeholder {{%.64s}}: no parent can be named here", p->expr);
            return 0;
        }
        json_object *ref = val_j(json_object_new_object());
        json_object_object_add(ref, "id", val_j(json_object_new_string(parent)));
        json_object_object_add(ref, "path", val_j(json_object_new_string(val_path(c))));
        json_object_object_add(ref, "expr", val_j(json_object_new_string(p->expr)));
        json_object_array_add(c->parent_refs, ref);
    }
    return 0;
}

/* Checks the placeholders of string s (at the current path). */
static int val_placeholders(struct val_ctx *c, const char *s)
{
    char why[200];
    if (!placeholder_any(s))
        return 0;
    if (placeholder_scan(s, val_ph_found, c, why, sizeof why) < 0) {
        val_err(c, "%s", why);
        return -1;
    }
    return 0;
}

/* Placeholders of every string inside a body value. */
static void val_body_placeholders(struct val_ctx *c, json_object *v)
{
    if (json_object_is_type(v, json_type_string)) {
        (void)val_placeholders(c, json_object_get_string(v));
    } else if (json_object_is_type(v, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(v); i++) {
            size_t mark = val_push_index(c, i);
            val_body_placeholders(c, json_object_array_get_idx(v, i));
            val_pop(c, mark);
        }
    } else if (json_object_is_type(v, json_type_object)) {
        json_object_object_foreach(v, key, child)
        {
            size_t mark = val_push_key(c, key);
            if (child)
                val_body_placeholders(c, child);
            val_pop(c, mark);
        }
    }
}

/* A URL's placeholders may stand only after its authority (in the path,
 * query or fragment): the scheme, host, port and credentials are the
 * author's text, whatever the values. Checks that, and that the URL with
 * every placeholder as "x" is an absolute http(s) URL. */
static bool val_url_template_ok(struct val_ctx *c, const char *url)
{
    const char *first = strstr(url, "{{");
    const char *sep = strstr(url, "://");
    if (!sep || sep > first || !strpbrk(sep + 3, "/?#") || strpbrk(sep + 3, "/?#") > first) {
        val_err(c, "placeholders may only stand after the host (in the path, query or "
                   "fragment)");
        return false;
    }
    if (val_placeholders(c, url) < 0)
        return false;
    struct strbuf b;
    strbuf_init(&b);
    for (const char *p = url; *p;) {
        const char *open = strstr(p, "{{"), *close = open ? strstr(open, "}}") : NULL;
        if (!close) {
            strbuf_adds(&b, p);
            break;
        }
        strbuf_add(&b, p, (size_t)(open - p));
        strbuf_adds(&b, "x");
        p = close + 2;
    }
    bool ok = url_webhook_ok(b.data ? b.data : "");
    strbuf_cleanup(&b);
    if (!ok)
        val_err(c, "must be an absolute http or https URL");
    return ok;
}

static void val_url(struct val_ctx *c, json_object *params, json_object *out)
{
    size_t mark = val_push_key(c, "url");
    json_object *v = val_field(params, "url");
    size_t cps;
    if (!v) {
        val_err(c, "is required");
    } else if (!json_object_is_type(v, json_type_string)) {
        val_err(c, "must be an absolute http or https URL");
    } else if (val_storable(c, v, &cps) == 0) {
        const char *url = json_object_get_string(v);
        if (strlen(url) > VAL_URL_MAX)
            val_err(c, "must be at most %d bytes", VAL_URL_MAX);
        else if (placeholder_any(url) ? !val_url_template_ok(c, url) : !url_webhook_ok(url)) {
            if (!placeholder_any(url))
                val_err(c, "must be an absolute http or https URL");
        } else
            json_object_object_add(out, "url", val_j(json_object_new_string(url)));
    }
    val_pop(c, mark);
}

static void val_verb(struct val_ctx *c, json_object *params, json_object *out)
{
    json_object *v = val_field(params, "verb");
    const char *verb = "Post";
    if (v) {
        verb = json_object_is_type(v, json_type_string)
                   ? validate_verb_name(json_object_get_string(v))
                   : NULL;
        if (!verb) {
            size_t mark = val_push_key(c, "verb");
            val_err(c, "must be one of Get, Post, Put, Patch, Delete");
            val_pop(c, mark);
            verb = "Post";
        }
    }
    json_object_object_add(out, "verb", val_j(json_object_new_string(verb)));
}

/* Checks a header value (at the current path). */
static int val_header_value(struct val_ctx *c, json_object *v)
{
    size_t cps;
    if (!v || !json_object_is_type(v, json_type_string)) {
        val_err(c, "must be a string");
        return -1;
    }
    if (val_storable(c, v, &cps) < 0)
        return -1;
    if (!webhook_header_value_ok(json_object_get_string(v))) {
        val_err(c, "must not contain control characters such as CR or LF");
        return -1;
    }
    if ((size_t)json_object_get_string_len(v) > VAL_HEADER_VALUE_MAX) {
        val_err(c, "must be at most %d bytes", VAL_HEADER_VALUE_MAX);
        return -1;
    }
    return val_placeholders(c, json_object_get_string(v));
}

static void val_header(struct val_ctx *c, const char *name, json_object *v, json_object *out)
{
    if (!webhook_header_name_ok(name)) {
        /* echo the name only when it is printable ASCII, so the error is valid JSON */
        bool printable = true;
        for (const char *p = name; *p; p++)
            printable = printable && *p >= 0x20 && *p < 0x7F;
        if (printable && *name)
            val_err(c, "\"%s\" is not a valid header name (1 to %d token characters)", name,
                    VAL_HEADER_NAME_MAX);
        else
            val_err(c, "has a header name that is not a valid token (1 to %d characters)",
                    VAL_HEADER_NAME_MAX);
        return;
    }
    size_t mark = val_push_key(c, name);
    if (webhook_header_refused(name)) {
        /* framing or the service's own: would corrupt or spoof calls */
        val_err(c, "is a header the service sets itself or that frames the request; a task "
                   "may not set any of %s", webhook_header_refused_list());
    } else if (val_header_value(c, v) == 0)
        json_object_object_add(out, name, val_j(json_object_new_string(json_object_get_string(v))));
    val_pop(c, mark);
}

static void val_headers(struct val_ctx *c, json_object *params, json_object *out)
{
    json_object *v = val_field(params, "headers");
    if (!v)
        return;
    size_t mark = val_push_key(c, "headers");
    if (!json_object_is_type(v, json_type_object)) {
        val_err(c, "must be an object of strings");
    } else {
        json_object *headers = val_j(json_object_new_object());
        json_object_object_foreach(v, name, value)
        {
            val_header(c, name, value, headers);
        }
        json_object_object_add(out, "headers", headers);
    }
    val_pop(c, mark);
}

/* A condition on a JSON value (API.md, "Webhooks v2"): {"path": p} with
 * exactly one of "equals" (any JSON value), "in" (an array of at most
 * VAL_IN_MAX values) or "exists" (true or false). Returns its normalized
 * form, or NULL (reported). */
#define VAL_IN_MAX 64
static json_object *val_cond(struct val_ctx *c, json_object *v)
{
    if (!v || !json_object_is_type(v, json_type_object)) {
        val_err(c, "must be an object {\"path\": ..., and \"equals\", \"in\" or \"exists\"}");
        return NULL;
    }
    json_object *path = val_field(v, "path"), *eq = NULL, *in = NULL, *ex = NULL;
    bool has_eq = json_object_object_get_ex(v, "equals", &eq);
    bool has_in = json_object_object_get_ex(v, "in", &in);
    bool has_ex = json_object_object_get_ex(v, "exists", &ex);
    int bad = 0;
    size_t mark = val_push_key(c, "path");
    if (!path || !json_object_is_type(path, json_type_string) ||
        !placeholder_path_ok(json_object_get_string(path))) {
        val_err(c, "must be a dot-separated path of keys and array indexes (at most %d "
                   "segments, %d bytes)", PH_DEPTH_MAX, PH_EXPR_MAX);
        bad++;
    }
    val_pop(c, mark);
    if (has_eq + has_in + has_ex != 1) {
        val_err(c, "must have exactly one of \"equals\", \"in\" and \"exists\"");
        bad++;
    } else if (has_in && (!in || !json_object_is_type(in, json_type_array) ||
                          json_object_array_length(in) > VAL_IN_MAX)) {
        mark = val_push_key(c, "in");
        val_err(c, "must be an array of at most %d values", VAL_IN_MAX);
        val_pop(c, mark);
        bad++;
    } else if (has_ex && (!ex || !json_object_is_type(ex, json_type_boolean))) {
        mark = val_push_key(c, "exists");
        val_err(c, "must be true or false");
        val_pop(c, mark);
        bad++;
    } else if (has_eq || has_in) {
        mark = val_push_key(c, has_eq ? "equals" : "in");
        if (val_scan(c, has_eq ? eq : in) < 0)
            bad++;
        val_pop(c, mark);
    }
    if (bad)
        return NULL;
    json_object *o = val_j(json_object_new_object());
    json_object_object_add(o, "path", val_j(json_object_new_string(json_object_get_string(path))));
    if (has_eq)
        json_object_object_add(o, "equals", eq ? val_copy(eq) : NULL);
    else if (has_in)
        json_object_object_add(o, "in", val_copy(in));
    else
        json_object_object_add(o, "exists", val_j(json_object_new_boolean(json_object_get_boolean(ex))));
    return o;
}

static const char *const VAL_THEN[] = {"accept", "succeed", "fail", "retry"};

/* One entry of when.status: a code 100..599 or a class "1xx".."5xx". */
static json_object *val_status_match(struct val_ctx *c, json_object *v)
{
    long long code;
    if (val_int_value(v, 100, 599, &code) == 0)
        return val_j(json_object_new_int64(code));
    if (json_object_is_type(v, json_type_string)) {
        const char *s = json_object_get_string(v);
        if (strlen(s) == 3 && s[0] >= '1' && s[0] <= '5' && (s[1] == 'x' || s[1] == 'X') &&
            (s[2] == 'x' || s[2] == 'X')) {
            char cls[4] = {s[0], 'x', 'x', '\0'};
            return val_j(json_object_new_string(cls));
        }
    }
    val_err(c, "must be a status code 100..599 or a class \"1xx\" to \"5xx\"");
    return NULL;
}

/* One rule of params.response.rules. */
static json_object *val_response_rule(struct val_ctx *c, json_object *r, bool is_start)
{
    if (!json_object_is_type(r, json_type_object)) {
        val_err(c, "must be an object {\"when\": ..., \"then\": ...}");
        return NULL;
    }
    json_object *o = val_j(json_object_new_object());
    json_object *when = val_field(r, "when"), *then = val_field(r, "then");
    json_object *w = val_j(json_object_new_object());
    size_t mark = val_push_key(c, "when");
    if (when && !json_object_is_type(when, json_type_object)) {
        val_err(c, "must be an object with \"status\" and/or \"json\"");
    } else if (when) {
        json_object *st = val_field(when, "status"), *js = val_field(when, "json");
        if (st) {
            size_t smark = val_push_key(c, "status");
            if (!json_object_is_type(st, json_type_array) || json_object_array_length(st) == 0 ||
                json_object_array_length(st) > VAL_IN_MAX) {
                val_err(c, "must be an array of 1 to %d codes or classes", VAL_IN_MAX);
            } else {
                json_object *list = val_j(json_object_new_array());
                for (size_t i = 0; i < json_object_array_length(st); i++) {
                    size_t imark = val_push_index(c, i);
                    json_object *m = val_status_match(c, json_object_array_get_idx(st, i));
                    if (m)
                        json_object_array_add(list, m);
                    val_pop(c, imark);
                }
                json_object_object_add(w, "status", list);
            }
            val_pop(c, smark);
        }
        if (js) {
            size_t jmark = val_push_key(c, "json");
            json_object *cond = val_cond(c, js);
            if (cond)
                json_object_object_add(w, "json", cond);
            val_pop(c, jmark);
        }
    }
    val_pop(c, mark);
    json_object_object_add(o, "when", w);
    mark = val_push_key(c, "then");
    const char *verdict = NULL;
    for (size_t i = 0; then && json_object_is_type(then, json_type_string) &&
                       i < sizeof VAL_THEN / sizeof *VAL_THEN; i++)
        if (strcasecmp(json_object_get_string(then), VAL_THEN[i]) == 0)
            verdict = VAL_THEN[i];
    if (!verdict)
        val_err(c, "must be one of accept, succeed, fail, retry");
    else if (strcmp(verdict, "succeed") == 0 && !is_start)
        val_err(c, "succeed is for on_start actions only (it ends the task)");
    else
        json_object_object_add(o, "then", val_j(json_object_new_string(verdict)));
    val_pop(c, mark);
    return o;
}

/* params.response: store_output (on_start only) and rules. */
static void val_response(struct val_ctx *c, json_object *params, json_object *out, bool is_start)
{
    json_object *v = val_field(params, "response");
    if (!v)
        return;
    size_t mark = val_push_key(c, "response");
    if (!json_object_is_type(v, json_type_object)) {
        val_err(c, "must be an object with \"store_output\" and/or \"rules\"");
        val_pop(c, mark);
        return;
    }
    json_object *o = val_j(json_object_new_object());
    json_object *so = val_field(v, "store_output");
    if (so) {
        size_t smark = val_push_key(c, "store_output");
        if (!json_object_is_type(so, json_type_boolean))
            val_err(c, "must be true or false");
        else if (json_object_get_boolean(so) && !is_start)
            val_err(c, "is for on_start actions only");
        else
            json_object_object_add(o, "store_output",
                                   val_j(json_object_new_boolean(json_object_get_boolean(so))));
        val_pop(c, smark);
    }
    json_object *rules;
    if (val_opt_array(c, v, "rules", VAL_LIST_MAX, &rules) == 0 && rules) {
        size_t rmark = val_push_key(c, "rules");
        json_object *list = val_j(json_object_new_array());
        for (size_t i = 0; i < json_object_array_length(rules); i++) {
            size_t imark = val_push_index(c, i);
            json_object *r = val_response_rule(c, json_object_array_get_idx(rules, i), is_start);
            if (r)
                json_object_array_add(list, r);
            val_pop(c, imark);
        }
        json_object_object_add(o, "rules", list);
        val_pop(c, rmark);
    }
    json_object_object_add(out, "response", o);
    val_pop(c, mark);
}

/* An action's params. partial (an action that names a template): every key
 * optional, none given a default; the template's keys fill the others when
 * the call is made. is_start: an on_start action's (response rules may end
 * the task). */
static void val_params(struct val_ctx *c, json_object *action, json_object *out, bool is_start,
                       bool partial)
{
    size_t mark = val_push_key(c, "params");
    json_object *params = val_field(action, "params");
    if (!params && partial) {
        json_object_object_add(out, "params", val_j(json_object_new_object()));
    } else if (!params) {
        val_err(c, "is required");
    } else if (!json_object_is_type(params, json_type_object)) {
        val_err(c, "must be an object");
    } else {
        json_object *p = val_j(json_object_new_object());
        if (!partial || val_field(params, "url"))
            val_url(c, params, p);
        if (!partial || val_field(params, "verb"))
            val_verb(c, params, p);
        json_object *body = val_field(params, "body");
        if (body) {
            size_t bmark = val_push_key(c, "body");
            if (val_scan(c, body) == 0) {
                val_body_placeholders(c, body);
                json_object_object_add(p, "body", val_copy(body));
            }
            val_pop(c, bmark);
        }
        val_headers(c, params, p);
        val_response(c, params, p, is_start);
        /* Per-action overrides of TASKRUNNER_WEBHOOK_TIMEOUT_MS and
         * TASKRUNNER_RETRY_ATTEMPTS. */
        long long n;
        if (val_field(params, "timeout_ms") && val_opt_int(c, params, "timeout_ms", 1, 300000, 0, &n) == 0)
            json_object_object_add(p, "timeout_ms", val_j(json_object_new_int64(n)));
        if (val_field(params, "max_attempts") && val_opt_int(c, params, "max_attempts", 1, 50, 0, &n) == 0)
            json_object_object_add(p, "max_attempts", val_j(json_object_new_int64(n)));
        json_object_object_add(out, "params", p);
    }
    val_pop(c, mark);
}

/* An action's "when": {"output": cond} or {"metadata": cond}; end and
 * cancel actions only (decided when the task ends). */
static void val_action_when(struct val_ctx *c, json_object *action, json_object *out,
                            bool is_start)
{
    json_object *w = val_field(action, "when");
    if (!w)
        return;
    size_t mark = val_push_key(c, "when");
    json_object *o = NULL, *m = NULL;
    bool has_o = json_object_is_type(w, json_type_object) &&
                 json_object_object_get_ex(w, "output", &o);
    bool has_m = json_object_is_type(w, json_type_object) &&
                 json_object_object_get_ex(w, "metadata", &m);
    if (is_start) {
        val_err(c, "is for end and cancel actions only (decided when the task ends)");
    } else if (!json_object_is_type(w, json_type_object) || has_o + has_m != 1 ||
               json_object_object_length(w) != 1) {
        val_err(c, "must be {\"output\": {...}} or {\"metadata\": {...}}");
    } else {
        size_t kmark = val_push_key(c, has_o ? "output" : "metadata");
        json_object *cond = val_cond(c, has_o ? o : m);
        val_pop(c, kmark);
        if (cond) {
            json_object *n = val_j(json_object_new_object());
            json_object_object_add(n, has_o ? "output" : "metadata", cond);
            json_object_object_add(out, "when", n);
        }
    }
    val_pop(c, mark);
}

/* The action's own kind and trigger, when given, must agree with its place. */
static void val_action_kind_trigger(struct val_ctx *c, json_object *action, const char *trigger,
                                    const char *where)
{
    json_object *kind = val_field(action, "kind");
    if (kind && (!json_object_is_type(kind, json_type_string) ||
                 strcasecmp(json_object_get_string(kind), "Webhook") != 0)) {
        size_t mark = val_push_key(c, "kind");
        val_err(c, "must be \"Webhook\"");
        val_pop(c, mark);
    }
    json_object *trig = val_field(action, "trigger");
    if (trig && (!json_object_is_type(trig, json_type_string) ||
                 strcasecmp(json_object_get_string(trig), trigger) != 0)) {
        size_t mark = val_push_key(c, "trigger");
        val_err(c, "must be \"%s\" for an %s action", trigger, where);
        val_pop(c, mark);
    }
}

/* A template's name (a ref, or a name in a path): 1..255 characters. */
static int val_template_name(struct val_ctx *c, json_object *v, const char **out)
{
    return val_text(c, v, VAL_NAME_MAX, out);
}

/* Checks one action (at the current path) and returns its normalized form.
 * {"ref": name, "params": {...}} names an action template: it keeps the
 * name ("ref"), the params given (partial) and where it stands ("at", for
 * the error of an unknown name, which the database finds). */
static json_object *val_action(struct val_ctx *c, json_object *action, const char *trigger,
                               const char *condition, const char *where)
{
    char id[37];
    if (!json_object_is_type(action, json_type_object)) {
        val_err(c, "must be an action object");
        return NULL;
    }
    val_action_kind_trigger(c, action, trigger, where);
    json_object *ref = val_field(action, "ref");
    const char *ref_name = NULL;
    if (ref) {
        size_t mark = val_push_key(c, "ref");
        (void)val_template_name(c, ref, &ref_name);
        val_pop(c, mark);
    }
    json_object *out = val_j(json_object_new_object());
    val_new_uuid(id);
    json_object_object_add(out, "id", val_j(json_object_new_string(id)));
    json_object_object_add(out, "kind", val_j(json_object_new_string("Webhook")));
    json_object_object_add(out, "trigger", val_j(json_object_new_string(trigger)));
    json_object_object_add(out, "condition",
                           condition ? val_j(json_object_new_string(condition)) : NULL);
    bool is_start = strcmp(trigger, webhook_trigger_name(TRIGGER_START)) == 0;
    val_params(c, action, out, is_start, ref != NULL);
    val_action_when(c, action, out, is_start);
    if (ref_name) {
        json_object_object_add(out, "ref", val_j(json_object_new_string(ref_name)));
        json_object_object_add(out, "at", val_j(json_object_new_string(val_path(c))));
    }
    return out;
}

/* An optional list of actions under key, appended to actions. */
static void val_action_list(struct val_ctx *c, json_object *task, const char *key,
                            const char *trigger, const char *condition, json_object *actions)
{
    json_object *arr;
    if (val_opt_array(c, task, key, VAL_LIST_MAX, &arr) < 0 || !arr)
        return;
    size_t mark = val_push_key(c, key);
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        size_t imark = val_push_index(c, i);
        json_object *a = val_action(c, json_object_array_get_idx(arr, i), trigger, condition, key);
        if (a)
            json_object_array_add(actions, a);
        val_pop(c, imark);
    }
    val_pop(c, mark);
}

static json_object *val_actions(struct val_ctx *c, json_object *task)
{
    json_object *actions = val_j(json_object_new_array());
    size_t mark = val_push_key(c, "on_start");
    json_object *start = val_field(task, "on_start");
    if (!start) {
        val_err(c, "is required");
    } else {
        json_object *a = val_action(c, start, webhook_trigger_name(TRIGGER_START), NULL, "on_start");
        if (a)
            json_object_array_add(actions, a);
    }
    val_pop(c, mark);
    val_action_list(c, task, "on_success", webhook_trigger_name(TRIGGER_END),
                    task_status_name(TASK_SUCCESS), actions);
    val_action_list(c, task, "on_failure", webhook_trigger_name(TRIGGER_END),
                    task_status_name(TASK_FAILURE), actions);
    val_action_list(c, task, "on_cancel", webhook_trigger_name(TRIGGER_CANCEL), NULL, actions);
    return actions;
}

/* ------------------------------------------------------------------------ */
/* Rules and dedupe matchers                                                 */
/* ------------------------------------------------------------------------ */

/* What a matcher needs to know about its task. */
struct val_task_info {
    const char *kind;    /* the task's kind, the matchers' default; NULL if invalid */
    json_object *meta;   /* the task's metadata object, or NULL */
    bool meta_checkable; /* false when metadata itself was invalid: no knock-on errors */
};

static void val_matcher_field(struct val_ctx *c, json_object *v, const struct val_task_info *t,
                              json_object *fields)
{
    size_t cps;
    if (!json_object_is_type(v, json_type_string)) {
        val_err(c, "must be a string");
        return;
    }
    if (val_storable(c, v, &cps) < 0)
        return;
    const char *name = json_object_get_string(v);
    if (t->meta_checkable && !(t->meta && json_object_object_get_ex(t->meta, name, NULL)))
        val_err(c, "\"%s\" is not a key of the task's metadata", name);
    json_object_array_add(fields, val_j(json_object_new_string(name)));
}

static json_object *val_matcher_fields(struct val_ctx *c, json_object *m,
                                       const struct val_task_info *t)
{
    json_object *fields = val_j(json_object_new_array());
    json_object *arr;
    if (val_opt_array(c, m, "fields", 0, &arr) < 0 || !arr)
        return fields;
    size_t mark = val_push_key(c, "fields");
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        size_t imark = val_push_index(c, i);
        val_matcher_field(c, json_object_array_get_idx(arr, i), t, fields);
        val_pop(c, imark);
    }
    val_pop(c, mark);
    return fields;
}

/* Checks matcher m (at the current path); NULL means all defaults (json-c's
 * getters take NULL as an object without keys). */
static json_object *val_matcher(struct val_ctx *c, json_object *m, const struct val_task_info *t,
                                const char *default_status)
{
    if (m && !json_object_is_type(m, json_type_object)) {
        val_err(c, "must be an object");
        return NULL;
    }
    const char *kind = t->kind ? t->kind : "";
    if (val_field(m, "kind"))
        (void)val_req_text(c, m, "kind", VAL_KIND_MAX, &kind);
    const char *status = default_status;
    json_object *sv = val_field(m, "status");
    if (sv) {
        status = json_object_is_type(sv, json_type_string)
                     ? validate_status_name(json_object_get_string(sv))
                     : NULL;
        if (!status) {
            size_t mark = val_push_key(c, "status");
            val_err(c, "must be one of %s", task_status_list());
            val_pop(c, mark);
            status = default_status;
        }
    }
    json_object *out = val_j(json_object_new_object());
    json_object_object_add(out, "kind", val_j(json_object_new_string(kind)));
    json_object_object_add(out, "status", val_j(json_object_new_string(status)));
    json_object_object_add(out, "fields", val_matcher_fields(c, m, t));
    return out;
}

static void val_rule_type(struct val_ctx *c, json_object *rule)
{
    size_t mark = val_push_key(c, "type");
    json_object *v = val_field(rule, "type");
    const char *s = v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
    if (!v)
        val_err(c, "is required");
    else if (strcasecmp(s, "Concurrency") != 0 && strcasecmp(s, "Concurency") != 0)
        val_err(c, "must be \"Concurrency\"");
    val_pop(c, mark);
}

/* max_concurrency, or the original service's spelling max_concurency. */
static long long val_rule_max(struct val_ctx *c, json_object *rule)
{
    const char *key = "max_concurrency";
    json_object *right = val_field(rule, key), *old = val_field(rule, "max_concurency");
    long long max = 1;
    if (right && old) {
        size_t mark = val_push_key(c, "max_concurency");
        val_err(c, "give either max_concurrency or max_concurency, not both");
        val_pop(c, mark);
        return max;
    }
    if (!right && old)
        key = "max_concurency";
    if (!right && !old) {
        size_t mark = val_push_key(c, key);
        val_err(c, "is required");
        val_pop(c, mark);
        return max;
    }
    (void)val_opt_int(c, rule, key, 1, 100000, 1, &max);
    return max;
}

static json_object *val_rule(struct val_ctx *c, json_object *rule, const struct val_task_info *t)
{
    if (!json_object_is_type(rule, json_type_object)) {
        val_err(c, "must be an object");
        return NULL;
    }
    json_object *ref = val_field(rule, "ref");
    if (ref) {
        /* a rule template, read at every check (sql/functions/templates.sql) */
        const char *name = NULL;
        size_t mark = val_push_key(c, "ref");
        int rc = val_template_name(c, ref, &name);
        val_pop(c, mark);
        if (json_object_object_length(rule) != 1)
            val_err(c, "a rule that names a template (\"ref\") takes no other key");
        if (rc < 0)
            return NULL;
        json_object *out = val_j(json_object_new_object());
        json_object_object_add(out, "ref", val_j(json_object_new_string(name)));
        return out;
    }
    val_rule_type(c, rule);
    long long max = val_rule_max(c, rule);
    size_t mark = val_push_key(c, "matcher");
    json_object *matcher = val_matcher(c, val_field(rule, "matcher"), t, "Running");
    val_pop(c, mark);
    json_object *out = val_j(json_object_new_object());
    json_object_object_add(out, "type", val_j(json_object_new_string("Concurrency")));
    json_object_object_add(out, "max_concurrency", val_j(json_object_new_int64(max)));
    json_object_object_add(out, "matcher", matcher);
    return out;
}

/* rules (is_rules) or dedupe_strategy of a task: an array of normalized entries. */
static json_object *val_rule_list(struct val_ctx *c, json_object *task, const char *key,
                                  bool is_rules, const struct val_task_info *t)
{
    json_object *out = val_j(json_object_new_array());
    json_object *arr;
    if (val_opt_array(c, task, key, VAL_LIST_MAX, &arr) < 0 || !arr)
        return out;
    size_t mark = val_push_key(c, key);
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        size_t imark = val_push_index(c, i);
        json_object *v = json_object_array_get_idx(arr, i);
        json_object *e = NULL;
        if (!v) /* a null entry: not "all defaults", most likely a client bug */
            val_err(c, "must be an object");
        else
            e = is_rules ? val_rule(c, v, t) : val_matcher(c, v, t, task_status_name(TASK_PENDING));
        if (e)
            json_object_array_add(out, e);
        val_pop(c, imark);
    }
    val_pop(c, mark);
    return out;
}

/* ------------------------------------------------------------------------ */
/* Task fields                                                               */
/* ------------------------------------------------------------------------ */

/* metadata: object or null, at most VAL_METADATA_MAX bytes; sets t->meta. */
static json_object *val_metadata(struct val_ctx *c, json_object *task, struct val_task_info *t)
{
    json_object *v = val_field(task, "metadata");
    t->meta = NULL;
    t->meta_checkable = true;
    if (!v)
        return NULL;
    size_t mark = val_push_key(c, "metadata");
    json_object *out = NULL;
    size_t len = 0;
    if (!json_object_is_type(v, json_type_object)) {
        val_err(c, "must be an object or null");
        t->meta_checkable = false;
    } else {
        t->meta = v;
        json_object_to_json_string_length(
            v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
        if (len > VAL_METADATA_MAX)
            val_err(c, "must be at most %d bytes as JSON (is %zu)", VAL_METADATA_MAX, len);
        else if (val_scan(c, v) == 0)
            out = val_copy(v);
    }
    val_pop(c, mark);
    return out;
}

static void val_add_text(json_object *obj, const char *key, const char *s)
{
    json_object_object_add(obj, key, s ? val_j(json_object_new_string(s)) : NULL);
}

/* The retry policy of a task (API.md, "Retries"): retry_backoff's members,
 * each optional with the contract's default; NULL when not given (the
 * defaults then apply) or not valid (reported). */
static json_object *val_retry_backoff(struct val_ctx *c, json_object *task)
{
    static const char *const members[] = {"initial_ms", "factor", "max_ms", "jitter"};
    static const char *const jitters[] = {"full", "equal", "none"};
    json_object *v = val_field(task, "retry_backoff");
    if (!v)
        return NULL;
    size_t mark = val_push_key(c, "retry_backoff");
    size_t errors = c->errs->n;
    json_object *out = NULL;
    if (!json_object_is_type(v, json_type_object)) {
        val_err(c, "must be an object with initial_ms, factor, max_ms and jitter");
        goto out;
    }
    json_object_object_foreach(v, key, value)
    {
        (void)value;
        bool known = false;
        for (size_t i = 0; i < sizeof members / sizeof *members; i++)
            known = known || strcmp(key, members[i]) == 0;
        if (!known) {
            size_t m = val_push_key(c, key);
            val_err(c, "is not a member of retry_backoff (initial_ms, factor, max_ms, jitter)");
            val_pop(c, m);
        }
    }
    long long initial, max_ms;
    (void)val_opt_int(c, v, "initial_ms", 1, 86400000, 1000, &initial);
    (void)val_opt_int(c, v, "max_ms", 1, 2592000000LL, initial > 3600000 ? initial : 3600000,
                      &max_ms);
    if (max_ms < initial) {
        size_t m = val_push_key(c, "max_ms");
        val_err(c, "must be at least initial_ms (%lld)", initial);
        val_pop(c, m);
    }
    double factor = 2;
    json_object *f = val_field(v, "factor");
    if (f) {
        bool number = json_object_is_type(f, json_type_int) || json_object_is_type(f, json_type_double);
        factor = number ? json_object_get_double(f) : 0;
        if (!number || !isfinite(factor) || factor < 1 || factor > 10) {
            size_t m = val_push_key(c, "factor");
            val_err(c, "must be a number from 1 to 10");
            val_pop(c, m);
        }
    }
    const char *jitter = "full";
    json_object *j = val_field(v, "jitter");
    if (j) {
        jitter = json_object_is_type(j, json_type_string)
                     ? val_lookup(jitters, sizeof jitters / sizeof *jitters, json_object_get_string(j))
                     : NULL;
        if (!jitter) {
            size_t m = val_push_key(c, "jitter");
            val_err(c, "must be one of full, equal, none");
            val_pop(c, m);
        }
    }
    if (c->errs->n == errors) {
        out = val_j(json_object_new_object());
        json_object_object_add(out, "initial_ms", val_j(json_object_new_int64(initial)));
        json_object_object_add(out, "factor",
                               val_j(factor == (double)(long long)factor
                                         ? json_object_new_int64((long long)factor)
                                         : json_object_new_double(factor)));
        json_object_object_add(out, "max_ms", val_j(json_object_new_int64(max_ms)));
        json_object_object_add(out, "jitter", val_j(json_object_new_string(jitter)));
    }
out:
    val_pop(c, mark);
    return out;
}

/* fair_by (API.md, "Fair claiming"): 1 to VAL_FAIR_BY_MAX metadata field
 * names, each a key of the task's metadata; NULL when absent, null or not
 * valid (reported at its path, "[i].fair_by[j]"). */
#define VAL_FAIR_BY_MAX 8
static json_object *val_fair_by(struct val_ctx *c, json_object *task,
                                const struct val_task_info *t)
{
    json_object *arr;
    json_object *v = val_field(task, "fair_by");
    if (!v || json_object_is_type(v, json_type_null))
        return NULL;
    if (val_opt_array(c, task, "fair_by", VAL_FAIR_BY_MAX, &arr) < 0 || !arr)
        return NULL;
    size_t mark = val_push_key(c, "fair_by");
    size_t errors = c->errs->n;
    json_object *out = val_j(json_object_new_array());
    if (json_object_array_length(arr) == 0)
        val_err(c, "must name at least one metadata field");
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        size_t imark = val_push_index(c, i);
        val_matcher_field(c, json_object_array_get_idx(arr, i), t, out);
        val_pop(c, imark);
    }
    val_pop(c, mark);
    if (c->errs->n != errors) {
        json_object_put(out);
        return NULL;
    }
    return out;
}

/* Whether the n digits at s are all digits; their value in *v. */
static bool val_digits(const char *s, int n, int *v)
{
    *v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        *v = *v * 10 + (s[i] - '0');
    }
    return true;
}

/* Whether s is an RFC 3339 date-time ("2026-12-24T08:00:00Z", any offset,
 * optional fraction of up to 9 digits) naming a real date and time. */
bool validate_is_rfc3339(const char *s)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, mo, d, h, mi, sec, oh, om;
    size_t n = s ? strlen(s) : 0;
    if (n < 20 || !val_digits(s, 4, &y) || s[4] != '-' || !val_digits(s + 5, 2, &mo) ||
        s[7] != '-' || !val_digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') ||
        !val_digits(s + 11, 2, &h) || s[13] != ':' || !val_digits(s + 14, 2, &mi) ||
        s[16] != ':' || !val_digits(s + 17, 2, &sec))
        return false;
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 ||
        sec > 59)
        return false;
    if (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
        return false;
    const char *p = s + 19;
    if (*p == '.') {
        size_t digits = strspn(p + 1, "0123456789");
        if (digits < 1 || digits > 9)
            return false;
        p += 1 + digits;
    }
    if ((p[0] == 'Z' || p[0] == 'z') && p[1] == '\0')
        return true;
    return (p[0] == '+' || p[0] == '-') && val_digits(p + 1, 2, &oh) && p[3] == ':' &&
           val_digits(p + 4, 2, &om) && p[6] == '\0' && oh <= 23 && om <= 59;
}

/* The optional scheduled_at of a task: an RFC 3339 date-time, normalized
 * to upper-case T and Z; NULL when not given or invalid (reported). */
static json_object *val_scheduled_at(struct val_ctx *c, json_object *task)
{
    json_object *v = val_field(task, "scheduled_at");
    if (!v)
        return NULL;
    if (!json_object_is_type(v, json_type_string) ||
        !validate_is_rfc3339(json_object_get_string(v))) {
        size_t mark = val_push_key(c, "scheduled_at");
        val_err(c, "must be an RFC 3339 date-time, e.g. \"2026-12-24T08:00:00Z\"");
        val_pop(c, mark);
        return NULL;
    }
    char buf[64];
    snprintf(buf, sizeof buf, "%s", json_object_get_string(v));
    for (char *q = buf; *q; q++)
        if (*q == 't' || *q == 'z')
            *q = (char)(*q - 'a' + 'A');
    return val_j(json_object_new_string(buf));
}

/* trigger_rule (API.md, "Trigger rules and outputs"): one of the rule names,
 * in any letter case; the normalized task gets its lower-case spelling, or
 * nothing when it is not given (the per-link requires_success decides). */
static const char *const VAL_TRIGGER_RULES[] = {"all_success", "all_done",    "none_failed",
                                                "one_success", "one_failed", "all_failed"};

static void val_trigger_rule(struct val_ctx *c, json_object *task, json_object *o)
{
    json_object *v = val_field(task, "trigger_rule");
    if (!v)
        return;
    if (json_object_is_type(v, json_type_string)) {
        const char *name = json_object_get_string(v);
        for (size_t i = 0; i < sizeof VAL_TRIGGER_RULES / sizeof *VAL_TRIGGER_RULES; i++) {
            if (strcasecmp(name, VAL_TRIGGER_RULES[i]) == 0) {
                val_add_text(o, "trigger_rule", VAL_TRIGGER_RULES[i]);
                return;
            }
        }
    }
    size_t mark = val_push_key(c, "trigger_rule");
    val_err(c, "must be one of all_success, all_done, none_failed, one_success, one_failed, "
               "all_failed");
    val_pop(c, mark);
}

/* group (API.md, "Groups, batch controls and preemption"): 1..255
 * characters; absent or null: the task is in no group. */
static void val_group(struct val_ctx *c, json_object *task, json_object *o)
{
    json_object *v = val_field(task, "group");
    const char *name;
    if (!v || json_object_is_type(v, json_type_null))
        return;
    size_t mark = val_push_key(c, "group");
    if (val_text(c, v, VAL_GROUP_MAX, &name) == 0)
        val_add_text(o, "group", name);
    val_pop(c, mark);
}

/* preemptible (API.md, "Groups, batch controls and preemption"): a
 * boolean, false when absent or null. */
static void val_preemptible(struct val_ctx *c, json_object *task, json_object *o)
{
    json_object *v = val_field(task, "preemptible");
    if (!v || json_object_is_type(v, json_type_null))
        return;
    if (json_object_is_type(v, json_type_boolean)) {
        if (json_object_get_boolean(v))
            json_object_object_add(o, "preemptible", json_object_new_boolean(1));
        return;
    }
    size_t mark = val_push_key(c, "preemptible");
    val_err(c, "must be a boolean");
    val_pop(c, mark);
}

/* Everything about one task that the second pass (dependencies) needs. */
struct val_task {
    const char *local_id; /* borrowed from the body; NULL when invalid */
    json_object *parent_refs; /* parents.<x> placeholders of its actions (owned) */
    char uuid[37];
    json_object *out;  /* the normalized task (owned) */
    json_object *deps; /* the dependencies array of the body, if valid */
};

/* First pass over one task (at the current path "[i]"). */
static void val_task_fields(struct val_ctx *c, json_object *task, struct val_task *vt)
{
    struct val_task_info info = {0};
    const char *name = NULL;
    long long timeout, priority, max_retries, expected_count;

    vt->local_id = NULL;
    (void)val_req_text(c, task, "id", VAL_ID_MAX, &vt->local_id);
    (void)val_req_text(c, task, "name", VAL_NAME_MAX, &name);
    (void)val_req_text(c, task, "kind", VAL_KIND_MAX, &info.kind);
    (void)val_opt_int(c, task, "timeout", 1, 86400, 60, &timeout);
    (void)val_opt_int(c, task, "priority", -1000, 1000, 0, &priority);
    (void)val_opt_int(c, task, "max_retries", 0, 100, 0, &max_retries);
    (void)val_opt_int(c, task, "expected_count", 0, INT32_MAX, -1, &expected_count);

    json_object *o = vt->out;
    val_new_uuid(vt->uuid);
    val_add_text(o, "id", vt->uuid);
    val_add_text(o, "local_id", vt->local_id);
    val_add_text(o, "name", name);
    val_add_text(o, "kind", info.kind);
    json_object_object_add(o, "timeout", val_j(json_object_new_int64(timeout)));
    json_object_object_add(o, "priority", val_j(json_object_new_int64(priority)));
    json_object_object_add(o, "max_retries", val_j(json_object_new_int64(max_retries)));
    json_object *backoff = val_retry_backoff(c, task);
    if (backoff)
        json_object_object_add(o, "retry_backoff", backoff);
    json_object_object_add(o, "expected_count",
                           expected_count < 0 ? NULL : val_j(json_object_new_int64(expected_count)));
    json_object *scheduled_at = val_scheduled_at(c, task);
    if (scheduled_at)
        json_object_object_add(o, "scheduled_at", scheduled_at);
    json_object_object_add(o, "metadata", val_metadata(c, task, &info));
    json_object *fair_by = val_fair_by(c, task, &info);
    if (fair_by)
        json_object_object_add(o, "fair_by", fair_by);
    json_object_object_add(o, "rules", val_rule_list(c, task, "rules", true, &info));
    json_object_object_add(o, "dedupe", val_rule_list(c, task, "dedupe_strategy", false, &info));
    c->parent_refs = vt->parent_refs = val_j(json_object_new_array());
    json_object_object_add(o, "actions", val_actions(c, task));
    c->parent_refs = NULL;
    val_trigger_rule(c, task, o);
    val_group(c, task, o);
    val_preemptible(c, task, o);
    (void)val_opt_array(c, task, "dependencies", 0, &vt->deps);
}

/* ------------------------------------------------------------------------ */
/* Local id table: open addressing, local id -> task index                   */
/* ------------------------------------------------------------------------ */

struct val_idmap {
    size_t *slots; /* task index + 1; 0 is an empty slot */
    size_t mask;
    const struct val_task *tasks;
};

static uint64_t val_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static void val_idmap_init(struct val_idmap *m, const struct val_task *tasks, size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n) /* load factor <= 1/2 keeps probes short */
        cap *= 2;
    m->slots = xcalloc(cap, sizeof *m->slots);
    m->mask = cap - 1;
    m->tasks = tasks;
}

static void val_idmap_cleanup(struct val_idmap *m)
{
    free(m->slots);
    m->slots = NULL;
}

/* The slot holding id, or the empty slot where it would go. */
static size_t *val_idmap_slot(const struct val_idmap *m, const char *id)
{
    size_t i = (size_t)val_hash(id) & m->mask;
    while (m->slots[i] && strcmp(m->tasks[m->slots[i] - 1].local_id, id) != 0)
        i = (i + 1) & m->mask;
    return &m->slots[i];
}

static size_t val_idmap_get(const struct val_idmap *m, const char *id)
{
    size_t *slot = val_idmap_slot(m, id);
    return *slot ? *slot - 1 : VAL_NONE;
}

/* Adds task idx under its local id; returns the index already there, or VAL_NONE. */
static size_t val_idmap_put(struct val_idmap *m, size_t idx)
{
    size_t *slot = val_idmap_slot(m, m->tasks[idx].local_id);
    if (*slot)
        return *slot - 1;
    *slot = idx + 1;
    return VAL_NONE;
}

/* ------------------------------------------------------------------------ */
/* Dependencies and cycles                                                   */
/* ------------------------------------------------------------------------ */

/*
 * The dependency graph in compressed rows: the parents of task i (the tasks
 * it depends on) are par[par_off[i] .. par_off[i+1]); the children likewise
 * in chi/chi_off. Only dependencies that resolved are edges.
 */
struct val_graph {
    size_t n;
    size_t *par_off, *par;
    size_t *chi_off, *chi;
};

struct val_batch {
    struct val_ctx c;
    size_t n;
    struct val_task *tasks;
    struct val_idmap ids;
    struct val_graph g;
};

/* Resolves one dependency entry of task i; returns the parent or VAL_NONE. */
static size_t val_dep(struct val_batch *b, size_t i, json_object *dep, size_t *seen,
                      bool *requires_success)
{
    struct val_ctx *c = &b->c;
    const char *id;
    size_t p;
    *requires_success = false;
    if (!json_object_is_type(dep, json_type_object)) {
        val_err(c, "must be an object");
        return VAL_NONE;
    }
    json_object *rs = val_field(dep, "requires_success");
    if (rs && !json_object_is_type(rs, json_type_boolean)) {
        size_t mark = val_push_key(c, "requires_success");
        val_err(c, "must be true or false");
        val_pop(c, mark);
    } else if (rs) {
        *requires_success = json_object_get_boolean(rs);
    }
    if (val_req_text(c, dep, "id", VAL_ID_MAX, &id) < 0)
        return VAL_NONE;
    size_t mark = val_push_key(c, "id");
    p = val_idmap_get(&b->ids, id);
    if (p == VAL_NONE) {
        val_err(c, "unknown task id \"%s\" in this batch", id);
    } else if (p == i) {
        val_err(c, "a task cannot depend on itself");
        p = VAL_NONE;
    } else if (seen[p] == i) { /* seen[p] holds the last task that named p */
        val_err(c, "duplicate dependency on \"%s\"", id);
        p = VAL_NONE;
    } else {
        seen[p] = i;
    }
    val_pop(c, mark);
    return p;
}

/* Second pass over task i: resolves its dependencies into edges and "deps". */
static void val_task_deps(struct val_batch *b, size_t i, size_t *seen, size_t *nedges)
{
    struct val_task *t = &b->tasks[i];
    json_object *deps = val_j(json_object_new_array());
    size_t n = t->deps ? json_object_array_length(t->deps) : 0;
    size_t mark = val_push_index(&b->c, i);
    size_t dmark = val_push_key(&b->c, "dependencies");
    for (size_t j = 0; j < n; j++) {
        bool req;
        size_t jmark = val_push_index(&b->c, j);
        size_t p = val_dep(b, i, json_object_array_get_idx(t->deps, j), seen, &req);
        val_pop(&b->c, jmark);
        if (p == VAL_NONE)
            continue;
        b->g.par[(*nedges)++] = p;
        json_object *d = val_j(json_object_new_object());
        json_object_object_add(d, "id", val_j(json_object_new_string(b->tasks[p].uuid)));
        json_object_object_add(d, "requires_success", val_j(json_object_new_boolean(req)));
        json_object_array_add(deps, d);
    }
    val_pop(&b->c, dmark);
    val_pop(&b->c, mark);
    /* A parents.<x> placeholder names one of its dependencies. */
    for (size_t r = 0; t->parent_refs && r < json_object_array_length(t->parent_refs); r++) {
        json_object *ref = json_object_array_get_idx(t->parent_refs, r), *id, *path, *expr;
        json_object_object_get_ex(ref, "id", &id);
        json_object_object_get_ex(ref, "path", &path);
        json_object_object_get_ex(ref, "expr", &expr);
        bool found = false;
        for (size_t j = 0; !found && j < n; j++) {
            json_object *dep = json_object_array_get_idx(t->deps, j), *did;
            found = json_object_is_type(dep, json_type_object) &&
                    json_object_object_get_ex(dep, "id", &did) &&
                    json_object_is_type(did, json_type_string) &&
                    strcmp(json_object_get_string(did), json_object_get_string(id)) == 0;
        }
        if (!found) {
            size_t pmark = b->c.path.len;
            strbuf_adds(&b->c.path, json_object_get_string(path));
            val_err(&b->c, "placeholder {{%.64s}}: \"%.64s\" is not a dependency of this task",
                    json_object_get_string(expr), json_object_get_string(id));
            val_pop(&b->c, pmark);
        }
    }
    b->g.par_off[i + 1] = *nedges;
    json_object_object_add(t->out, "deps", deps);
}

/* Fills the child rows from the parent rows. */
static void val_graph_children(struct val_graph *g)
{
    size_t e = g->par_off[g->n];
    g->chi_off = xcalloc(g->n + 1, sizeof *g->chi_off);
    g->chi = xmalloc(e * sizeof *g->chi);
    for (size_t k = 0; k < e; k++)
        g->chi_off[g->par[k] + 1]++;
    for (size_t i = 0; i < g->n; i++)
        g->chi_off[i + 1] += g->chi_off[i];
    size_t *fill = xmalloc(g->n * sizeof *fill);
    memcpy(fill, g->chi_off, g->n * sizeof *fill);
    for (size_t i = 0; i < g->n; i++)
        for (size_t k = g->par_off[i]; k < g->par_off[i + 1]; k++)
            g->chi[fill[g->par[k]]++] = i;
    free(fill);
}

static void val_graph_cleanup(struct val_graph *g)
{
    free(g->par_off);
    free(g->par);
    free(g->chi_off);
    free(g->chi);
}

/*
 * Kahn's algorithm: repeatedly removes tasks whose parents are all removed.
 * Returns the number of tasks left, which are exactly those on a cycle or
 * depending (transitively) on one; left[i] tells which.
 */
static size_t val_kahn(const struct val_graph *g, bool *left)
{
    size_t *indeg = xmalloc((g->n + 1) * sizeof *indeg);
    size_t *queue = xmalloc((g->n + 1) * sizeof *queue);
    size_t head = 0, tail = 0;
    for (size_t i = 0; i < g->n; i++) {
        indeg[i] = g->par_off[i + 1] - g->par_off[i];
        left[i] = true;
        if (indeg[i] == 0)
            queue[tail++] = i;
    }
    while (head < tail) {
        size_t v = queue[head++];
        left[v] = false;
        for (size_t k = g->chi_off[v]; k < g->chi_off[v + 1]; k++)
            if (--indeg[g->chi[k]] == 0)
                queue[tail++] = g->chi[k];
    }
    free(indeg);
    free(queue);
    return g->n - tail;
}

/*
 * Tarjan's strongly connected components over the tasks Kahn left, following
 * parent edges, without recursion (a 10,000-task cycle would be as deep).
 * Sets comp[i] to a component number (VAL_NONE for tasks not left).
 */
struct val_tarjan {
    const struct val_graph *g;
    const bool *left;
    size_t *index, *low, *comp, *stack, *calls, *cursor;
    bool *on_stack;
    size_t next_index, sp, ncomp;
};

static void val_tarjan_visit(struct val_tarjan *t, size_t root)
{
    size_t depth = 0;
    t->calls[depth++] = root;
    t->index[root] = t->low[root] = t->next_index++;
    t->cursor[root] = t->g->par_off[root];
    t->stack[t->sp++] = root, t->on_stack[root] = true;
    while (depth) {
        size_t v = t->calls[depth - 1];
        if (t->cursor[v] < t->g->par_off[v + 1]) {
            size_t w = t->g->par[t->cursor[v]++];
            if (!t->left[w])
                continue;
            if (t->index[w] == VAL_NONE) {
                t->index[w] = t->low[w] = t->next_index++;
                t->cursor[w] = t->g->par_off[w];
                t->stack[t->sp++] = w, t->on_stack[w] = true;
                t->calls[depth++] = w;
            } else if (t->on_stack[w] && t->index[w] < t->low[v]) {
                t->low[v] = t->index[w];
            }
            continue;
        }
        depth--; /* v is done: tell its caller, and close its component if it is a root */
        if (depth && t->low[v] < t->low[t->calls[depth - 1]])
            t->low[t->calls[depth - 1]] = t->low[v];
        if (t->low[v] == t->index[v]) {
            size_t w;
            do {
                w = t->stack[--t->sp];
                t->on_stack[w] = false;
                t->comp[w] = t->ncomp;
            } while (w != v);
            t->ncomp++;
        }
    }
}

static size_t *val_components(const struct val_graph *g, const bool *left)
{
    struct val_tarjan t = {.g = g, .left = left};
    size_t n = g->n;
    t.index = xmalloc(n * sizeof *t.index);
    t.low = xmalloc(n * sizeof *t.low);
    t.comp = xmalloc(n * sizeof *t.comp);
    t.stack = xmalloc(n * sizeof *t.stack);
    t.calls = xmalloc(n * sizeof *t.calls);
    t.cursor = xmalloc(n * sizeof *t.cursor);
    t.on_stack = xcalloc(n, sizeof *t.on_stack);
    for (size_t i = 0; i < n; i++)
        t.index[i] = t.comp[i] = VAL_NONE;
    for (size_t i = 0; i < n; i++)
        if (left[i] && t.index[i] == VAL_NONE)
            val_tarjan_visit(&t, i);
    free(t.index);
    free(t.low);
    free(t.stack);
    free(t.calls);
    free(t.cursor);
    free(t.on_stack);
    return t.comp;
}

/*
 * Reports one cycle through start's component: walks parent edges inside the
 * component (every task there has a parent there) until a task repeats; the
 * tasks from its first visit on form the cycle. pos[] is VAL_NONE on entry
 * and is restored before returning.
 */
static void val_report_cycle(struct val_batch *b, size_t start, const size_t *comp, size_t *pos,
                             size_t *walk)
{
    const struct val_graph *g = &b->g;
    size_t len = 0, v = start;
    while (pos[v] == VAL_NONE) {
        pos[v] = len;
        walk[len++] = v;
        size_t k = g->par_off[v];
        while (comp[g->par[k]] != comp[start])
            k++;
        v = g->par[k];
    }
    size_t first = pos[v], clen = len - first, lowest = first;
    for (size_t k = first; k < len; k++)
        lowest = walk[k] < walk[lowest] ? k : lowest;

    struct strbuf msg;
    strbuf_init(&msg);
    strbuf_adds(&msg, "cycle: ");
    for (size_t k = 0; k < clen && k < VAL_CYCLE_SHOWN; k++) {
        strbuf_addf(&msg, "%s -> ", b->tasks[walk[first + (lowest - first + k) % clen]].local_id);
    }
    if (clen > VAL_CYCLE_SHOWN)
        strbuf_addf(&msg, "... (%zu more) -> ", clen - VAL_CYCLE_SHOWN);
    strbuf_adds(&msg, b->tasks[walk[lowest]].local_id);

    size_t mark = val_push_index(&b->c, walk[lowest]);
    size_t dmark = val_push_key(&b->c, "dependencies");
    val_err(&b->c, "%s", msg.data);
    val_pop(&b->c, dmark);
    val_pop(&b->c, mark);
    strbuf_cleanup(&msg);
    for (size_t k = 0; k < len; k++)
        pos[walk[k]] = VAL_NONE;
}

/* Finds cycles; reports one per strongly connected component of them. */
static void val_cycles(struct val_batch *b)
{
    size_t n = b->n;
    bool *left = xmalloc(n * sizeof *left);
    val_graph_children(&b->g);
    if (val_kahn(&b->g, left) == 0) {
        free(left);
        return;
    }
    size_t *comp = val_components(&b->g, left);
    size_t *size = xcalloc(n, sizeof *size);
    size_t *pos = xmalloc(n * sizeof *pos);
    size_t *walk = xmalloc(n * sizeof *walk);
    for (size_t i = 0; i < n; i++) {
        pos[i] = VAL_NONE;
        if (comp[i] != VAL_NONE)
            size[comp[i]]++;
    }
    /* one report per component of two or more tasks (self-loops are not edges) */
    for (size_t i = 0; i < n; i++) {
        if (comp[i] != VAL_NONE && size[comp[i]] > 1) {
            val_report_cycle(b, i, comp, pos, walk);
            size[comp[i]] = 0;
        }
    }
    free(left);
    free(comp);
    free(size);
    free(pos);
    free(walk);
}

/* ------------------------------------------------------------------------ */
/* The batch                                                                 */
/* ------------------------------------------------------------------------ */

static int val_body_shape(struct val_ctx *c, json_object *body, const struct validate_limits *lim)
{
    size_t max = lim && lim->max_tasks > 0 ? (size_t)lim->max_tasks : VAL_DEFAULT_MAX_TASKS;
    if (!body || !json_object_is_type(body, json_type_array)) {
        val_err(c, "the body must be a JSON array of tasks");
        return -1;
    }
    size_t n = json_object_array_length(body);
    if (n == 0) {
        val_err(c, "the body must contain at least one task");
        return -1;
    }
    if (n > max) {
        val_err(c, "the body must contain at most %zu tasks (has %zu)", max, n);
        return -1;
    }
    return 0;
}

/* First pass: each task on its own, and local ids into the table. */
static void val_first_pass(struct val_batch *b, json_object *body)
{
    for (size_t i = 0; i < b->n; i++) {
        json_object *task = json_object_array_get_idx(body, i);
        struct val_task *t = &b->tasks[i];
        size_t mark = val_push_index(&b->c, i);
        t->out = val_j(json_object_new_object());
        if (!json_object_is_type(task, json_type_object)) {
            val_err(&b->c, "must be an object");
            val_new_uuid(t->uuid);
        } else {
            val_task_fields(&b->c, task, t);
        }
        if (t->local_id) {
            size_t other = val_idmap_put(&b->ids, i);
            if (other != VAL_NONE) {
                size_t imark = val_push_key(&b->c, "id");
                val_err(&b->c, "duplicate task id \"%s\" (also used by [%zu])", t->local_id, other);
                val_pop(&b->c, imark);
            }
        }
        val_pop(&b->c, mark);
    }
}

/* Second pass: dependencies into the graph, then cycles. */
static void val_second_pass(struct val_batch *b)
{
    size_t total = 0, nedges = 0;
    for (size_t i = 0; i < b->n; i++)
        if (b->tasks[i].deps)
            total += json_object_array_length(b->tasks[i].deps);
    b->g.n = b->n;
    b->g.par_off = xcalloc(b->n + 1, sizeof *b->g.par_off);
    b->g.par = xmalloc(total * sizeof *b->g.par);
    size_t *seen = xmalloc(b->n * sizeof *seen);
    for (size_t i = 0; i < b->n; i++)
        seen[i] = VAL_NONE;
    for (size_t i = 0; i < b->n; i++)
        val_task_deps(b, i, seen, &nedges);
    free(seen);
    val_cycles(b);
}

int validate_batch(json_object *body, const struct validate_limits *lim, json_object **out,
                   struct verr_list *errs)
{
    struct val_batch b = {.c = {.errs = errs}};
    size_t errs_before = errs->n;
    int rc = -1;

    *out = NULL;
    strbuf_init(&b.c.path);
    if (val_body_shape(&b.c, body, lim) < 0)
        goto out;
    b.n = json_object_array_length(body);
    b.tasks = xcalloc(b.n, sizeof *b.tasks);
    val_idmap_init(&b.ids, b.tasks, b.n);
    val_first_pass(&b, body);
    val_second_pass(&b);
    if (errs->n > errs_before)
        goto out;

    *out = val_j(json_object_new_array_ext((int)b.n));
    for (size_t i = 0; i < b.n; i++) {
        json_object_array_add(*out, b.tasks[i].out);
        b.tasks[i].out = NULL; /* handed over to the result */
    }
    rc = 0;
out:
    for (size_t i = 0; i < b.n; i++) {
        json_object_put(b.tasks[i].out);
        json_object_put(b.tasks[i].parent_refs);
    }
    free(b.tasks);
    val_idmap_cleanup(&b.ids);
    val_graph_cleanup(&b.g);
    strbuf_cleanup(&b.c.path);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Templates (PUT /rules/{name}, PUT /action-templates/{name})               */
/* ------------------------------------------------------------------------ */

/* A template's problems are named from its body down ("matcher.kind"), not
 * as a member of something (".matcher.kind"). */
static void val_strip_dots(struct verr_list *errs, size_t from)
{
    for (size_t i = from; i < errs->n; i++)
        if (errs->items[i].field && errs->items[i].field[0] == '.')
            memmove(errs->items[i].field, errs->items[i].field + 1,
                    strlen(errs->items[i].field));
}

bool validate_template_name(const char *s)
{
    size_t n = strlen(s), cps = 0;
    return n > 0 && !strchr(s, '/') && val_utf8_count(s, n, &cps) == 0 && cps <= VAL_NAME_MAX;
}

int validate_rule_template(json_object *body, json_object **out, struct verr_list *errs)
{
    struct val_ctx c = {.errs = errs};
    size_t before = errs->n;
    strbuf_init(&c.path);
    /* No task: the fields cannot be checked against a metadata. */
    struct val_task_info info = {.kind = NULL, .meta = NULL, .meta_checkable = false};
    *out = NULL;
    if (!body || !json_object_is_type(body, json_type_object)) {
        val_err(&c, "must be a rule object");
    } else if (val_field(body, "ref")) {
        size_t mark = val_push_key(&c, "ref");
        val_err(&c, "a template cannot name another template");
        val_pop(&c, mark);
    } else {
        json_object *m = val_field(body, "matcher");
        if (!m || (json_object_is_type(m, json_type_object) && !val_field(m, "kind"))) {
            /* tasks of several kinds may name it: which kind it counts is said */
            size_t mark = val_push_key(&c, "matcher");
            size_t kmark = val_push_key(&c, "kind");
            val_err(&c, "is required in a rule template");
            val_pop(&c, kmark);
            val_pop(&c, mark);
        }
        *out = val_rule(&c, body, &info);
    }
    strbuf_cleanup(&c.path);
    val_strip_dots(errs, before);
    if (errs->n > before) {
        json_object_put(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}

int validate_action_template(json_object *body, json_object **out, struct verr_list *errs)
{
    struct val_ctx c = {.errs = errs};
    size_t before = errs->n;
    strbuf_init(&c.path);
    *out = NULL;
    if (!body || !json_object_is_type(body, json_type_object)) {
        val_err(&c, "must be an action object");
    } else if (val_field(body, "ref")) {
        size_t mark = val_push_key(&c, "ref");
        val_err(&c, "a template cannot name another template");
        val_pop(&c, mark);
    } else {
        json_object *kind = val_field(body, "kind");
        if (kind && (!json_object_is_type(kind, json_type_string) ||
                     strcasecmp(json_object_get_string(kind), "Webhook") != 0)) {
            size_t mark = val_push_key(&c, "kind");
            val_err(&c, "must be \"Webhook\"");
            val_pop(&c, mark);
        }
        *out = val_j(json_object_new_object());
        json_object_object_add(*out, "kind", val_j(json_object_new_string("Webhook")));
        /* A template may stand for an on_start action: what only on_start
         * takes (store_output, "succeed") is allowed here. */
        val_params(&c, body, *out, true, false);
    }
    strbuf_cleanup(&c.path);
    val_strip_dots(errs, before);
    if (errs->n > before) {
        json_object_put(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Actions registered by an on_start answer                                  */
/* ------------------------------------------------------------------------ */

int validate_cancel_action(json_object *action, json_object **out, char *why, size_t why_size)
{
    struct verr_list errs;
    struct val_ctx c = {.errs = &errs};
    verr_list_init(&errs);
    strbuf_init(&c.path);
    if (json_object_is_type(action, json_type_object) && val_field(action, "ref")) {
        /* its row is written as given: it must be complete */
        size_t mark = val_push_key(&c, "ref");
        val_err(&c, "an action registered by an on_start answer cannot name a template");
        val_pop(&c, mark);
        *out = NULL;
    } else {
        *out = val_action(&c, action, webhook_trigger_name(TRIGGER_CANCEL), NULL, "on_cancel");
    }
    int rc = errs.n == 0 && *out ? 0 : -1;
    if (rc < 0 && why_size > 0) {
        if (errs.n == 0)
            snprintf(why, why_size, "not an action");
        else if (errs.items[0].field && errs.items[0].field[0])
            snprintf(why, why_size, "%s: %s", errs.items[0].field, errs.items[0].message);
        else
            snprintf(why, why_size, "%s", errs.items[0].message);
    }
    if (rc < 0) {
        json_object_put(*out);
        *out = NULL;
    }
    strbuf_cleanup(&c.path);
    verr_list_cleanup(&errs);
    return rc;
}

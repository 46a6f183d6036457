/*
 * test_validate: unit tests of shared/validate.c, the POST /tasks checks.
 *
 * Bodies are written as JSON with single quotes, turned into double quotes
 * before parsing, to keep the tables readable. Most error cases are one task
 * with one field replaced: json-c keeps the last of duplicate keys, so a
 * case appends ",'name':''" to a valid base task.
 */
#include "validate.h"

#include <stdlib.h>
#include <string.h>

#include "check.h"

#define BASE_TASK                                                                                  \
    "{'id':'a','name':'n','kind':'k','on_start':{'params':{'url':'http://x.example/'}}"
#define BASE_START "{'params':{'url':'http://x.example/'}}"

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */
/* ------------------------------------------------------------------------ */

/* Parses test JSON written with single quotes. */
static json_object *parse(const char *text)
{
    char *s = xstrdup(text);
    for (char *p = s; *p; p++)
        if (*p == '\'')
            *p = '"';
    enum json_tokener_error jerr;
    json_object *o = json_tokener_parse_verbose(s, &jerr);
    if (!CHECK(jerr == json_tokener_success))
        fprintf(stderr, "    bad test JSON: %s\n", s);
    free(s);
    return o;
}

/* A body of the base task with extra fields (which replace earlier ones). */
static json_object *parse_base(const char *extra)
{
    char *text = xasprintf("[" BASE_TASK "%s}]", extra);
    json_object *o = parse(text);
    free(text);
    return o;
}

static int run(json_object *body, int max_tasks, json_object **out, struct verr_list *errs)
{
    struct validate_limits lim = {.max_tasks = max_tasks};
    *out = (json_object *)1; /* must be reset by validate_batch */
    return validate_batch(body, &lim, out, errs);
}

static void print_errors(const struct verr_list *errs)
{
    for (size_t i = 0; i < errs->n; i++)
        fprintf(stderr, "    error: %s: %s\n", errs->items[i].field, errs->items[i].message);
}

/* Whether errs has an error at exactly field whose message contains msg. */
static bool has_error(const struct verr_list *errs, const char *field, const char *msg)
{
    for (size_t i = 0; i < errs->n; i++)
        if (strcmp(errs->items[i].field, field) == 0 && strstr(errs->items[i].message, msg))
            return true;
    return false;
}

/* Validates body (taken over) expecting failure with the given error. */
static void expect_error_body(json_object *body, const char *field, const char *msg,
                              const char *label)
{
    struct verr_list errs;
    json_object *out;
    verr_list_init(&errs);
    int rc = run(body, 10000, &out, &errs);
    bool ok = CHECK_INT(rc, -1) && CHECK(out == NULL) && CHECK(has_error(&errs, field, msg));
    if (!ok) {
        fprintf(stderr, "    case %s: wanted %s: %s\n", label, field, msg);
        print_errors(&errs);
    }
    if (rc == 0)
        json_object_put(out);
    json_object_put(body);
    verr_list_cleanup(&errs);
}

/* Validates body (taken over) expecting success; returns the output. */
static json_object *expect_ok_body(json_object *body, const char *label)
{
    struct verr_list errs;
    json_object *out = NULL;
    verr_list_init(&errs);
    int rc = run(body, 10000, &out, &errs);
    if (!CHECK_INT(rc, 0) || !CHECK(errs.n == 0)) {
        fprintf(stderr, "    case %s\n", label);
        print_errors(&errs);
    }
    json_object_put(body);
    verr_list_cleanup(&errs);
    return rc == 0 ? out : NULL;
}

/* The value at a path of keys and indexes like "0.actions.1.params.url". */
static json_object *at(json_object *o, const char *path)
{
    char *copy = xstrdup(path), *save = NULL;
    for (char *seg = strtok_r(copy, ".", &save); seg && o; seg = strtok_r(NULL, ".", &save)) {
        if (json_object_is_type(o, json_type_array))
            o = json_object_array_get_idx(o, (size_t)atoi(seg));
        else if (!json_object_object_get_ex(o, seg, &o))
            o = NULL;
    }
    free(copy);
    return o;
}

static const char *str_at(json_object *o, const char *path)
{
    json_object *v = at(o, path);
    return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static long long int_at(json_object *o, const char *path)
{
    json_object *v = at(o, path);
    return v && json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : -999999;
}

static bool has_key(json_object *o, const char *path, const char *key)
{
    json_object *v = at(o, path);
    return v && json_object_object_get_ex(v, key, NULL);
}

static size_t len_at(json_object *o, const char *path)
{
    json_object *v = at(o, path);
    return v && json_object_is_type(v, json_type_array) ? json_object_array_length(v) : 9999;
}

/* The first task object of body, to change one field in code. */
static json_object *task0(json_object *body)
{
    return json_object_array_get_idx(body, 0);
}

static char *repeat(const char *unit, size_t times)
{
    struct strbuf b;
    strbuf_init(&b);
    for (size_t i = 0; i < times; i++)
        strbuf_adds(&b, unit);
    return b.data;
}

/* ------------------------------------------------------------------------ */
/* Table of single-error cases                                               */
/* ------------------------------------------------------------------------ */

struct err_case {
    const char *json; /* a whole body if it starts with '[' or '{', else extras for the base task */
    const char *field;
    const char *message; /* a part of the expected message */
};

static const struct err_case err_cases[] = {
    /* the body */
    {"{}", "", "must be a JSON array of tasks"},
    {"['x']", "[0]", "must be an object"},
    {"[]", "", "at least one task"},
    {"[null]", "[0]", "must be an object"},
    {"[" BASE_TASK "}, 5]", "[1]", "must be an object"},
    /* id, name, kind */
    {",'id':null", "[0].id", "is required"},
    {",'id':''", "[0].id", "must be a string of 1 to 255 characters"},
    {",'id':7", "[0].id", "must be a string of 1 to 255 characters"},
    {",'id':'a\\u0000b'", "[0].id", "must not contain a NUL byte"},
    {",'name':null", "[0].name", "is required"},
    {",'name':''", "[0].name", "must be a string of 1 to 255 characters"},
    {",'name':['n']", "[0].name", "must be a string of 1 to 255 characters"},
    {",'name':'x\\u0000'", "[0].name", "must not contain a NUL byte"},
    {",'kind':''", "[0].kind", "must be a string of 1 to 100 characters"},
    {",'kind':true", "[0].kind", "must be a string of 1 to 100 characters"},
    /* numbers */
    {",'timeout':0", "[0].timeout", "must be an integer between 1 and 86400"},
    {",'timeout':86401", "[0].timeout", "must be an integer between 1 and 86400"},
    {",'timeout':1.5", "[0].timeout", "must be an integer between 1 and 86400"},
    {",'timeout':'60'", "[0].timeout", "must be an integer between 1 and 86400"},
    {",'timeout':true", "[0].timeout", "must be an integer between 1 and 86400"},
    {",'timeout':1e400", "[0].timeout", "must be an integer between 1 and 86400"},
    {",'timeout':-1e400", "[0].timeout", "must be an integer between 1 and 86400"},
    {",'timeout':99999999999999999999", "[0].timeout", "must be an integer between 1 and 86400"},
    {",'timeout':-99999999999999999999", "[0].timeout", "must be an integer between 1 and 86400"},
    {",'timeout':9223372036854775807", "[0].timeout", "must be an integer between 1 and 86400"},
    {",'timeout':NaN", "[0].timeout", "must be an integer between 1 and 86400"},
    {",'timeout':{}", "[0].timeout", "must be an integer between 1 and 86400"},
    {",'priority':-1001", "[0].priority", "must be an integer between -1000 and 1000"},
    {",'priority':1001", "[0].priority", "must be an integer between -1000 and 1000"},
    {",'priority':0.5", "[0].priority", "must be an integer between -1000 and 1000"},
    {",'priority':false", "[0].priority", "must be an integer between -1000 and 1000"},
    {",'priority':1e19", "[0].priority", "must be an integer between -1000 and 1000"},
    /* metadata */
    {",'metadata':[]", "[0].metadata", "must be an object or null"},
    {",'metadata':'x'", "[0].metadata", "must be an object or null"},
    {",'metadata':{'a':{'b':['ok','x\\u0000y']}}", "[0].metadata.a.b[1]",
     "must not contain a NUL byte"},
    /* on_start and actions */
    {",'on_start':null", "[0].on_start", "is required"},
    {",'on_start':[" BASE_START "]", "[0].on_start", "must be an action object"},
    {",'on_start':{}", "[0].on_start.params", "is required"},
    {",'on_start':{'params':'x'}", "[0].on_start.params", "must be an object"},
    {",'on_start':{'params':{}}", "[0].on_start.params.url", "is required"},
    {",'on_start':{'params':{'url':null}}", "[0].on_start.params.url", "is required"},
    {",'on_start':{'params':{'url':5}}", "[0].on_start.params.url", "absolute http or https URL"},
    {",'on_start':{'params':{'url':''}}", "[0].on_start.params.url", "absolute http or https URL"},
    {",'on_start':{'params':{'url':'ftp://x.example/'}}", "[0].on_start.params.url",
     "absolute http or https URL"},
    {",'on_start':{'params':{'url':'file:///etc/passwd'}}", "[0].on_start.params.url",
     "absolute http or https URL"},
    {",'on_start':{'params':{'url':'/run'}}", "[0].on_start.params.url",
     "absolute http or https URL"},
    {",'on_start':{'params':{'url':'x.example/run'}}", "[0].on_start.params.url",
     "absolute http or https URL"},
    {",'on_start':{'params':{'url':'http://'}}", "[0].on_start.params.url",
     "absolute http or https URL"},
    {",'on_start':{'params':{'url':'http:///run'}}", "[0].on_start.params.url",
     "absolute http or https URL"},
    {",'on_start':{'params':{'url':'http:/x.example'}}", "[0].on_start.params.url",
     "absolute http or https URL"},
    {",'on_start':{'params':{'url':'http://exa mple/'}}", "[0].on_start.params.url",
     "absolute http or https URL"},
    {",'on_start':{'params':{'url':'http://x.example/\\r\\nHost: y'}}", "[0].on_start.params.url",
     "absolute http or https URL"},
    {",'on_start':{'params':{'url':'http://x.example/\\u0000'}}", "[0].on_start.params.url",
     "must not contain a NUL byte"},
    {",'on_start':{'params':{'url':'http://x.example/','verb':'Fetch'}}",
     "[0].on_start.params.verb", "must be one of Get, Post, Put, Patch, Delete"},
    {",'on_start':{'params':{'url':'http://x.example/','verb':1}}", "[0].on_start.params.verb",
     "must be one of Get, Post, Put, Patch, Delete"},
    {",'on_start':{'kind':'Email','params':{'url':'http://x.example/'}}", "[0].on_start.kind",
     "must be \"Webhook\""},
    {",'on_start':{'kind':3,'params':{'url':'http://x.example/'}}", "[0].on_start.kind",
     "must be \"Webhook\""},
    {",'on_start':{'trigger':'End','params':{'url':'http://x.example/'}}", "[0].on_start.trigger",
     "must be \"Start\" for an on_start action"},
    {",'on_success':[{'trigger':'Start','params':{'url':'http://x.example/'}}]",
     "[0].on_success[0].trigger", "must be \"End\" for an on_success action"},
    {",'on_failure':[{'trigger':'cancel','params':{'url':'http://x.example/'}}]",
     "[0].on_failure[0].trigger", "must be \"End\" for an on_failure action"},
    {",'on_cancel':[{'trigger':'End','params':{'url':'http://x.example/'}}]",
     "[0].on_cancel[0].trigger", "must be \"Cancel\" for an on_cancel action"},
    {",'on_success':" BASE_START, "[0].on_success", "must be an array"},
    {",'on_success':[" BASE_START ",{'params':{'url':'nope'}}]", "[0].on_success[1].params.url",
     "absolute http or https URL"},
    {",'on_failure':[null]", "[0].on_failure[0]", "must be an action object"},
    {",'on_cancel':[{'params':{}}]", "[0].on_cancel[0].params.url", "is required"},
    /* headers and body */
    {",'on_start':{'params':{'url':'http://x.example/','headers':'x'}}",
     "[0].on_start.params.headers", "must be an object of strings"},
    {",'on_start':{'params':{'url':'http://x.example/','headers':{'Bad Name':'v'}}}",
     "[0].on_start.params.headers", "\"Bad Name\" is not a valid header name"},
    {",'on_start':{'params':{'url':'http://x.example/','headers':{'':'v'}}}",
     "[0].on_start.params.headers", "not a valid token"},
    {",'on_start':{'params':{'url':'http://x.example/','headers':{'X\\r\\nY':'v'}}}",
     "[0].on_start.params.headers", "not a valid token"},
    {",'on_start':{'params':{'url':'http://x.example/','headers':{'X-A':'a\\r\\nb'}}}",
     "[0].on_start.params.headers.X-A", "must not contain control characters"},
    {",'on_start':{'params':{'url':'http://x.example/','headers':{'X-A':'a\\nb'}}}",
     "[0].on_start.params.headers.X-A", "must not contain control characters"},
    {",'on_start':{'params':{'url':'http://x.example/','headers':{'X-A':'a\\u0001'}}}",
     "[0].on_start.params.headers.X-A", "must not contain control characters"},
    {",'on_start':{'params':{'url':'http://x.example/','headers':{'X-A':'a\\u007f'}}}",
     "[0].on_start.params.headers.X-A", "must not contain control characters"},
    {",'on_start':{'params':{'url':'http://x.example/','headers':{'X-A':'a\\u0000b'}}}",
     "[0].on_start.params.headers.X-A", "must not contain a NUL byte"},
    {",'on_start':{'params':{'url':'http://x.example/','headers':{'Content-Length':'0'}}}",
     "[0].on_start.params.headers.Content-Length", "a task may not set"},
    {",'on_start':{'params':{'url':'http://x.example/','headers':{'host':'x'}}}",
     "[0].on_start.params.headers.host", "a task may not set"},
    {",'on_success':[{'params':{'url':'http://x.example/','headers':{'X-TASK-ID':'x'}}}]",
     "[0].on_success[0].params.headers.X-TASK-ID", "a task may not set"},
    {",'on_start':{'params':{'url':'http://x.example/','headers':{'Proxy-Foo':'x'}}}",
     "[0].on_start.params.headers.Proxy-Foo", "a task may not set"},
    {",'on_start':{'params':{'url':'http://x.example/','headers':{'Webhook-Signature':'x'}}}",
     "[0].on_start.params.headers.Webhook-Signature", "a task may not set"},
    {",'on_start':{'params':{'url':'http://x.example/','headers':{'idempotency-key':'x'}}}",
     "[0].on_start.params.headers.idempotency-key", "a task may not set"},
    {",'metadata':{'n':1e308}", "[0].metadata.n", "signed 64-bit range"},
    {",'metadata':{'n':1.5e308}", "[0].metadata.n", "signed 64-bit range"},
    {",'metadata':{'n':[0.1e-400]}", "[0].metadata.n[0]", "closer to zero"},
    {",'metadata':{'n':1e-400}", "[0].metadata.n", "closer to zero"},
    {",'on_start':{'params':{'url':'http://x.example/','body':{'n':1e19}}}",
     "[0].on_start.params.body.n", "signed 64-bit range"},
    {",'metadata':{'n':9223372036854775808}", "[0].metadata.n", "signed 64-bit range"},
    {",'metadata':{'n':-9223372036854775809e0}", "[0].metadata.n", "signed 64-bit range"},
    {",'on_start':{'params':{'url':'http://x.example/','headers':{'X-A':1}}}",
     "[0].on_start.params.headers.X-A", "must be a string"},
    {",'on_start':{'params':{'url':'http://x.example/','headers':{'X-A':null}}}",
     "[0].on_start.params.headers.X-A", "must be a string"},
    {",'on_start':{'params':{'url':'http://x.example/','body':{'k':[1,{'d':'\\u0000'}]}}}",
     "[0].on_start.params.body.k[1].d", "must not contain a NUL byte"},
    {",'on_start':{'params':{'url':'http://x.example/','body':'\\u0000'}}",
     "[0].on_start.params.body", "must not contain a NUL byte"},
    /* rules */
    {",'rules':{}", "[0].rules", "must be an array"},
    {",'rules':[5]", "[0].rules[0]", "must be an object"},
    {",'rules':[null]", "[0].rules[0]", "must be an object"},
    {",'rules':[{'max_concurrency':1}]", "[0].rules[0].type", "is required"},
    {",'rules':[{'type':'Rate','max_concurrency':1}]", "[0].rules[0].type",
     "must be \"Concurrency\""},
    {",'rules':[{'type':'Concurrency'}]", "[0].rules[0].max_concurrency", "is required"},
    {",'rules':[{'type':'Concurrency','max_concurrency':0}]", "[0].rules[0].max_concurrency",
     "must be an integer between 1 and 100000"},
    {",'rules':[{'type':'Concurrency','max_concurrency':100001}]", "[0].rules[0].max_concurrency",
     "must be an integer between 1 and 100000"},
    {",'rules':[{'type':'Concurrency','max_concurrency':2.5}]", "[0].rules[0].max_concurrency",
     "must be an integer between 1 and 100000"},
    {",'rules':[{'type':'Concurrency','max_concurrency':'3'}]", "[0].rules[0].max_concurrency",
     "must be an integer between 1 and 100000"},
    {",'rules':[{'type':'Concurency','max_concurency':-1}]", "[0].rules[0].max_concurency",
     "must be an integer between 1 and 100000"},
    {",'rules':[{'type':'Concurrency','max_concurrency':1,'max_concurency':2}]",
     "[0].rules[0].max_concurency", "not both"},
    {",'rules':[{'type':'Concurrency','max_concurrency':1,'matcher':'k'}]", "[0].rules[0].matcher",
     "must be an object"},
    {",'rules':[{'type':'Concurrency','max_concurrency':1,'matcher':{'status':'Done'}}]",
     "[0].rules[0].matcher.status", "must be one of Waiting, Pending, Claimed, Running"},
    {",'rules':[{'type':'Concurrency','max_concurrency':1,'matcher':{'kind':''}}]",
     "[0].rules[0].matcher.kind", "must be a string of 1 to 100 characters"},
    {",'rules':[{'type':'Concurrency','max_concurrency':1,'matcher':{'fields':'t'}}]",
     "[0].rules[0].matcher.fields", "must be an array"},
    {",'rules':[{'type':'Concurrency','max_concurrency':1,'matcher':{'fields':[1]}}]",
     "[0].rules[0].matcher.fields[0]", "must be a string"},
    {",'rules':[{'type':'Concurrency','max_concurrency':1,'matcher':{'fields':['tenant']}}]",
     "[0].rules[0].matcher.fields[0]", "\"tenant\" is not a key of the task's metadata"},
    {",'metadata':{'t':1},'rules':[{'type':'Concurrency','max_concurrency':1,"
     "'matcher':{'fields':['t','u']}}]",
     "[0].rules[0].matcher.fields[1]", "\"u\" is not a key of the task's metadata"},
    {",'metadata':null,'rules':[{'type':'Concurrency','max_concurrency':1,"
     "'matcher':{'fields':['t']}}]",
     "[0].rules[0].matcher.fields[0]", "\"t\" is not a key of the task's metadata"},
    {",'metadata':{'a\\u0000':1},'rules':[{'type':'Concurrency','max_concurrency':1,"
     "'matcher':{'fields':['a\\u0000']}}]",
     "[0].rules[0].matcher.fields[0]", "must not contain a NUL byte"},
    /* fair_by */
    {",'fair_by':'tenant'", "[0].fair_by", "must be an array"},
    {",'metadata':{'t':1},'fair_by':[]", "[0].fair_by", "must name at least one metadata field"},
    {",'metadata':{'t':1},'fair_by':[1]", "[0].fair_by[0]", "must be a string"},
    {",'metadata':{'t':1},'fair_by':['t','u']", "[0].fair_by[1]",
     "\"u\" is not a key of the task's metadata"},
    {",'fair_by':['t']", "[0].fair_by[0]", "\"t\" is not a key of the task's metadata"},
    {",'metadata':{'t':1},'fair_by':['t','t','t','t','t','t','t','t','t']", "[0].fair_by",
     "must have at most 8 entries"},
    /* dedupe_strategy */
    {",'dedupe_strategy':'x'", "[0].dedupe_strategy", "must be an array"},
    {",'dedupe_strategy':[1]", "[0].dedupe_strategy[0]", "must be an object"},
    {",'dedupe_strategy':[null]", "[0].dedupe_strategy[0]", "must be an object"},
    {",'dedupe_strategy':[{'status':'Finished'}]", "[0].dedupe_strategy[0].status",
     "must be one of"},
    {",'dedupe_strategy':[{'kind':7}]", "[0].dedupe_strategy[0].kind",
     "must be a string of 1 to 100 characters"},
    {",'metadata':{'a':1},'dedupe_strategy':[{},{'fields':['a','b']}]",
     "[0].dedupe_strategy[1].fields[1]", "\"b\" is not a key of the task's metadata"},
    /* dependencies */
    {",'dependencies':'b'", "[0].dependencies", "must be an array"},
    {",'dependencies':{'id':'b'}", "[0].dependencies", "must be an array"},
    {",'dependencies':['b']", "[0].dependencies[0]", "must be an object"},
    {",'dependencies':[{}]", "[0].dependencies[0].id", "is required"},
    {",'dependencies':[{'id':5}]", "[0].dependencies[0].id", "must be a string"},
    {",'dependencies':[{'id':'a\\u0000'}]", "[0].dependencies[0].id",
     "must not contain a NUL byte"},
    {",'dependencies':[{'id':'zz'}]", "[0].dependencies[0].id",
     "unknown task id \"zz\" in this batch"},
    {",'dependencies':[{'id':'a'}]", "[0].dependencies[0].id", "a task cannot depend on itself"},
    {"[" BASE_TASK "},{'id':'b','name':'n','kind':'k','on_start':" BASE_START
     ",'dependencies':[{'id':'a','requires_success':'yes'}]}]",
     "[1].dependencies[0].requires_success", "must be true or false"},
    {"[" BASE_TASK "},{'id':'b','name':'n','kind':'k','on_start':" BASE_START
     ",'dependencies':[{'id':'a'},{'id':'a','requires_success':true}]}]",
     "[1].dependencies[1].id", "duplicate dependency on \"a\""},
    {"[" BASE_TASK "},{'id':'b','name':'n','kind':'k','on_start':" BASE_START "}," BASE_TASK "}]",
     "[2].id", "duplicate task id \"a\""},
    /* cycles: "x -> y" reads "x depends on y" */
    {"[" BASE_TASK
     ",'dependencies':[{'id':'b'}]},{'id':'b','name':'n','kind':'k','on_start':" BASE_START
     ",'dependencies':[{'id':'a'}]}]",
     "[0].dependencies", "cycle: a -> b -> a"},
};

static void test_error_table(void)
{
    for (size_t i = 0; i < sizeof err_cases / sizeof *err_cases; i++) {
        const struct err_case *tc = &err_cases[i];
        json_object *body =
            tc->json[0] == '[' || tc->json[0] == '{' ? parse(tc->json) : parse_base(tc->json);
        if (!body && tc->json[0] != '{')
            continue; /* parse() already reported it */
        expect_error_body(body, tc->field, tc->message, tc->json);
    }
}

/* ------------------------------------------------------------------------ */
/* Valid bodies                                                              */
/* ------------------------------------------------------------------------ */

static bool is_lower_uuid(const char *s)
{
    if (!validate_is_uuid(s))
        return false;
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'F')
            return false;
    return true;
}

static void test_minimal(void)
{
    json_object *out = expect_ok_body(parse_base(""), "minimal");
    if (!out)
        return;
    CHECK_INT((long long)json_object_array_length(out), 1);
    CHECK(is_lower_uuid(str_at(out, "0.id")));
    CHECK_STR(str_at(out, "0.local_id"), "a");
    CHECK_STR(str_at(out, "0.name"), "n");
    CHECK_STR(str_at(out, "0.kind"), "k");
    CHECK_INT(int_at(out, "0.timeout"), 60);
    CHECK_INT(int_at(out, "0.priority"), 0);
    CHECK(has_key(out, "0", "metadata") && at(out, "0.metadata") == NULL);
    CHECK_INT((long long)len_at(out, "0.rules"), 0);
    CHECK_INT((long long)len_at(out, "0.dedupe"), 0);
    CHECK_INT((long long)len_at(out, "0.deps"), 0);
    CHECK_INT((long long)len_at(out, "0.actions"), 1);
    CHECK(is_lower_uuid(str_at(out, "0.actions.0.id")));
    CHECK_STR(str_at(out, "0.actions.0.kind"), "Webhook");
    CHECK_STR(str_at(out, "0.actions.0.trigger"), "Start");
    CHECK(has_key(out, "0.actions.0", "condition") && at(out, "0.actions.0.condition") == NULL);
    CHECK_STR(str_at(out, "0.actions.0.params.url"), "http://x.example/");
    CHECK_STR(str_at(out, "0.actions.0.params.verb"), "Post");
    CHECK(!has_key(out, "0.actions.0.params", "body"));
    CHECK(!has_key(out, "0.actions.0.params", "headers"));
    CHECK_INT(json_object_get_int(at(out, "0.max_retries")), 0); /* no retries by default */
    CHECK(!has_key(out, "0", "retry_backoff"));                  /* the defaults apply */
    CHECK(has_key(out, "0", "expected_count") && at(out, "0.expected_count") == NULL);
    CHECK_INT(json_object_object_length(at(out, "0")), 13);
    CHECK_INT(json_object_object_length(at(out, "0.actions.0")), 5);
    CHECK_INT(json_object_object_length(at(out, "0.actions.0.params")), 2);
    json_object_put(out);
}

static const char full_body[] =
    "[{'id':'ingest','name':'Ingest A','kind':'data-processing','timeout':120,'priority':-5,"
    "  'metadata':{'tenant_id':42,'region':'eu','deep':{'x':[1,'two',null]}},"
    "  'extra_task_field':1,"
    "  'on_start':{'kind':'webhook','trigger':'START','name':'ignored',"
    "    'params':{'url':'https://exec.example/run?x=1','verb':'pUt','extra':1,"
    "      'body':{'any':['json',1,2.5,true,null]},'headers':{'X-Custom':'v\\tw','Accept':'*/*'}}},"
    "  'on_success':[{'params':{'url':'http://s1.example/'}},"
    "                {'trigger':'end','params':{'url':'http://s2.example/','verb':'GET'}}],"
    "  'on_failure':[{'kind':'Webhook','params':{'url':'http://f.example/','body':'text'}}],"
    "  'on_cancel':[{'trigger':'Cancel','params':{'url':'http://c.example/','verb':'delete',"
    "                 'body':0}}],"
    "  'rules':[{'type':'concurency','max_concurency':3,'extra':1,"
    "            'matcher':{'kind':'other','status':'running','fields':['tenant_id'],'x':1}},"
    "           {'type':'CONCURRENCY','max_concurrency':100000.0},"
    "           {'type':'Concurrency','max_concurrency':1,'matcher':{'status':'CLAIMED',"
    "            'fields':['region','tenant_id']}}],"
    "  'dedupe_strategy':[{'fields':['tenant_id']},{'kind':'k2','status':'running'}],"
    "  'dependencies':[{'id':'later','requires_success':true},{'id':'first','extra':1}]},"
    " {'id':'first','name':'F','kind':'k','on_start':{'params':{'url':'http://x.example/'}},"
    "  'timeout':1.0,'priority':1e3,'metadata':null},"
    " {'id':'later','name':'L','kind':'k','on_start':{'params':{'url':'http://x.example/'}},"
    "  'timeout':86400,'priority':-1000,'dependencies':[{'id':'first','requires_success':false}],"
    "  'rules':null,'dedupe_strategy':null,'on_success':null}]";

static void check_full_actions(json_object *out)
{
    CHECK_INT((long long)len_at(out, "0.actions"), 5);
    const char *want[][4] = {
        /* trigger, condition, url, verb */
        {"Start", NULL, "https://exec.example/run?x=1", "Put"},
        {"End", "Success", "http://s1.example/", "Post"},
        {"End", "Success", "http://s2.example/", "Get"},
        {"End", "Failure", "http://f.example/", "Post"},
        {"Cancel", NULL, "http://c.example/", "Delete"},
    };
    for (int i = 0; i < 5; i++) {
        char path[64];
        snprintf(path, sizeof path, "0.actions.%d", i);
        json_object *a = at(out, path);
        CHECK(is_lower_uuid(str_at(a, "id")));
        CHECK_STR(str_at(a, "kind"), "Webhook");
        CHECK_STR(str_at(a, "trigger"), want[i][0]);
        CHECK_STR(str_at(a, "condition"), want[i][1]);
        CHECK(has_key(out, path, "condition"));
        CHECK_STR(str_at(a, "params.url"), want[i][2]);
        CHECK_STR(str_at(a, "params.verb"), want[i][3]);
        CHECK(!has_key(out, path, "name"));
    }
    CHECK(!has_key(out, "0.actions.0.params", "extra"));
    json_object *body = parse("{'any':['json',1,2.5,true,null]}");
    CHECK(json_object_equal(at(out, "0.actions.0.params.body"), body));
    json_object_put(body);
    CHECK_STR(str_at(out, "0.actions.0.params.headers.X-Custom"), "v\tw");
    CHECK_STR(str_at(out, "0.actions.0.params.headers.Accept"), "*/*");
    CHECK_STR(str_at(out, "0.actions.3.params.body"), "text");
    CHECK_INT(int_at(out, "0.actions.4.params.body"), 0);
    CHECK(!has_key(out, "0.actions.1.params", "body"));
    CHECK(!has_key(out, "0.actions.1.params", "headers"));
}

static void check_full_rules(json_object *out)
{
    CHECK_INT((long long)len_at(out, "0.rules"), 3);
    CHECK_STR(str_at(out, "0.rules.0.type"), "Concurrency");
    CHECK_INT(int_at(out, "0.rules.0.max_concurrency"), 3);
    CHECK(!has_key(out, "0.rules.0", "max_concurency"));
    CHECK(!has_key(out, "0.rules.0", "extra"));
    CHECK_STR(str_at(out, "0.rules.0.matcher.kind"), "other");
    CHECK_STR(str_at(out, "0.rules.0.matcher.status"), "Running");
    CHECK_STR(str_at(out, "0.rules.0.matcher.fields.0"), "tenant_id");
    CHECK(!has_key(out, "0.rules.0.matcher", "x"));
    /* defaults: the task's kind, Running, no fields */
    CHECK_STR(str_at(out, "0.rules.1.type"), "Concurrency");
    CHECK_INT(int_at(out, "0.rules.1.max_concurrency"), 100000);
    CHECK_STR(str_at(out, "0.rules.1.matcher.kind"), "data-processing");
    CHECK_STR(str_at(out, "0.rules.1.matcher.status"), "Running");
    CHECK_INT((long long)len_at(out, "0.rules.1.matcher.fields"), 0);
    CHECK_STR(str_at(out, "0.rules.2.matcher.status"), "Claimed");
    CHECK_STR(str_at(out, "0.rules.2.matcher.fields.1"), "tenant_id");
    /* dedupe: default status Pending */
    CHECK_INT((long long)len_at(out, "0.dedupe"), 2);
    CHECK_STR(str_at(out, "0.dedupe.0.kind"), "data-processing");
    CHECK_STR(str_at(out, "0.dedupe.0.status"), "Pending");
    CHECK_STR(str_at(out, "0.dedupe.0.fields.0"), "tenant_id");
    CHECK_STR(str_at(out, "0.dedupe.1.kind"), "k2");
    CHECK_STR(str_at(out, "0.dedupe.1.status"), "Running");
    CHECK_INT((long long)len_at(out, "0.dedupe.1.fields"), 0);
    CHECK(!has_key(out, "0", "dedupe_strategy"));
}

static void check_full_deps(json_object *out)
{
    const char *first = str_at(out, "1.id"), *later = str_at(out, "2.id");
    CHECK_INT((long long)len_at(out, "0.deps"), 2);
    CHECK_STR(str_at(out, "0.deps.0.id"), later);
    CHECK(json_object_get_boolean(at(out, "0.deps.0.requires_success")));
    CHECK_STR(str_at(out, "0.deps.1.id"), first);
    CHECK(has_key(out, "0.deps.1", "requires_success") &&
          !json_object_get_boolean(at(out, "0.deps.1.requires_success")));
    CHECK(!has_key(out, "0.deps.1", "extra"));
    CHECK_INT((long long)len_at(out, "2.deps"), 1);
    CHECK_STR(str_at(out, "2.deps.0.id"), first);
    CHECK(!has_key(out, "0", "dependencies"));
}

/* Unknown fields are dropped unread, even ones that could not be stored. */
static void test_unknown_fields(void)
{
    json_object *out = expect_ok_body(
        parse_base(",'x':'\\u0000','on_start':{'name':'\\u0000','params':{'url':'http://x/',"
                   "'y':[1e400]}},'dependencies':[{'id':'a2','z':'\\u0000'}]},"
                   "{'id':'a2','name':'n','kind':'k','on_start':" BASE_START),
        "unknown fields");
    if (out) {
        CHECK(!has_key(out, "0", "x"));
        CHECK(!has_key(out, "0.actions.0", "name"));
        CHECK(!has_key(out, "0.actions.0.params", "y"));
        CHECK(!has_key(out, "0.deps.0", "z"));
    }
    json_object_put(out);
}

/* fair_by: the field names as given; absent or null, no member. */
static void test_fair_by(void)
{
    json_object *out = expect_ok_body(parse_base(",'metadata':{'t':1,'r':2},'fair_by':['t','r']"),
                                      "fair_by");
    if (!out)
        return;
    CHECK_INT((long long)len_at(out, "0.fair_by"), 2);
    CHECK_STR(str_at(out, "0.fair_by.0"), "t");
    CHECK_STR(str_at(out, "0.fair_by.1"), "r");
    json_object_put(out);
    out = expect_ok_body(parse_base(",'fair_by':null"), "fair_by null");
    if (!out)
        return;
    CHECK(!has_key(out, "0", "fair_by"));
    json_object_put(out);
}

static void test_full(void)
{
    json_object *in = parse(full_body);
    json_object *meta_in = json_object_get(at(in, "0.metadata"));
    json_object *out = expect_ok_body(in, "full");
    if (!out) {
        json_object_put(meta_in);
        return;
    }
    CHECK_INT((long long)json_object_array_length(out), 3);
    CHECK_STR(str_at(out, "0.local_id"), "ingest");
    CHECK_STR(str_at(out, "0.name"), "Ingest A");
    CHECK_STR(str_at(out, "0.kind"), "data-processing");
    CHECK_INT(int_at(out, "0.timeout"), 120);
    CHECK_INT(int_at(out, "0.priority"), -5);
    CHECK(json_object_equal(at(out, "0.metadata"), meta_in));
    CHECK(at(out, "0.metadata") != meta_in); /* a copy: the result owns nothing of the request */
    CHECK(!has_key(out, "0", "extra_task_field"));
    CHECK_STR(str_at(out, "1.local_id"), "first");
    CHECK_INT(int_at(out, "1.timeout"), 1);     /* 1.0 is an integer */
    CHECK_INT(int_at(out, "1.priority"), 1000); /* so is 1e3 */
    CHECK(has_key(out, "1", "metadata") && at(out, "1.metadata") == NULL);
    CHECK_INT(int_at(out, "2.timeout"), 86400);
    CHECK_INT(int_at(out, "2.priority"), -1000);
    CHECK_INT((long long)len_at(out, "2.rules"), 0);
    CHECK_INT((long long)len_at(out, "2.actions"), 1);
    check_full_actions(out);
    check_full_rules(out);
    check_full_deps(out);

    /* every id is new and distinct */
    const char *ids[] = {str_at(out, "0.id"),           str_at(out, "1.id"),
                         str_at(out, "2.id"),           str_at(out, "0.actions.0.id"),
                         str_at(out, "0.actions.1.id"), str_at(out, "1.actions.0.id")};
    for (size_t i = 0; i < 6; i++)
        for (size_t j = i + 1; j < 6; j++)
            CHECK(ids[i] && ids[j] && strcmp(ids[i], ids[j]) != 0);
    json_object_put(meta_in);
    json_object_put(out);
}

/* Boundaries measured in code points, and other lengths in bytes. */
static void test_lengths(void)
{
    char *e255 = repeat("\xc3\xa9", 255), *e256 = repeat("\xc3\xa9", 256);
    char *a255 = repeat("a", 255), *a256 = repeat("a", 256), *k100 = repeat("\xe2\x82\xac", 100);
    char *k101 = repeat("k", 101);
    json_object *body, *out;

    body = parse_base("");
    json_object_object_add(task0(body), "name", json_object_new_string(e255));
    json_object_object_add(task0(body), "id", json_object_new_string(a255));
    json_object_object_add(task0(body), "kind", json_object_new_string(k100));
    out = expect_ok_body(body, "255 two-byte characters");
    if (out)
        CHECK_INT((long long)strlen(str_at(out, "0.name")), 510);
    json_object_put(out);

    body = parse_base("");
    json_object_object_add(task0(body), "name", json_object_new_string(e256));
    expect_error_body(body, "[0].name", "1 to 255 characters", "name 256");
    body = parse_base("");
    json_object_object_add(task0(body), "id", json_object_new_string(a256));
    expect_error_body(body, "[0].id", "1 to 255 characters", "id 256");
    body = parse_base("");
    json_object_object_add(task0(body), "kind", json_object_new_string(k101));
    expect_error_body(body, "[0].kind", "1 to 100 characters", "kind 101");
    body = parse_base("");
    json_object_object_add(task0(body), "name", json_object_new_string("bad \xff utf-8"));
    expect_error_body(body, "[0].name", "must be valid UTF-8", "invalid UTF-8");
    body = parse_base("");
    json_object_object_add(task0(body), "name", json_object_new_string("\xed\xa0\x80"));
    expect_error_body(body, "[0].name", "must be valid UTF-8", "surrogate");
    body = parse_base("");
    json_object_object_add(task0(body), "name", json_object_new_string("\xc0\xaf"));
    expect_error_body(body, "[0].name", "must be valid UTF-8", "overlong");
    /* invalid UTF-8 deep inside free-form JSON, in a value and in a key */
    body = parse_base(",'metadata':{'a':{'b':'x'}}");
    json_object_object_add(at(body, "0.metadata.a"), "b", json_object_new_string("\xff"));
    expect_error_body(body, "[0].metadata.a.b", "must be valid UTF-8", "metadata value");
    body = parse_base(",'metadata':{'a':{}}");
    json_object_object_add(at(body, "0.metadata.a"), "\xfe", json_object_new_int(1));
    expect_error_body(body, "[0].metadata.a", "has a key that is not valid UTF-8", "key");
    body = parse_base(",'on_start':{'params':{'url':'http://x/','body':['ok']}}");
    json_object_array_add(at(body, "0.on_start.params.body"), json_object_new_string("\xc3"));
    expect_error_body(body, "[0].on_start.params.body[1]", "must be valid UTF-8", "body");
    free(e255), free(e256), free(a255), free(a256), free(k100), free(k101);
}

static void set_url(json_object *body, const char *url)
{
    json_object_object_add(at(body, "0.on_start.params"), "url", json_object_new_string(url));
}

static void set_header(json_object *body, const char *name, const char *value)
{
    json_object *params = at(body, "0.on_start.params");
    json_object *h = json_object_new_object();
    json_object_object_add(h, name, json_object_new_string(value));
    json_object_object_add(params, "headers", h);
}

static void test_url_and_headers(void)
{
    const char *good[] = {"http://x", "HTTPS://X.EXAMPLE:8443/a/b?c=d#e", "http://[::1]:8080/",
                          "http://127.0.0.1/run", "https://user:pw@x.example/"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        json_object *body = parse_base("");
        set_url(body, good[i]);
        json_object *out = expect_ok_body(body, good[i]);
        if (out)
            CHECK_STR(str_at(out, "0.actions.0.params.url"), good[i]);
        json_object_put(out);
    }

    char *path = repeat("p", 2048 - strlen("http://x.example/"));
    char *url = xasprintf("http://x.example/%s", path);
    json_object *body = parse_base("");
    set_url(body, url);
    json_object_put(expect_ok_body(body, "url of 2048 bytes"));
    body = parse_base("");
    char *url2 = xasprintf("%sq", url);
    set_url(body, url2);
    expect_error_body(body, "[0].on_start.params.url", "must be at most 2048 bytes", "url 2049");
    free(path), free(url), free(url2);

    char *name256 = repeat("N", 256), *name257 = repeat("N", 257);
    char *v8192 = repeat("v", 8192), *v8193 = repeat("v", 8193);
    body = parse_base("");
    set_header(body, name256, v8192);
    json_object_put(expect_ok_body(body, "header 256/8192"));
    body = parse_base("");
    set_header(body, name257, "v");
    expect_error_body(body, "[0].on_start.params.headers", "not a valid header name", "name 257");
    body = parse_base("");
    set_header(body, "X-Long", v8193);
    expect_error_body(body, "[0].on_start.params.headers.X-Long", "at most 8192 bytes", "8193");
    body = parse_base("");
    set_header(body, "!#$%&'*+-.^_`|~09azAZ", "");
    json_object_put(expect_ok_body(body, "every token character, empty value"));
    free(name256), free(name257), free(v8192), free(v8193);
}

static void test_limits(void)
{
    struct verr_list errs;
    json_object *out;
    verr_list_init(&errs);
    json_object *body = parse("[" BASE_TASK "}," BASE_TASK ",'id':'b'}," BASE_TASK ",'id':'c'}]");
    CHECK_INT(run(body, 2, &out, &errs), -1);
    CHECK(out == NULL);
    CHECK_INT((long long)errs.n, 1);
    CHECK(has_error(&errs, "", "at most 2 tasks"));
    verr_list_cleanup(&errs);
    CHECK_INT(run(body, 3, &out, &errs), 0);
    json_object_put(out);
    /* no limits given: the API default of 10,000 */
    CHECK_INT(validate_batch(body, NULL, &out, &errs), 0);
    json_object_put(out);
    json_object_put(body);
    CHECK_INT(run(NULL, 3, &out, &errs), -1);
    CHECK(has_error(&errs, "", "must be a JSON array"));
    verr_list_cleanup(&errs);

    /* expected_count: an optional integer 0..2147483647, kept as given */
    body = parse("[" BASE_TASK ",'expected_count':2147483647}," BASE_TASK ",'id':'b','expected_count':0}]");
    CHECK_INT(run(body, 2, &out, &errs), 0);
    CHECK_INT(json_object_get_int64(at(out, "0.expected_count")), 2147483647);
    CHECK_INT(json_object_get_int64(at(out, "1.expected_count")), 0);
    json_object_put(out);
    json_object_put(body);
    body = parse("[" BASE_TASK ",'expected_count':-1}," BASE_TASK ",'id':'b','expected_count':2147483648},"
                 BASE_TASK ",'id':'c','expected_count':'3'}]");
    CHECK_INT(run(body, 3, &out, &errs), -1);
    CHECK(has_error(&errs, "[0].expected_count", "between 0 and 2147483647"));
    CHECK(has_error(&errs, "[1].expected_count", "between 0 and 2147483647"));
    CHECK(has_error(&errs, "[2].expected_count", "between 0 and 2147483647"));
    verr_list_cleanup(&errs);
    json_object_put(body);

    /* at most 16 actions per list, rules and dedupe matchers */
    const char *lists[][3] = {
        {"on_success", BASE_START, "[0].on_success"},
        {"rules", "{'type':'Concurrency','max_concurrency':1}", "[0].rules"},
        {"dedupe_strategy", "{}", "[0].dedupe_strategy"},
    };
    for (size_t i = 0; i < 3; i++) {
        for (int n = 16; n <= 17; n++) {
            struct strbuf b;
            strbuf_init(&b);
            strbuf_addf(&b, ",'%s':[", lists[i][0]);
            for (int k = 0; k < n; k++)
                strbuf_addf(&b, "%s%s", k ? "," : "", lists[i][1]);
            strbuf_adds(&b, "]");
            body = parse_base(b.data);
            if (n == 16)
                json_object_put(expect_ok_body(body, lists[i][0]));
            else
                expect_error_body(body, lists[i][2], "at most 16 entries", lists[i][0]);
            strbuf_cleanup(&b);
        }
    }

    /* metadata: at most 64 KiB as compact JSON ({"k":"..."} is 8 bytes besides) */
    char *fill = repeat("m", 65536 - 8), *fill2 = repeat("m", 65536 - 7);
    body = parse_base("");
    json_object *meta = json_object_new_object();
    json_object_object_add(meta, "k", json_object_new_string(fill));
    json_object_object_add(task0(body), "metadata", meta);
    json_object_put(expect_ok_body(body, "metadata 65536"));
    body = parse_base("");
    meta = json_object_new_object();
    json_object_object_add(meta, "k", json_object_new_string(fill2));
    json_object_object_add(task0(body), "metadata", meta);
    expect_error_body(body, "[0].metadata", "at most 65536 bytes", "metadata 65537");
    free(fill), free(fill2);
}

/* Several problems in one body are all reported, each at its path. */
static void test_many_errors(void)
{
    json_object *body = parse(
        "[{'id':'a','name':'','kind':'k','timeout':0,'on_start':{'params':{'url':'ftp://x/'}},"
        "  'on_success':[" BASE_START ",{'params':{'url':'http://x/','verb':'Fly'}}],"
        "  'rules':[{'type':'Concurrency','max_concurrency':0,'matcher':{'fields':['t']}}],"
        "  'dependencies':[{'id':'nope'},{'id':'a'}]},"
        " {'id':'a','name':'n','kind':'k'},"
        " 7]");
    struct verr_list errs;
    json_object *out;
    verr_list_init(&errs);
    CHECK_INT(run(body, 100, &out, &errs), -1);
    CHECK(out == NULL);
    const char *want[][2] = {
        {"[0].name", "must be a string of 1 to 255 characters"},
        {"[0].timeout", "between 1 and 86400"},
        {"[0].on_start.params.url", "absolute http or https URL"},
        {"[0].on_success[1].params.verb", "must be one of"},
        {"[0].rules[0].max_concurrency", "between 1 and 100000"},
        {"[0].rules[0].matcher.fields[0]", "\"t\" is not a key"},
        {"[0].dependencies[0].id", "unknown task id \"nope\""},
        {"[0].dependencies[1].id", "cannot depend on itself"},
        {"[1].id", "duplicate task id \"a\" (also used by [0])"},
        {"[1].on_start", "is required"},
        {"[2]", "must be an object"},
    };
    size_t nwant = sizeof want / sizeof *want;
    for (size_t i = 0; i < nwant; i++)
        if (!CHECK(has_error(&errs, want[i][0], want[i][1])))
            fprintf(stderr, "    missing %s: %s\n", want[i][0], want[i][1]);
    if (!CHECK_INT((long long)errs.n, (long long)nwant))
        print_errors(&errs);

    /* and they serialize as the API's details */
    json_object *details = verr_list_to_json(&errs);
    CHECK_INT((long long)json_object_array_length(details), (long long)errs.n);
    CHECK_STR(str_at(details, "0.field"), errs.items[0].field);
    CHECK_STR(str_at(details, "0.message"), errs.items[0].message);
    CHECK_INT(json_object_object_length(json_object_array_get_idx(details, 0)), 2);
    json_object_put(details);
    json_object_put(body);
    verr_list_cleanup(&errs);
    verr_list_cleanup(NULL);

    verr_add(&errs, "[%d]", "x %s %d", "y", 3); /* the field is not a format */
    verr_add(&errs, NULL, "z");
    CHECK_INT((long long)errs.n, 2);
    CHECK_STR(errs.items[0].field, "[%d]");
    CHECK_STR(errs.items[0].message, "x y 3");
    CHECK_STR(errs.items[1].field, "");
    verr_list_cleanup(&errs);
    CHECK(errs.n == 0 && errs.items == NULL);
}

/* ------------------------------------------------------------------------ */
/* Dependency cycles                                                         */
/* ------------------------------------------------------------------------ */

/* A task with the given local id depending on the comma-separated ids. */
static void add_task(struct strbuf *b, const char *id, const char *deps)
{
    strbuf_addf(b, "%s{'id':'%s','name':'n','kind':'k','on_start':" BASE_START ",'dependencies':[",
                b->len > 1 ? "," : "", id);
    char *copy = xstrdup(deps), *save = NULL;
    int k = 0;
    for (char *d = strtok_r(copy, ",", &save); d; d = strtok_r(NULL, ",", &save))
        strbuf_addf(b, "%s{'id':'%s'}", k++ ? "," : "", d);
    strbuf_adds(b, "]}");
    free(copy);
}

/* Validates tasks given as "id:dep,dep;id:dep;..." and returns the errors. */
static void run_graph(const char *spec, struct verr_list *errs)
{
    struct strbuf b;
    strbuf_init(&b);
    strbuf_adds(&b, "[");
    char *copy = xstrdup(spec), *save = NULL;
    for (char *t = strtok_r(copy, ";", &save); t; t = strtok_r(NULL, ";", &save)) {
        char *colon = strchr(t, ':');
        *colon = '\0';
        add_task(&b, t, colon + 1);
    }
    strbuf_adds(&b, "]");
    json_object *body = parse(b.data), *out;
    if (run(body, 100, &out, errs) == 0)
        json_object_put(out);
    json_object_put(body);
    strbuf_cleanup(&b);
    free(copy);
}

struct graph_case {
    const char *spec;
    size_t nerrs;
    const char *field, *message; /* one of the errors */
    const char *field2, *message2;
};

static const struct graph_case graph_cases[] = {
    {"a:b;b:a", 1, "[0].dependencies", "cycle: a -> b -> a", NULL, NULL},
    {"a:b;b:c;c:d;d:e;e:a", 1, "[0].dependencies", "cycle: a -> b -> c -> d -> e -> a", NULL, NULL},
    /* the report starts at the first task of the cycle in the body */
    {"x:;c:a;a:b;b:c", 1, "[1].dependencies", "cycle: c -> a -> b -> c", NULL, NULL},
    /* tasks that only depend on a cycle are not on it */
    {"t:b;b:c;c:b;u:t", 1, "[1].dependencies", "cycle: b -> c -> b", NULL, NULL},
    /* two separate cycles: both reported */
    {"a:b;b:a;c:d;d:e;e:c", 2, "[0].dependencies", "cycle: a -> b -> a", "[2].dependencies",
     "cycle: c -> d -> e -> c"},
    /* the walk from a enters the cycle at c; the report still starts at b */
    {"a:c;b:c,a;c:b", 1, "[1].dependencies", "cycle: b -> c -> b", NULL, NULL},
    /* one tangle (a single component) is one report */
    {"a:b,c;b:a;c:a", 1, "[0].dependencies", "cycle: a -> ", NULL, NULL},
    /* a self-dependency is its own error, not a cycle */
    {"a:a", 1, "[0].dependencies[0].id", "cannot depend on itself", NULL, NULL},
    /* a diamond is fine */
    {"a:;b:a;c:a;d:b,c", 0, NULL, NULL, NULL, NULL},
};

static void test_cycles(void)
{
    for (size_t i = 0; i < sizeof graph_cases / sizeof *graph_cases; i++) {
        const struct graph_case *gc = &graph_cases[i];
        struct verr_list errs;
        verr_list_init(&errs);
        run_graph(gc->spec, &errs);
        bool ok = CHECK_INT((long long)errs.n, (long long)gc->nerrs);
        if (gc->field)
            ok = CHECK(has_error(&errs, gc->field, gc->message)) && ok;
        if (gc->field2)
            ok = CHECK(has_error(&errs, gc->field2, gc->message2)) && ok;
        if (!ok) {
            fprintf(stderr, "    graph %s\n", gc->spec);
            print_errors(&errs);
        }
        verr_list_cleanup(&errs);
    }
}

/* ------------------------------------------------------------------------ */
/* Enum names and UUIDs                                                      */
/* ------------------------------------------------------------------------ */

static void test_names(void)
{
    const char *statuses[][2] = {{"waiting", "Waiting"},   {"PENDING", "Pending"},
                                 {"Claimed", "Claimed"},   {"rUnNiNg", "Running"},
                                 {"success", "Success"},   {"FAILURE", "Failure"},
                                 {"canceled", "Canceled"}, {"paused", "Paused"}};
    for (size_t i = 0; i < 8; i++)
        CHECK_STR(validate_status_name(statuses[i][0]), statuses[i][1]);
    CHECK(validate_status_name("Cancelled") == NULL);
    CHECK(validate_status_name("") == NULL);
    CHECK(validate_status_name(NULL) == NULL);
    CHECK(validate_status_name("Running ") == NULL);

    const char *verbs[][2] = {
        {"get", "Get"}, {"POST", "Post"}, {"put", "Put"}, {"pAtCh", "Patch"}, {"Delete", "Delete"}};
    for (size_t i = 0; i < 5; i++)
        CHECK_STR(validate_verb_name(verbs[i][0]), verbs[i][1]);
    CHECK(validate_verb_name("HEAD") == NULL);
    CHECK(validate_verb_name(NULL) == NULL);

    CHECK(validate_is_uuid("123e4567-e89b-12d3-a456-426614174000"));
    CHECK(validate_is_uuid("123E4567-E89B-12D3-A456-426614174000"));
    CHECK(!validate_is_uuid("123e4567-e89b-12d3-a456-42661417400"));
    CHECK(!validate_is_uuid("123e4567-e89b-12d3-a456-4266141740000"));
    CHECK(!validate_is_uuid("123e4567e89b-12d3-a456-4266141740000"));
    CHECK(!validate_is_uuid("123e4567-e89b-12d3-a456-42661417400g"));
    CHECK(!validate_is_uuid("{23e4567-e89b-12d3-a456-426614174000"));
    CHECK(!validate_is_uuid(""));
    CHECK(!validate_is_uuid(NULL));

    /* RFC 3339, as chrono writes a DateTime<Utc> and as clients send it. */
    const char *good_ts[] = {"2026-11-26T10:00:00Z", "2026-11-26T10:00:00.123456Z",
                             "2026-11-26T10:00:00.123456789Z", "2026-11-26t10:00:00z",
                             "2026-11-26T10:00:00+01:00", "2026-11-26T10:00:00.5-05:30"};
    for (size_t i = 0; i < sizeof good_ts / sizeof *good_ts; i++)
        CHECK(validate_is_rfc3339(good_ts[i]));
    const char *bad_ts[] = {"", "2026-11-26", "2026-11-26T10:00:00", "2026-11-26 10:00:00Z",
                            "2026-13-26T10:00:00Z", "2026-11-26T24:00:00Z",
                            "2026-11-26T10:00:00.Z", "2026-11-26T10:00:00.1234567890Z",
                            "2026-11-26T10:00:00+0100", "2026-11-26T10:00:00Zx",
                            "yesterday"};
    for (size_t i = 0; i < sizeof bad_ts / sizeof *bad_ts; i++)
        CHECK(!validate_is_rfc3339(bad_ts[i]));
    CHECK(!validate_is_rfc3339(NULL));
}

/* ------------------------------------------------------------------------ */
/* Large batches                                                             */
/* ------------------------------------------------------------------------ */

#define PERF_N 10000

static json_object *perf_task(size_t i)
{
    char id[32];
    snprintf(id, sizeof id, "t%zu", i);
    json_object *t = json_object_new_object();
    json_object_object_add(t, "id", json_object_new_string(id));
    json_object_object_add(t, "name", json_object_new_string(id));
    json_object_object_add(t, "kind", json_object_new_string("perf"));
    json_object *params = json_object_new_object();
    json_object_object_add(params, "url", json_object_new_string("https://exec.example/run"));
    json_object *start = json_object_new_object();
    json_object_object_add(start, "params", params);
    json_object_object_add(t, "on_start", start);
    json_object_object_add(t, "dependencies", json_object_new_array());
    return t;
}

static void perf_dep(json_object *body, size_t child, size_t parent)
{
    char id[32];
    snprintf(id, sizeof id, "t%zu", parent);
    json_object *d = json_object_new_object();
    json_object_object_add(d, "id", json_object_new_string(id));
    json_object_array_add(at(json_object_array_get_idx(body, child), "dependencies"), d);
}

enum perf_shape { PERF_CHAIN, PERF_FAN_IN, PERF_CYCLE, PERF_RANDOM };

static json_object *perf_body(enum perf_shape shape)
{
    json_object *body = json_object_new_array();
    unsigned seed = 12345;
    for (size_t i = 0; i < PERF_N; i++)
        json_object_array_add(body, perf_task(i));
    for (size_t i = 1; i < PERF_N; i++) {
        if (shape == PERF_CHAIN || shape == PERF_CYCLE) {
            perf_dep(body, i, i - 1);
        } else if (shape == PERF_FAN_IN) {
            perf_dep(body, PERF_N - 1, i - 1);
        } else {
            /* up to 3 distinct parents, earlier in the body or later (reversed indexes) */
            size_t k = (size_t)(rand_r(&seed) % 4), first = (size_t)rand_r(&seed) % i;
            for (size_t j = 0; j < k && first + j < i; j++)
                perf_dep(body, PERF_N - 1 - i, PERF_N - 1 - (first + j));
        }
    }
    if (shape == PERF_CYCLE)
        perf_dep(body, 0, PERF_N - 1);
    return body;
}

static void test_perf_case(enum perf_shape shape, const char *label, bool want_ok)
{
    json_object *body = perf_body(shape), *out = NULL;
    struct verr_list errs;
    verr_list_init(&errs);
    long long t0 = util_mono_ms();
    int rc = run(body, PERF_N, &out, &errs);
    long long ms = util_mono_ms() - t0;
    printf("perf: %-28s %5lld ms (%s, %zu errors)\n", label, ms, rc == 0 ? "valid" : "invalid",
           errs.n);
    CHECK(ms < 2000);
    if (want_ok) {
        if (CHECK_INT(rc, 0) && CHECK_INT((long long)json_object_array_length(out), PERF_N)) {
            if (shape == PERF_FAN_IN)
                CHECK_INT((long long)len_at(out, "9999.deps"), PERF_N - 1);
            if (shape == PERF_CHAIN)
                CHECK_STR(str_at(out, "9999.deps.0.id"), str_at(out, "9998.id"));
        }
    } else {
        CHECK_INT(rc, -1);
        CHECK_INT((long long)errs.n, 1);
        /* t0 depends on t9999, which depends on t9998, ... */
        CHECK(has_error(&errs, "[0].dependencies", "cycle: t0 -> t9999 -> t9998 -> t9997 -> "));
        CHECK(has_error(&errs, "[0].dependencies", "-> ... (9980 more) -> t0"));
        if (errs.n && strlen(errs.items[0].message) > 400)
            CHECK(!"the cycle message should be short");
    }
    json_object_put(out);
    json_object_put(body);
    verr_list_cleanup(&errs);
}

static void test_perf(void)
{
    test_perf_case(PERF_CHAIN, "10,000-task chain", true);
    test_perf_case(PERF_FAN_IN, "9,999 tasks fanning into one", true);
    test_perf_case(PERF_RANDOM, "10,000-task random DAG", true);
    test_perf_case(PERF_CYCLE, "10,000-task cycle", false);
}

int main(void)
{
    test_names();
    test_error_table();
    test_minimal();
    test_full();
    test_fair_by();
    test_unknown_fields();
    test_lengths();
    test_url_and_headers();
    test_limits();
    test_many_errors();
    test_cycles();
    test_perf();
    return check_exit();
}

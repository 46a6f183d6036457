/*
 * tasks: the /tasks endpoints. Each handler reads and checks its input, makes
 * one call to a database function (one transaction) and answers with its
 * result; the state machine itself lives in sql/functions/ (tasks.sql for
 * these endpoints).
 */
#include <errno.h>
#include <libpq-fe.h>
#include <nettle/sha2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uuid/uuid.h>

#include "api.h"
#include "handlers.h"
#include "log.h"
#include "reply.h"
#include "statuses.h"
#include "validate.h"

static const char SQL_CREATE[] =
    "SELECT code, body, batch_id FROM tr_create_batch($1::uuid, $2, $3, $4, $5::jsonb, $6)";
static const char SQL_GET[] = "SELECT code, body FROM tr_get_task($1::uuid)";
static const char SQL_PATCH[] =
    "SELECT code, body FROM tr_patch_task($1::uuid, $2::task_status, $3::bigint, $4::bigint, "
    "$5::boolean, $6::jsonb, $7, $8::boolean, $9::integer, $10, $11::integer, $12::integer, "
    "$13::boolean, $14::jsonb)";
static const char SQL_COUNT[] =
    "SELECT code, body FROM tr_count_task($1::uuid, $2::bigint, $3::bigint, $4::integer, $5)";
static const char SQL_RERUN[] = "SELECT code, body FROM tr_rerun_task($1::uuid, $2::boolean, $3)";
static const char SQL_CANCEL[] = "SELECT code, body FROM tr_cancel_task($1::uuid, $2)";
static const char SQL_PAUSE[] = "SELECT code, body FROM tr_pause_task($1::uuid, $2)";
static const char SQL_RESUME[] = "SELECT code, body FROM tr_resume_task($1::uuid, $2)";
static const char SQL_HISTORY[] =
    "SELECT code, body FROM tr_task_history($1::uuid, $2::bigint, $3::bigint)";
static const char SQL_BLOCKERS[] = "SELECT code, body FROM tr_task_blockers($1::uuid)";
/* Filters are NULL when not given; PostgreSQL folds those tests away in the
 * plan of each call, so every combination uses its index. */
/* Live tasks and, with include_deleted=true ($10), soft-deleted ones: each
 * from its own partial index (sql/migrations/0092), merged; the second part
 * is folded away when $10 is false. */
#define LIST_FILTERS                                                                              \
    " WHERE ($1::task_status IS NULL OR status = $1::task_status) AND ($2::text IS NULL OR kind = $2)" \
    " AND ($3::text IS NULL OR strpos(name, $3) > 0) AND ($4::uuid IS NULL OR batch_id = $4)"      \
    " AND ($5::jsonb IS NULL OR metadata @> $5) AND ($6::integer IS NULL OR timeout = $6)"   \
    " AND ($9::text IS NULL OR grp = $9)"
static const char SQL_LIST[] =
    "SELECT coalesce(json_agg(tr_task_summary_json(t) ORDER BY t.created_at DESC, t.seq DESC),"
    " '[]')::text FROM (SELECT * FROM ("
    "(SELECT * FROM tasks" LIST_FILTERS " AND deleted_at IS NULL"
    " ORDER BY created_at DESC, seq DESC LIMIT $7::bigint + $8::bigint)"
    " UNION ALL (SELECT * FROM tasks" LIST_FILTERS " AND $10::boolean AND deleted_at IS NOT NULL"
    " ORDER BY created_at DESC, seq DESC LIMIT $7::bigint + $8::bigint)) u"
    " ORDER BY created_at DESC, seq DESC LIMIT $7::bigint OFFSET $8::bigint) t";
static const char SQL_SOFT_DELETE[] =
    "SELECT code, body FROM tr_soft_delete_task($1::uuid, $2::boolean, $3)";

enum { IDEMPOTENCY_KEY_MAX = 255, METADATA_MAX = 65536, OUTPUT_MAX = 65536, REASON_MAX = 4096, PRIORITY_MAX = 1000,
       TIMEOUT_MAX = 86400 };
static const long long COUNT_MAX = 1000000000000LL; /* one increment, sanity bound */

static const char *json_plain(json_object *o)
{
    return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

/* ---------------------------------------------------------------- create */

/* The fingerprint an Idempotency-Key is stored with: the SHA-256 of the
 * request's body, as hex. (Only POST /tasks, or its alias /task, takes a
 * key, so the method and path add nothing.) */
static void body_digest(const char *body, size_t len, char out[2 * SHA256_DIGEST_SIZE + 1])
{
    uint8_t d[SHA256_DIGEST_SIZE];
    struct sha256_ctx ctx;
    sha256_init(&ctx);
    sha256_update(&ctx, len, (const uint8_t *)body);
    sha256_digest(&ctx, sizeof d, d);
    for (size_t i = 0; i < sizeof d; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

void tasks_create(struct request *r, const char *unused)
{
    json_object *body = NULL, *normalized = NULL;
    struct verr_list errs;
    verr_list_init(&errs);
    PGresult *res = NULL;

    const char *idem = request_param(r, "HTTP_IDEMPOTENCY_KEY");
    if (idem && (strlen(idem) == 0 || strlen(idem) > IDEMPOTENCY_KEY_MAX)) {
        reply_error(r, 400, "Idempotency-Key must be 1 to 255 characters", NULL);
        goto out;
    }
    if (request_json_body_or_reply(r, &body) < 0)
        goto out;
    struct validate_limits lim = {.max_tasks = r->cfg->max_batch};
    if (validate_batch(body, &lim, &normalized, &errs) < 0) {
        reply_invalid(r, "invalid tasks", &errs);
        goto out;
    }

    uuid_t u;
    char batch_id[37];
    uuid_generate_random(u);
    uuid_unparse_lower(u, batch_id);
    char digest[2 * SHA256_DIGEST_SIZE + 1];
    body_digest(r->body, r->body_len, digest);
    const char *params[] = {batch_id, r->requester, idem, idem ? digest : NULL,
                            json_plain(normalized), r->actor};
    struct db_error err;
    if (db_query(r->db, SQL_CREATE, 6, params, &res, &err) < 0) {
        reply_db_error(r, &err);
        goto out;
    }
    int code = atoi(PQgetvalue(res, 0, 0));
    char header[96];
    snprintf(header, sizeof header, "X-Batch-ID: %s\r\n", PQgetvalue(res, 0, 2));
    log_set_context("req=%s batch=%s requester=%s", r->request_id, PQgetvalue(res, 0, 2),
                    r->requester);
    reply_json(r, code, header, PQgetvalue(res, 0, 1));
out:
    PQclear(res);
    json_object_put(body);
    json_object_put(normalized);
    verr_list_cleanup(&errs);
}

/* ---------------------------------------------------------------- read */

void tasks_get(struct request *r, const char *id)
{
    const char *params[] = {id};
    api_call(r, SQL_GET, 1, params, NULL);
}

/* Whether s is a plain decimal integer (no sign, no spaces) within lo..hi. */
static bool is_decimal_in(const char *s, long long lo, long long hi)
{
    size_t n = strlen(s);
    if (n == 0 || n > 18 || strspn(s, "0123456789") != n)
        return false;
    long long v = strtoll(s, NULL, 10);
    return v >= lo && v <= hi;
}

struct list_query {
    char *status, *kind, *name, *batch_id, *metadata, *timeout, *group;
};

static void list_query_cleanup(struct list_query *q)
{
    free(q->timeout);
    free(q->status);
    free(q->kind);
    free(q->name);
    free(q->batch_id);
    free(q->metadata);
    free(q->group);
}

static int list_read_query_or_reply(struct request *r, struct list_query *q)
{
    if (request_query_value_or_reply(r, "status", &q->status) < 0 ||
        request_query_value_or_reply(r, "kind", &q->kind) < 0 ||
        request_query_value_or_reply(r, "name", &q->name) < 0 ||
        request_query_value_or_reply(r, "batch_id", &q->batch_id) < 0 ||
        request_query_value_or_reply(r, "metadata", &q->metadata) < 0 ||
        request_query_value_or_reply(r, "timeout", &q->timeout) < 0 ||
        request_query_value_or_reply(r, "group", &q->group) < 0)
        return -1;
    return 0;
}

void tasks_list(struct request *r, const char *unused)
{
    struct list_query q = {0};
    struct verr_list errs;
    verr_list_init(&errs);
    json_object *meta = NULL;
    PGresult *res = NULL;
    const char *status = NULL;
    struct api_page page;

    if (list_read_query_or_reply(r, &q) < 0)
        goto out;
    if (q.status && !(status = validate_status_name(q.status)))
        verr_add(&errs, "status", "unknown status \"%.64s\"", q.status);
    if (q.batch_id && !validate_is_uuid(q.batch_id))
        verr_add(&errs, "batch_id", "must be a UUID");
    if (q.timeout && !is_decimal_in(q.timeout, 1, TIMEOUT_MAX))
        verr_add(&errs, "timeout", "must be an integer between 1 and %d", TIMEOUT_MAX);
    const char *include_deleted;
    if (api_page_or_reply(r, &errs, &page) < 0 ||
        api_flag_or_reply(r, "include_deleted", &errs, &include_deleted) < 0)
        goto out;
    if (q.metadata) {
        meta = json_tokener_parse(q.metadata);
        if (!meta || !json_object_is_type(meta, json_type_object))
            verr_add(&errs, "metadata", "must be a URL-encoded JSON object");
        else
            (void)validate_json_value(meta, "metadata", &errs);
    }
    if (errs.n > 0) {
        reply_invalid(r, "invalid query", &errs);
        goto out;
    }
    const char *params[] = {status, q.kind, q.name, q.batch_id, meta ? json_plain(meta) : NULL,
                            q.timeout, page.limit, page.offset, q.group, include_deleted};
    struct db_error err;
    if (db_query_unprepared(r->db, SQL_LIST, 10, params, &res, &err) < 0) {
        reply_db_error(r, &err);
        goto out;
    }
    reply_json(r, 200, NULL, PQgetvalue(res, 0, 0));
out:
    PQclear(res);
    json_object_put(meta);
    list_query_cleanup(&q);
    verr_list_cleanup(&errs);
}

/* ---------------------------------------------------------------- progress */

/* Reads optional non-negative integer field key of o into text (a decimal,
 * "0" when absent); records a problem otherwise. */
static void read_count(json_object *o, const char *key, char *text, size_t size,
                       struct verr_list *errs)
{
    json_object *v;
    snprintf(text, size, "0");
    if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
        return;
    errno = 0;
    long long n = json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : -1;
    if (errno || n < 0 || n > COUNT_MAX) {
        verr_add(errs, key, "must be a non-negative integer (at most %lld)", COUNT_MAX);
        return;
    }
    snprintf(text, size, "%lld", n);
}

/* Reads optional integer field key of o, lo..hi, into text (a decimal);
 * *given says whether it was there (a JSON null is not). Records a problem
 * otherwise. */
static void read_optional_int(json_object *o, const char *key, long long lo, long long hi,
                              char *text, size_t size, bool *given, struct verr_list *errs)
{
    json_object *v;
    *given = false;
    text[0] = '\0';
    if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
        return;
    errno = 0;
    long long n = json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : lo - 1;
    if (errno || n < lo || n > hi) {
        verr_add(errs, key, "must be an integer between %lld and %lld", lo, hi);
        return;
    }
    snprintf(text, size, "%lld", n);
    *given = true;
}

static int json_object_body_or_reply(struct request *r, json_object **body)
{
    if (request_json_body_or_reply(r, body) < 0)
        return -1;
    if (!json_object_is_type(*body, json_type_object)) {
        json_object_put(*body);
        *body = NULL;
        return reply_error(r, 400, "request body must be a JSON object", NULL);
    }
    return 0;
}

/* The start attempt a callback comes from: the handle of a start call ends
 * in ?attempt=<n> (API.md, "Retries"). NULL text when the query has none;
 * a malformed one is reported in errs. */
static int read_attempt_or_reply(struct request *r, struct verr_list *errs, char *out,
                                 size_t size, const char **param)
{
    char *text = NULL;
    *param = NULL;
    if (request_query_value_or_reply(r, "attempt", &text) < 0)
        return -1;
    if (text) {
        char *end;
        errno = 0;
        long long n = strtoll(text, &end, 10);
        if (errno || end == text || *end || n < 1 || n > 2147483647LL)
            verr_add(errs, "attempt", "must be a start attempt (a positive integer)");
        else {
            snprintf(out, size, "%lld", n);
            *param = out;
        }
    }
    free(text);
    return 0;
}

void tasks_patch(struct request *r, const char *id)
{
    json_object *body = NULL, *v;
    struct verr_list errs;
    verr_list_init(&errs);
    char succ[24], fail[24], attempt_text[24], priority[24], expected[24];
    bool has_priority, has_expected;
    const char *status = NULL, *reason = NULL, *metadata = NULL, *set_metadata = "false";
    const char *retryable = NULL, *attempt, *output = NULL, *set_output = "false";

    if (json_object_body_or_reply(r, &body) < 0 ||
        read_attempt_or_reply(r, &errs, attempt_text, sizeof attempt_text, &attempt) < 0)
        goto out;
    if (json_object_object_get_ex(body, "status", &v) && !json_object_is_type(v, json_type_null)) {
        status = json_object_is_type(v, json_type_string)
                     ? validate_status_name(json_object_get_string(v)) : NULL;
        if (!status || (strcmp(status, task_status_name(TASK_SUCCESS)) != 0 &&
                        strcmp(status, task_status_name(TASK_FAILURE)) != 0)) {
            verr_add(&errs, "status", "must be \"Success\" or \"Failure\"");
            status = NULL;
        }
    }
    read_count(body, "new_success", succ, sizeof succ, &errs);
    read_count(body, "new_failures", fail, sizeof fail, &errs);
    if (json_object_object_get_ex(body, "metadata", &v)) {
        set_metadata = "true";
        if (json_object_is_type(v, json_type_object)) {
            metadata = json_plain(v);
            if (strlen(metadata) > METADATA_MAX)
                verr_add(&errs, "metadata", "must be at most %d bytes", METADATA_MAX);
            (void)validate_json_value(v, "metadata", &errs);
        } else if (!json_object_is_type(v, json_type_null)) {
            verr_add(&errs, "metadata", "must be an object or null");
        }
    }
    /* "output": any JSON value of at most OUTPUT_MAX bytes (null clears it). */
    if (json_object_object_get_ex(body, "output", &v)) {
        set_output = "true";
        if (v) {
            output = json_plain(v);
            if (strlen(output) > OUTPUT_MAX)
                verr_add(&errs, "output", "must be at most %d bytes", OUTPUT_MAX);
            (void)validate_json_value(v, "output", &errs);
        }
    }
    if (json_object_object_get_ex(body, "failure_reason", &v) &&
        !json_object_is_type(v, json_type_null)) {
        if (!json_object_is_type(v, json_type_string) ||
            json_object_get_string_len(v) > REASON_MAX ||
            strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v))
            verr_add(&errs, "failure_reason", "must be a string of at most %d bytes", REASON_MAX);
        else
            reason = json_object_get_string(v);
    }
    if (status && strcmp(status, task_status_name(TASK_FAILURE)) == 0 && (!reason || !*reason))
        verr_add(&errs, "failure_reason", "is required when status is Failure");
    /* "retryable": false makes a failure final (no retry left or not). */
    if (json_object_object_get_ex(body, "retryable", &v) && !json_object_is_type(v, json_type_null)) {
        if (!json_object_is_type(v, json_type_boolean))
            verr_add(&errs, "retryable", "must be true or false");
        else
            retryable = json_object_get_boolean(v) ? "true" : "false";
    }
    read_optional_int(body, "priority", -PRIORITY_MAX, PRIORITY_MAX, priority, sizeof priority,
                      &has_priority, &errs);
    read_optional_int(body, "expected_count", 0, INT32_MAX, expected, sizeof expected,
                      &has_expected, &errs);
    /* Priority changes before the start, progress comes after it: never both. */
    if (has_priority && (status || reason || strcmp(succ, "0") != 0 || strcmp(fail, "0") != 0 ||
                         strcmp(set_metadata, "true") == 0 || strcmp(set_output, "true") == 0))
        verr_add(&errs, "priority",
                 "cannot change together with status, counts, metadata, output or failure_reason");
    if (errs.n > 0) {
        reply_invalid(r, "invalid update", &errs);
        goto out;
    }
    const char *params[] = {id,       status, succ,      fail,    set_metadata, metadata,
                            reason,   retryable, attempt, r->actor,
                            has_priority ? priority : NULL, has_expected ? expected : NULL,
                            set_output, output};
    api_call(r, SQL_PATCH, 14, params, NULL);
out:
    json_object_put(body);
    verr_list_cleanup(&errs);
}

void tasks_count(struct request *r, const char *id)
{
    json_object *body = NULL;
    struct verr_list errs;
    verr_list_init(&errs);
    char succ[24], fail[24], attempt_text[24];
    const char *attempt;

    if (json_object_body_or_reply(r, &body) < 0 ||
        read_attempt_or_reply(r, &errs, attempt_text, sizeof attempt_text, &attempt) < 0)
        goto out;
    read_count(body, "new_success", succ, sizeof succ, &errs);
    read_count(body, "new_failures", fail, sizeof fail, &errs);
    if (errs.n > 0) {
        reply_invalid(r, "invalid counts", &errs);
        goto out;
    }
    const char *params[] = {id, succ, fail, attempt, r->actor};
    api_call(r, SQL_COUNT, 5, params, NULL);
out:
    json_object_put(body);
    verr_list_cleanup(&errs);
}

/* ---------------------------------------------------------------- control */

void tasks_cancel(struct request *r, const char *id)
{
    const char *params[] = {id, r->actor};
    api_call(r, SQL_CANCEL, 2, params, NULL);
}

void tasks_soft_delete(struct request *r, const char *id)
{
    const char *params[] = {id, "true", r->actor};
    api_call(r, SQL_SOFT_DELETE, 3, params, NULL);
}

void tasks_restore(struct request *r, const char *id)
{
    const char *params[] = {id, "false", r->actor};
    api_call(r, SQL_SOFT_DELETE, 3, params, NULL);
}

void tasks_pause(struct request *r, const char *id)
{
    const char *params[] = {id, r->actor};
    api_call(r, SQL_PAUSE, 2, params, NULL);
}

void tasks_resume(struct request *r, const char *id)
{
    const char *params[] = {id, r->actor};
    api_call(r, SQL_RESUME, 2, params, NULL);
}

/* ---------------------------------------------------------------- observability */

void tasks_history(struct request *r, const char *id)
{
    api_call_paged(r, SQL_HISTORY, id);
}

void tasks_blockers(struct request *r, const char *id)
{
    const char *params[] = {id};
    api_call(r, SQL_BLOCKERS, 1, params, NULL);
}

/* ---------------------------------------------------------------- re-run */

/* POST /tasks/{id}/retry[?downstream=true] */
void tasks_retry(struct request *r, const char *id)
{
    char *downstream = NULL;
    struct verr_list errs;
    verr_list_init(&errs);
    if (request_query_value_or_reply(r, "downstream", &downstream) < 0)
        goto out;
    if (downstream && strcmp(downstream, "true") != 0 && strcmp(downstream, "false") != 0)
        verr_add(&errs, "downstream", "must be true or false");
    if (errs.n > 0) {
        reply_invalid(r, "invalid query", &errs);
        goto out;
    }
    const char *params[] = {id, downstream && strcmp(downstream, "true") == 0 ? "true" : "false",
                            r->actor};
    api_call(r, SQL_RERUN, 3, params, NULL);
out:
    free(downstream);
    verr_list_cleanup(&errs);
}

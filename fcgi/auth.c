/*
 * auth: API tokens and callback tokens on requests (see auth.h).
 *
 * File state: the token table and the callback secret, set once by
 * auth_init() before the threads start and only read afterwards, so the
 * responder threads share them without a lock.
 */
#include "auth.h"

#include <ctype.h>
#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "log.h"
#include "urlquery.h"
#include "reply.h"
#include "tokens.h"
#include "validate.h"

static struct token_list api_tokens; /* empty: the API is open */
static bool auth_on;
static const char *callback_secret; /* cfg's, when auth_on */

static const char SQL_TASK_ATTEMPT[] = "SELECT attempt FROM tasks WHERE id = $1::uuid";

enum { TOKENS_FILE_MAX = 1 << 20 };

/* Reads the token file at path into list. */
static int load_file(const char *path, struct token_list *list)
{
    int rc = -1;
    char *text = NULL;
    FILE *f = fopen(path, "r");
    if (!f) {
        log_error("TASKRUNNER_API_TOKENS_FILE: could not open \"%s\": %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && (st.st_mode & 077))
        log_warn("TASKRUNNER_API_TOKENS_FILE: \"%s\" is readable by others than its owner "
                 "(chmod 600 it)",
                 path);
    text = xmalloc(TOKENS_FILE_MAX + 1);
    size_t n = fread(text, 1, TOKENS_FILE_MAX + 1, f);
    if (ferror(f)) {
        log_error("TASKRUNNER_API_TOKENS_FILE: could not read \"%s\": %s", path, strerror(errno));
        goto out;
    }
    if (n > TOKENS_FILE_MAX) {
        log_error("TASKRUNNER_API_TOKENS_FILE: \"%s\" is larger than %d bytes", path,
                  TOKENS_FILE_MAX);
        goto out;
    }
    text[n] = '\0';
    char why[200];
    if (tokens_parse(text, list, why, sizeof why) < 0) {
        log_error("TASKRUNNER_API_TOKENS_FILE: \"%s\": %s", path, why);
        goto out;
    }
    rc = 0;
out:
    if (text)
        memset(text, 0, TOKENS_FILE_MAX + 1);
    free(text);
    fclose(f);
    return rc;
}

int auth_init(const struct config *cfg)
{
    char why[200];
    tokens_cleanup(&api_tokens);
    auth_on = cfg_auth_enabled(cfg);
    if (!auth_on) {
        log_warn("no API tokens configured: the API is open to anyone who can reach it");
        return 0;
    }
    if (cfg->api_tokens[0] && tokens_parse(cfg->api_tokens, &api_tokens, why, sizeof why) < 0) {
        log_error("bad value for TASKRUNNER_API_TOKENS: %s", why);
        return -1;
    }
    if (cfg->api_tokens_file[0] && load_file(cfg->api_tokens_file, &api_tokens) < 0)
        return -1;
    if (api_tokens.n == 0) {
        log_error("TASKRUNNER_API_TOKENS / TASKRUNNER_API_TOKENS_FILE hold no token");
        return -1;
    }
    callback_secret = cfg->callback_secret;
    log_info("API authentication on: %zu token(s)", api_tokens.n);
    return 0;
}

/* ------------------------------------------------------------ answers */

static int deny(struct request *r, int status, const char *message, const char *challenge)
{
    char header[160];
    if (status == 401)
        snprintf(header, sizeof header, "WWW-Authenticate: Bearer realm=\"taskrunner\"%s\r\n",
                 challenge ? challenge : "");
    /* Not the path: decoded, it may hold control characters. */
    log_info("denied a %s request (%d): %s", r->method, status, message);
    return reply_error_headers(r, status, status == 401 ? header : NULL, message, NULL);
}

/* ------------------------------------------------------------ checks */

static bool is_open_route(const char *pattern)
{
    return strcmp(pattern, "/health") == 0 || strcmp(pattern, "/ready") == 0;
}

static bool is_read_method(const char *method)
{
    return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
}

/* "Bearer <token>" (the scheme in any case, white space around the token)
 * -> the token copied into buf, or NULL when the header is not of that form.
 * A token too long for buf becomes "" (no token matches it). */
static const char *bearer_token(const char *header, char *buf, size_t size)
{
    if (strncasecmp(header, "Bearer", 6) != 0 || (header[6] != ' ' && header[6] != '\t'))
        return NULL;
    const char *t = header + 6;
    while (*t == ' ' || *t == '\t')
        t++;
    size_t n = strlen(t);
    while (n > 0 && (t[n - 1] == ' ' || t[n - 1] == '\t'))
        n--;
    if (n == 0)
        return NULL;
    if (n >= size)
        n = 0;
    memcpy(buf, t, n);
    buf[n] = '\0';
    return buf;
}

static int check_bearer(struct request *r, const char *header)
{
    char buf[TOKEN_MAX + 1];
    const char *presented = bearer_token(header, buf, sizeof buf);
    if (!presented)
        return deny(r, 401, "malformed Authorization header: expected \"Bearer <token>\"",
                    ", error=\"invalid_request\"");
    const struct api_token *t = tokens_find(&api_tokens, presented);
    explicit_bzero(buf, sizeof buf);
    if (!t)
        return deny(r, 401, "unknown API token", ", error=\"invalid_token\"");
    r->actor = t->name;
    if (t->scope == TOKEN_READ && !is_read_method(r->method)) {
        char msg[128];
        snprintf(msg, sizeof msg, "the token \"%s\" may only read (GET)", t->name);
        return deny(r, 403, msg, NULL);
    }
    return 0;
}

/* A callback token (?token=) is good for PATCH and PUT on its task only, and
 * only while the task is at the attempt it was made for. */
static int check_callback(struct request *r, const char *pattern, const char *id,
                          const char *presented)
{
    bool task_route = strcmp(pattern, "/tasks/:id") == 0 || strcmp(pattern, "/task/:id") == 0;
    bool method_ok = strcmp(r->method, "PATCH") == 0 || strcmp(r->method, "PUT") == 0;
    if (!task_route || !method_ok)
        return deny(r, 403, "a callback token allows only PATCH and PUT on its task", NULL);
    if (!id || !validate_is_uuid(id))
        return deny(r, 403, "the callback token is not valid for this task", NULL);
    char task_id[37];
    for (int i = 0; i < 37; i++)
        task_id[i] = (char)tolower((unsigned char)id[i]);
    const char *params[] = {task_id};
    PGresult *res;
    struct db_error err;
    if (db_query(r->db, SQL_TASK_ATTEMPT, 1, params, &res, &err) < 0)
        return reply_db_error(r, &err);
    long long attempt = PQntuples(res) == 1 ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : -1;
    PQclear(res);
    if (attempt < 0 || !tokens_callback_ok(callback_secret, task_id, attempt, presented)) {
        /* The token of an attempt a retry replaced: the executor of that
         * attempt is told it is over, as without API tokens. */
        for (long long earlier = attempt - 1; earlier >= 1 && attempt - earlier <= 10000; earlier--)
            if (tokens_callback_ok(callback_secret, task_id, earlier, presented))
                return reply_error(r, 409, "attempt superseded", NULL);
        return deny(r, 403, "the callback token is not valid for this task and start attempt",
                    NULL);
    }
    r->actor = "executor";
    return 0;
}

int auth_check_or_reply(struct request *r, const char *pattern, const char *id)
{
    if (!auth_on || is_open_route(pattern))
        return 0;
    int rc;
    char *token = NULL;
    const char *header = request_param(r, "HTTP_AUTHORIZATION");
    if (header && *header)
        rc = check_bearer(r, header);
    else if (urlquery_value(r->query, "token", &token) < 0)
        rc = deny(r, 403, "the callback token is not valid for this task", NULL);
    else if (token)
        rc = check_callback(r, pattern, id, token);
    else
        rc = deny(r, 401, "authentication required: send Authorization: Bearer <token>", NULL);
    free(token);
    if (rc == 0)
        log_set_context("req=%s actor=%s", r->request_id, r->actor);
    return rc;
}

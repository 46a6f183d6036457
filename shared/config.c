/*
 * config: the table of settings and its loader (see config.h).
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "ssrf.h"

enum cfg_type { T_STR, T_INT, T_LONG, T_LEVEL, T_URL, T_CIDRS };

struct cfg_entry {
    const char *name;
    enum cfg_type type;
    size_t offset;
    const char *def;
    long min, max;
    unsigned programs;
    const char *doc;
};

#define F(field) offsetof(struct config, field)

static const struct cfg_entry cfg_table[] = {
    {"TASKRUNNER_DATABASE_URL", T_STR, F(database_url), "dbname=taskrunner", 0, 0, CFG_BOTH,
     "libpq connection string"},
    {"TASKRUNNER_LOG_LEVEL", T_LEVEL, F(log_level), "info", 0, 0, CFG_BOTH,
     "error, warn, info or debug"},
    {"TASKRUNNER_PUBLIC_URL", T_URL, F(public_url), "http://127.0.0.1:8080", 0, 0, CFG_BOTH,
     "base URL of the API as executors reach it (the handle)"},
    {"TASKRUNNER_FCGI_THREADS", T_INT, F(fcgi_threads), "4", 1, 256, CFG_FCGI,
     "threads per responder process, each with its own FastCGI and database connection"},
    {"TASKRUNNER_MAX_BATCH", T_INT, F(max_batch), "10000", 1, 1000000, CFG_FCGI,
     "most tasks in one POST /tasks"},
    {"TASKRUNNER_MAX_BODY", T_LONG, F(max_body), "8388608", 1024, 1073741824L, CFG_FCGI,
     "largest request body in bytes"},
    {"TASKRUNNER_PAGE_SIZE_DEFAULT", T_INT, F(page_size_default), "50", 1, 10000, CFG_FCGI,
     "page size of lists when none is asked"},
    {"TASKRUNNER_PAGE_SIZE_MAX", T_INT, F(page_size_max), "100", 1, 10000, CFG_FCGI,
     "largest page size of lists"},
    {"TASKRUNNER_DB_RETRY_AFTER", T_INT, F(db_retry_after), "1", 1, 3600, CFG_FCGI,
     "Retry-After seconds when the database is unavailable"},
    {"TASKRUNNER_POLL_INTERVAL_MS", T_INT, F(poll_interval_ms), "1000", 10, 60000, CFG_WORKER,
     "worker poll when no notification arrives"},
    {"TASKRUNNER_WEBHOOK_TIMEOUT_MS", T_INT, F(webhook_timeout_ms), "10000", 100, 600000,
     CFG_WORKER, "timeout of one webhook call"},
    {"TASKRUNNER_MAX_INFLIGHT", T_INT, F(max_inflight), "256", 1, 100000, CFG_WORKER,
     "webhook calls in flight at once per worker"},
    {"TASKRUNNER_MAX_RESPONSE_BYTES", T_INT, F(max_response_bytes), "65536", 1024, 16777216,
     CFG_WORKER, "largest webhook answer body read"},
    {"TASKRUNNER_RETRY_ATTEMPTS", T_INT, F(retry_attempts), "5", 1, 100, CFG_WORKER,
     "tries of one webhook call, the first included"},
    {"TASKRUNNER_RETRY_BASE_MS", T_INT, F(retry_base_ms), "500", 1, 3600000, CFG_WORKER,
     "delay before the first retry"},
    {"TASKRUNNER_RETRY_FACTOR", T_INT, F(retry_factor), "2", 1, 100, CFG_WORKER,
     "growth of the delay per retry"},
    {"TASKRUNNER_RETRY_CAP_MS", T_INT, F(retry_cap_ms), "60000", 1, 86400000, CFG_WORKER,
     "longest delay between retries"},
    {"TASKRUNNER_SHUTDOWN_GRACE_MS", T_INT, F(shutdown_grace_ms), "10000", 0, 600000, CFG_BOTH,
     "how long requests or calls in flight may finish on SIGTERM"},
    {"TASKRUNNER_CLAIM_BATCH", T_INT, F(claim_batch), "64", 1, 10000, CFG_WORKER,
     "most tasks the worker claims per round trip"},
    {"TASKRUNNER_MAX_INFLIGHT_PER_HOST", T_INT, F(max_inflight_per_host), "32", 1, 100000,
     CFG_WORKER, "webhook calls in flight at once per worker to one scheme, host and port"},
    {"TASKRUNNER_BREAKER_FAILURES", T_INT, F(breaker_failures), "5", 1, 10000, CFG_WORKER,
     "consecutive failed calls to one target that hold it back (circuit breaker)"},
    {"TASKRUNNER_BREAKER_COOLDOWN_MS", T_INT, F(breaker_cooldown_ms), "1000", 10, 3600000,
     CFG_WORKER, "first cool-down of a held-back target before a probe call"},
    {"TASKRUNNER_BREAKER_COOLDOWN_MAX_MS", T_INT, F(breaker_cooldown_max_ms), "60000", 10,
     86400000, CFG_WORKER, "longest cool-down (it doubles after each failed probe)"},
    {"TASKRUNNER_PURGE_DELETED_AFTER", T_LONG, F(purge_deleted_after_s), "604800", 0,
     315360000L, CFG_WORKER,
     "seconds after its soft delete that a task is purged for good (default 7 days)"},
    {"TASKRUNNER_RETENTION", T_LONG, F(retention_s), "0", 0, 315360000L, CFG_WORKER,
     "seconds after which batches whose tasks all ended are purged; 0: never (the default)"},
    {"TASKRUNNER_PURGE_CHUNK", T_INT, F(purge_chunk), "5000", 1, 1000000, CFG_WORKER,
     "most tasks purged in one transaction"},
    {"TASKRUNNER_PURGE_PAUSE_MS", T_INT, F(purge_pause_ms), "50", 0, 3600000, CFG_WORKER,
     "pause between two chunks while there is more to purge (paces the purge)"},
    {"TASKRUNNER_PURGE_INTERVAL_MS", T_INT, F(purge_interval_ms), "60000", 10, 86400000,
     CFG_WORKER, "how often the worker looks for something to purge when it found nothing"},
    {"TASKRUNNER_WEBHOOK_SECRET", T_STR, F(webhook_secret), "", 0, 0, CFG_WORKER,
     "secret of the X-Taskrunner-Signature HMAC; empty sends no signature"},
    {"TASKRUNNER_METRICS_MAX_KINDS", T_INT, F(metrics_max_kinds), "50", 1, 10000, CFG_FCGI,
     "distinct task kinds GET /metrics names; later ones are reported as \"other\""},
    {"TASKRUNNER_METRICS_MAX_GROUPS", T_INT, F(metrics_max_groups), "100", 1, 10000, CFG_FCGI,
     "groups GET /metrics names in taskrunner_group_tasks; later ones are reported as \"other\""},
    {"TASKRUNNER_METRICS_FLUSH_MS", T_INT, F(metrics_flush_ms), "1000", 50, 60000, CFG_BOTH,
     "how often a process adds its in-memory metrics to the totals in the database"},
    {"TASKRUNNER_WEBHOOK_ALLOW_CIDRS", T_CIDRS, F(webhook_allow_cidrs), "", 0, 0, CFG_WORKER,
     "comma-separated CIDRs webhooks may reach although not public (loopback, private, "
     "link-local ...); empty: public addresses only"},
    {"TASKRUNNER_API_TOKENS", T_STR, F(api_tokens), "", 0, 0, CFG_BOTH,
     "API tokens, name:token:scope[,...] with scope read or write; with no token file either, "
     "the API is open"},
    {"TASKRUNNER_API_TOKENS_FILE", T_STR, F(api_tokens_file), "", 0, 0, CFG_BOTH,
     "file of API tokens, one name:token:scope a line (# comments)"},
    {"TASKRUNNER_CALLBACK_SECRET", T_STR, F(callback_secret), "", 0, 0, CFG_BOTH,
     "key of the callback tokens in handles (at least 16 characters); required when API "
     "tokens are configured, the same for responders and workers"},
};

static int cfg_parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int cfg_set(struct config *cfg, const struct cfg_entry *e, const char *value)
{
    char *base = (char *)cfg + e->offset;
    long v;
    switch (e->type) {
    case T_STR:
        *(char **)base = xstrdup(value);
        return 0;
    case T_URL: {
        size_t n = strlen(value);
        if (strncmp(value, "http://", 7) != 0 && strncmp(value, "https://", 8) != 0)
            return -1;
        char *s = xstrdup(value);
        while (n > 0 && s[n - 1] == '/') /* the handle appends "/tasks/..." */
            s[--n] = '\0';
        *(char **)base = s;
        return 0;
    }
    case T_CIDRS: {
        struct ssrf_list l;
        char why[160];
        if (ssrf_parse_list(value, &l, why, sizeof why) < 0)
            return -1;
        ssrf_list_cleanup(&l);
        *(char **)base = xstrdup(value);
        return 0;
    }
    case T_LEVEL:
        v = log_level_parse(value);
        if (v < 0)
            return -1;
        *(int *)base = (int)v;
        return 0;
    case T_INT:
        if (cfg_parse_long(value, e->min, e->max, &v) < 0)
            return -1;
        *(int *)base = (int)v;
        return 0;
    case T_LONG:
        if (cfg_parse_long(value, e->min, e->max, &v) < 0)
            return -1;
        *(long *)base = v;
        return 0;
    }
    return -1;
}

int cfg_load(struct config *cfg, enum cfg_program program)
{
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < sizeof cfg_table / sizeof cfg_table[0]; i++) {
        const struct cfg_entry *e = &cfg_table[i];
        const char *value = getenv(e->name);
        bool from_env = value && *value;
        /* Settings of the other program still get their defaults. */
        if (!from_env || !(e->programs & program))
            value = e->def;
        if (cfg_set(cfg, e, value) < 0) {
            if (e->type == T_INT || e->type == T_LONG)
                log_error("bad value \"%s\" for %s: expected an integer from %ld to %ld", value,
                          e->name, e->min, e->max);
            else
                log_error("bad value \"%s\" for %s: expected %s", value, e->name, e->doc);
            cfg_cleanup(cfg);
            return -1;
        }
    }
    if (cfg_auth_enabled(cfg) && strlen(cfg->callback_secret) < 16) {
        log_error("TASKRUNNER_CALLBACK_SECRET must be set, at least 16 characters, when "
                  "TASKRUNNER_API_TOKENS or TASKRUNNER_API_TOKENS_FILE is");
        cfg_cleanup(cfg);
        return -1;
    }
    if (cfg->page_size_default > cfg->page_size_max) {
        log_error("TASKRUNNER_PAGE_SIZE_DEFAULT (%d) is above TASKRUNNER_PAGE_SIZE_MAX (%d)",
                  cfg->page_size_default, cfg->page_size_max);
        cfg_cleanup(cfg);
        return -1;
    }
    return 0;
}

void cfg_cleanup(struct config *cfg)
{
    free(cfg->database_url);
    free(cfg->public_url);
    free(cfg->webhook_secret);
    cfg->database_url = cfg->public_url = cfg->webhook_secret = NULL;
    free(cfg->webhook_allow_cidrs);
    free(cfg->api_tokens);
    free(cfg->api_tokens_file);
    free(cfg->callback_secret);
    cfg->webhook_allow_cidrs = cfg->api_tokens = cfg->api_tokens_file = cfg->callback_secret = NULL;
}

bool cfg_auth_enabled(const struct config *cfg)
{
    return (cfg->api_tokens && cfg->api_tokens[0]) ||
           (cfg->api_tokens_file && cfg->api_tokens_file[0]);
}

void cfg_print_table(void)
{
    for (size_t i = 0; i < sizeof cfg_table / sizeof cfg_table[0]; i++)
        printf("%s\t%s\t%s\n", cfg_table[i].name, cfg_table[i].def, cfg_table[i].doc);
}

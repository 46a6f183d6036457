/*
 * config: every setting of the responder and the worker, read from
 * TASKRUNNER_* environment variables through one table (config.c) with
 * defaults and bounds. A bad value stops startup with a message naming the
 * variable. The struct is passed down explicitly; nothing else calls getenv.
 */
#ifndef TR_CONFIG_H
#define TR_CONFIG_H

#include "util.h"

/* Which program reads a setting. */
enum cfg_program { CFG_FCGI = 1, CFG_WORKER = 2, CFG_BOTH = 3 };

struct config {
    /* both */
    char *database_url;     /* libpq connection string */
    int log_level;          /* enum log_level */
    char *public_url;       /* base of the callback handle given to executors */
    /* responder */
    int fcgi_threads;       /* threads per responder process */
    int max_batch;          /* most tasks in one POST /tasks */
    long max_body;          /* largest request body, bytes */
    int page_size_default;
    int page_size_max;
    int db_retry_after;     /* Retry-After seconds on a 503 */
    /* worker */
    int poll_interval_ms;   /* fallback poll when no notification arrives */
    int webhook_timeout_ms; /* per call */
    int max_inflight;       /* calls in flight at once */
    int max_response_bytes; /* largest webhook answer body kept */
    int retry_attempts;     /* HTTP tries of one call, the first included */
    int retry_base_ms;
    int retry_factor;
    int retry_cap_ms;
    int shutdown_grace_ms;  /* how long calls in flight may finish on SIGTERM */
    int claim_batch;        /* most tasks claimed per round trip */
    int max_inflight_per_host;   /* calls in flight at once to one target */
    int breaker_failures;        /* consecutive failures that hold a target back */
    int breaker_cooldown_ms;     /* first cool-down of a held-back target */
    int breaker_cooldown_max_ms; /* longest cool-down */
    char *webhook_secret;   /* signs outgoing calls; empty: unsigned */
    long purge_deleted_after_s; /* soft-deleted tasks purged this long after */
    long retention_s;           /* ended batches purged this long after; 0: never */
    int purge_chunk;            /* most tasks purged per transaction */
    int purge_pause_ms;         /* between chunks while there is more */
    int purge_interval_ms;      /* between looks when there was nothing */
    /* metrics */
    int metrics_max_kinds;  /* kind label values GET /metrics names (responder) */
    int metrics_max_groups; /* group label values GET /metrics names (responder) */
    int metrics_flush_ms;   /* flush period of the in-memory metrics (both) */
    char *webhook_allow_cidrs; /* ranges webhooks may reach besides public addresses */
    /* security (both) */
    char *api_tokens;       /* name:token:scope,...; with api_tokens_file empty: API open */
    char *api_tokens_file;  /* a file of such entries */
    char *callback_secret;  /* keys the callback tokens of handles */
};

/* Whether API authentication is on (tokens configured, by value or file). */
bool cfg_auth_enabled(const struct config *cfg);

/* Fills cfg for program from the environment. Returns -1 after logging which
 * variable is bad. Strings are the caller's; release with cfg_cleanup. */
int cfg_load(struct config *cfg, enum cfg_program program) WARN_UNUSED;
void cfg_cleanup(struct config *cfg);
/* Prints every variable with its default (for the docs check). */
void cfg_print_table(void);

#endif

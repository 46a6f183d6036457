/*
 * Unit tests of shared/config.c: defaults, values from the environment, and
 * bad values refused with the variable named.
 */
#include <stdlib.h>

#include "check.h"
#include "config.h"
#include "log.h"

static int load_with(const char *name, const char *value, struct config *cfg,
                     enum cfg_program program)
{
    setenv(name, value, 1);
    int rc = cfg_load(cfg, program);
    unsetenv(name);
    return rc;
}

int main(void)
{
    struct config cfg;
    log_init("test_config", LOG_ERROR);

    CHECK(cfg_load(&cfg, CFG_BOTH) == 0);
    CHECK_INT(cfg.fcgi_threads, 4);
    CHECK_INT(cfg.page_size_default, 50);
    CHECK_INT(cfg.page_size_max, 100);
    CHECK_INT(cfg.max_batch, 10000);
    CHECK_INT(cfg.webhook_timeout_ms, 10000);
    CHECK_INT(cfg.max_inflight, 256);
    CHECK_INT(cfg.poll_interval_ms, 1000);
    CHECK_STR(cfg.public_url, "http://127.0.0.1:8080");
    CHECK_STR(cfg.webhook_secret, "");
    CHECK_INT(cfg.log_level, LOG_INFO);
    cfg_cleanup(&cfg);

    CHECK(load_with("TASKRUNNER_FCGI_THREADS", "8", &cfg, CFG_FCGI) == 0);
    CHECK_INT(cfg.fcgi_threads, 8);
    cfg_cleanup(&cfg);

    /* A trailing slash of the public URL is dropped: the handle appends a path. */
    CHECK(load_with("TASKRUNNER_PUBLIC_URL", "https://tasks.example/", &cfg, CFG_WORKER) == 0);
    CHECK_STR(cfg.public_url, "https://tasks.example");
    cfg_cleanup(&cfg);

    CHECK(load_with("TASKRUNNER_LOG_LEVEL", "DEBUG", &cfg, CFG_WORKER) == 0);
    CHECK_INT(cfg.log_level, LOG_DEBUG);
    cfg_cleanup(&cfg);

    /* Bad values stop startup. */
    CHECK(load_with("TASKRUNNER_FCGI_THREADS", "0", &cfg, CFG_FCGI) < 0);
    CHECK(load_with("TASKRUNNER_FCGI_THREADS", "four", &cfg, CFG_FCGI) < 0);
    CHECK(load_with("TASKRUNNER_FCGI_THREADS", "4x", &cfg, CFG_FCGI) < 0);
    CHECK(load_with("TASKRUNNER_MAX_INFLIGHT", "99999999999999999999", &cfg, CFG_WORKER) < 0);
    CHECK(load_with("TASKRUNNER_LOG_LEVEL", "loud", &cfg, CFG_WORKER) < 0);
    CHECK(load_with("TASKRUNNER_PUBLIC_URL", "ftp://x", &cfg, CFG_WORKER) < 0);
    CHECK(load_with("TASKRUNNER_PAGE_SIZE_DEFAULT", "500", &cfg, CFG_FCGI) < 0);
    /* The webhook allow-list must be CIDRs. */
    CHECK(load_with("TASKRUNNER_WEBHOOK_ALLOW_CIDRS", "127.0.0.0/8,::1/128", &cfg, CFG_WORKER) == 0);
    CHECK_STR(cfg.webhook_allow_cidrs, "127.0.0.0/8,::1/128");
    cfg_cleanup(&cfg);
    CHECK(load_with("TASKRUNNER_WEBHOOK_ALLOW_CIDRS", "127.0.0.0/33", &cfg, CFG_WORKER) < 0);
    /* API tokens need a callback secret of 16 characters or more. */
    CHECK(load_with("TASKRUNNER_API_TOKENS", "ci:0123456789abcdef:write", &cfg, CFG_FCGI) < 0);
    setenv("TASKRUNNER_CALLBACK_SECRET", "too-short", 1);
    CHECK(load_with("TASKRUNNER_API_TOKENS_FILE", "/nonexistent", &cfg, CFG_WORKER) < 0);
    setenv("TASKRUNNER_CALLBACK_SECRET", "0123456789abcdef", 1);
    CHECK(load_with("TASKRUNNER_API_TOKENS", "ci:0123456789abcdef:write", &cfg, CFG_FCGI) == 0);
    CHECK(cfg_auth_enabled(&cfg));
    cfg_cleanup(&cfg);
    unsetenv("TASKRUNNER_CALLBACK_SECRET");
    CHECK(cfg_load(&cfg, CFG_BOTH) == 0);
    CHECK(!cfg_auth_enabled(&cfg));
    cfg_cleanup(&cfg);
    /* A setting of the other program is not read (nor refused). */
    CHECK(load_with("TASKRUNNER_MAX_INFLIGHT", "zero", &cfg, CFG_FCGI) == 0);
    cfg_cleanup(&cfg);
    return check_exit();
}

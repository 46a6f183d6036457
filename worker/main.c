/*
 * taskrunner-worker: starts tasks, makes their webhook calls, times them out
 * and propagates outcomes. Any number may run against one database. main
 * only wires things up; the work is in loop.c.
 */
#include <signal.h>
#include <stdlib.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "config.h"
#include "log.h"
#include "loop.h"

int main(void)
{
    struct config cfg;
    log_init("taskrunner-worker", LOG_INFO);
    if (cfg_load(&cfg, CFG_WORKER) < 0)
        return 1;
    log_init("taskrunner-worker", cfg.log_level);
    srandom((unsigned)(time(NULL) ^ (getpid() << 16)));
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        fatal("could not initialise libcurl");

    /* Stop signals are read in the event loop, never interrupting it. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigprocmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);
    int signal_fd = signalfd(-1, &stop, SFD_CLOEXEC);
    if (signal_fd < 0)
        fatal("could not create a signalfd");

    log_info("worker starting");
    int status = loop_run(&cfg, signal_fd);
    close(signal_fd);
    curl_global_cleanup();
    cfg_cleanup(&cfg);
    return status;
}

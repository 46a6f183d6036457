/*
 * log: leveled one-line logging with a per-thread context (see log.h).
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* Set once at startup by log_init, read-only afterwards. */
static const char *log_program = "taskrunner";
static int log_level = LOG_INFO;
/* What the current thread is working on; added to each of its lines. */
static __thread char log_context[256];

static const char *const level_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};

void log_init(const char *program, int level)
{
    log_program = program;
    log_level = level;
    setvbuf(stderr, NULL, _IOLBF, 0);
}

bool log_enabled(int level)
{
    return level <= log_level;
}

int log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcasecmp(s, level_names[i]) == 0)
            return i;
    if (strcasecmp(s, "warning") == 0)
        return LOG_WARN;
    return -1;
}

void log_set_context(const char *fmt, ...)
{
    if (!fmt) {
        log_context[0] = '\0';
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(log_context, sizeof log_context, fmt, ap);
    va_end(ap);
}

static void log_vwrite(int level, const char *fmt, va_list ap)
{
    char msg[2048], stamp[40];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    vsnprintf(msg, sizeof msg, fmt, ap);
    /* Keep one event on one line whatever the message holds. */
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    fprintf(stderr, "%s.%06ldZ %s %s[%d] %s%s%s\n", stamp, ts.tv_nsec / 1000, level_names[level],
            log_program, (int)getpid(), log_context, log_context[0] ? " " : "", msg);
}

void log_write(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vwrite(level, fmt, ap);
    va_end(ap);
}

void fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vwrite(LOG_ERROR, fmt, ap);
    va_end(ap);
    exit(1);
}

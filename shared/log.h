/*
 * log: one line per event on stderr (the stack sends it to var/log/):
 *   2026-11-26T10:00:00.123456Z INFO taskrunner-fcgi[123] req=.. task=.. message
 * Each thread has its own context (request id, batch, task) that is added to
 * every line it logs, so a line always says what it is about.
 */
#ifndef TR_LOG_H
#define TR_LOG_H

#include <stdbool.h>

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

void log_init(const char *program, int level);
bool log_enabled(int level);
void log_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Sets this thread's context ("req=abc task=..."); NULL or "" clears it. */
void log_set_context(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Parses "error", "warn", "info", "debug"; -1 when unknown. */
int log_level_parse(const char *s);

/* The level is checked before the arguments are evaluated. */
#define log_error(...) do { if (log_enabled(LOG_ERROR)) log_write(LOG_ERROR, __VA_ARGS__); } while (0)
#define log_warn(...)  do { if (log_enabled(LOG_WARN))  log_write(LOG_WARN, __VA_ARGS__); } while (0)
#define log_info(...)  do { if (log_enabled(LOG_INFO))  log_write(LOG_INFO, __VA_ARGS__); } while (0)
#define log_debug(...) do { if (log_enabled(LOG_DEBUG)) log_write(LOG_DEBUG, __VA_ARGS__); } while (0)

/* For startup errors and impossible states only: logs and exits 1. */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif

/*
 * util: allocation wrappers that abort on failure, and small string helpers.
 * Running out of memory is not recoverable in a responder or the worker, so
 * the wrappers log and abort instead of making every caller check.
 */
#ifndef TR_UTIL_H
#define TR_UTIL_H

#include <stdbool.h>
#include <stddef.h>

#define WARN_UNUSED __attribute__((warn_unused_result))

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
/* Returns a heap copy of s (the caller's); NULL stays NULL. */
char *xstrdup(const char *s);
/* printf into a new heap string (the caller's). */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A growable byte buffer; always NUL-terminated once anything was added. */
struct strbuf {
    char *data;
    size_t len, cap;
};
void strbuf_init(struct strbuf *b);
void strbuf_cleanup(struct strbuf *b);
void strbuf_add(struct strbuf *b, const char *s, size_t n);
void strbuf_adds(struct strbuf *b, const char *s);
void strbuf_addf(struct strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Narrows [*start, *end) to leave out leading and trailing whitespace (an
 * item of a comma-separated setting). */
void util_trim(const char **start, const char **end);

/* Current wall-clock time in microseconds and a monotonic clock in ms. */
long long util_now_us(void);
long long util_mono_ms(void);

#endif

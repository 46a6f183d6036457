/*
 * webhook_headers: the refused header names (see webhook_headers.h).
 */
#include "webhook_headers.h"

#include <string.h>
#include <strings.h>

/* Exact names, compared without letter case. */
static const char *const refused_names[] = {
    "Host", "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive", "TE",
    "Trailer", "Upgrade", "Expect", "Idempotency-Key", "X-Taskrunner-Signature",
    "X-Batch-Id", /* not in API.md's list, but the service's own too (found by fuzz_call_request) */
};

/* Name prefixes, compared without letter case: Proxy-* (hop-by-hop),
 * X-Task-* and webhook-* (the service's own, present and future). */
static const char *const refused_prefixes[] = {"Proxy-", "X-Task-", "webhook-"};

bool webhook_header_refused(const char *name)
{
    for (size_t i = 0; i < sizeof refused_names / sizeof refused_names[0]; i++)
        if (strcasecmp(name, refused_names[i]) == 0)
            return true;
    for (size_t i = 0; i < sizeof refused_prefixes / sizeof refused_prefixes[0]; i++)
        if (strncasecmp(name, refused_prefixes[i], strlen(refused_prefixes[i])) == 0)
            return true;
    return false;
}

const char *webhook_header_refused_list(void)
{
    return "Host, Content-Length, Transfer-Encoding, Connection, Keep-Alive, TE, Trailer, "
           "Upgrade, Expect, Proxy-*, X-Task-*, X-Batch-Id, Idempotency-Key, "
           "X-Taskrunner-Signature, webhook-*";
}

/* RFC 9110 tchar */
static bool is_tchar(unsigned char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

bool webhook_header_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n < 1 || n > WEBHOOK_HEADER_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_tchar((unsigned char)name[i]))
            return false;
    return true;
}

bool webhook_header_value_ok(const char *value)
{
    for (const unsigned char *p = (const unsigned char *)value; *p; p++)
        if ((*p < 0x20 && *p != '\t') || *p == 0x7F)
            return false;
    return true;
}

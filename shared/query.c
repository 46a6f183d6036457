/*
 * query: query-string parameters (see query.h).
 */
#include "query.h"

#include <curl/curl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Decodes n bytes of v ('+' and %XX) into a new string; NULL when the
 * result would hold a NUL byte. */
static char *decode(const char *v, size_t n)
{
    if (n > INT_MAX / 2)
        return NULL;
    /* '+' means space in a query string; curl decodes only %XX. */
    char *raw = xmalloc(n + 1);
    for (size_t i = 0; i < n; i++)
        raw[i] = v[i] == '+' ? ' ' : v[i];
    raw[n] = '\0';
    int outlen = 0;
    char *dec = n > 0 ? curl_easy_unescape(NULL, raw, (int)n, &outlen) : NULL;
    free(raw);
    if (n == 0)
        return xstrdup("");
    char *out = dec && (size_t)outlen == strlen(dec) ? xstrdup(dec) : NULL;
    curl_free(dec);
    return out;
}

int query_value(const char *query, const char *name, char **out)
{
    *out = NULL;
    size_t nlen = strlen(name);
    const char *p = query ? query : "";
    while (*p) {
        const char *amp = strchr(p, '&');
        size_t plen = amp ? (size_t)(amp - p) : strlen(p);
        if (plen >= nlen && strncmp(p, name, nlen) == 0 && (plen == nlen || p[nlen] == '=')) {
            const char *v = plen == nlen ? "" : p + nlen + 1;
            size_t vlen = plen == nlen ? 0 : plen - nlen - 1;
            *out = decode(v, vlen);
            return *out ? 0 : -1;
        }
        p += plen;
        if (*p == '&')
            p++;
    }
    return 0;
}

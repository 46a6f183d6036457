/*
 * query: query-string parameters (see urlquery.h).
 */
#include "urlquery.h"

#include <stdlib.h>
#include <string.h>
#include <uriparser/Uri.h>

/* Decodes n bytes of v ('+' and %XX; a broken escape stays as it is) into a
 * new string; NULL when the result would hold a NUL byte. */
static char *decode(const char *v, size_t n)
{
    char *out = xmalloc(n + 1);
    memcpy(out, v, n);
    out[n] = '\0';
    const char *end = uriUnescapeInPlaceExA(out, URI_TRUE, URI_BR_DONT_TOUCH);
    if ((size_t)(end - out) != strlen(out)) {
        free(out);
        return NULL;
    }
    return out;
}

int urlquery_value(const char *query, const char *name, char **out)
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

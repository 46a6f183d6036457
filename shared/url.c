/*
 * url: the webhook URL check (see url.h).
 *
 * uriparser accepts every RFC 3986 URI; the worker's libcurl refuses a few of
 * them (a host name with %XX or sub-delimiters, IPvFuture, ports above
 * 65535), and those are refused here too, so that a stored URL is always
 * one the worker can call.
 */
#include "url.h"

#include <ctype.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>
#include <uriparser/Uri.h>

#include "util.h"

enum { URL_PORT_MAX = 65535 };

static bool range_is(UriTextRangeA r, const char *s)
{
    size_t n = (size_t)(r.afterLast - r.first);
    return r.first && strlen(s) == n && strncasecmp(r.first, s, n) == 0;
}

static bool host_ok(const UriUriA *u)
{
    if (u->hostData.ipFuture.first) /* "[v1.x]": nothing can connect to it */
        return false;
    if (u->hostData.ip4 || u->hostData.ip6)
        return true;
    const char *p = u->hostText.first, *end = u->hostText.afterLast;
    if (!p || p == end) /* "http:/x" has none, "http:///x" an empty one */
        return false;
    for (; p < end; p++)
        if (!isalnum((unsigned char)*p) && !strchr("-._~", *p))
            return false;
    return true;
}

static bool port_ok(UriTextRangeA port)
{
    unsigned long n = 0; /* uriparser lets only digits into a port */
    for (const char *p = port.first; p && p < port.afterLast; p++) {
        n = n * 10 + (unsigned long)(*p - '0');
        if (n > URL_PORT_MAX)
            return false;
    }
    return true;
}

bool url_webhook_ok(const char *url)
{
    UriUriA u;
    if (uriParseSingleUriA(&u, url, NULL) != URI_SUCCESS)
        return false;
    bool ok = (range_is(u.scheme, "http") || range_is(u.scheme, "https")) && host_ok(&u) &&
              port_ok(u.portText);
    uriFreeUriMembersA(&u);
    return ok;
}

char *url_mask_credentials(const char *url)
{
    if (!url)
        return NULL;
    const char *sep = strstr(url, "://");
    size_t scheme_len = sep ? (size_t)(sep - url) : 0;
    bool scheme_ok = scheme_len > 0 && isalpha((unsigned char)url[0]);
    for (size_t i = 1; scheme_ok && i < scheme_len; i++)
        scheme_ok = isalnum((unsigned char)url[i]) || strchr("+.-", url[i]);
    if (!scheme_ok)
        return xstrdup(url);
    const char *authority = sep + 3;
    size_t authority_len = strcspn(authority, "/?#");
    const char *at = NULL;
    for (const char *p = authority; p < authority + authority_len; p++)
        if (*p == '@')
            at = p;
    if (!at)
        return xstrdup(url);
    return xasprintf("%.*s***%s", (int)(authority - url), url, at);
}

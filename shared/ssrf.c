/*
 * ssrf: address classification and CIDR allow-lists (see ssrf.h).
 */
#include "ssrf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ ranges */

struct range {
    uint8_t addr[16];
    int prefix;
    enum ssrf_class cls;
};

/* Whether the first prefix bits of a and b are equal. */
static bool prefix_equal(const uint8_t *a, const uint8_t *b, int prefix)
{
    int full = prefix / 8, rest = prefix % 8;
    if (memcmp(a, b, (size_t)full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[full] & mask) == (b[full] & mask);
}

/* Special IPv4 ranges, most specific first (the first match wins). */
static const struct range v4_ranges[] = {
    {{169, 254, 169, 254}, 32, NC_METADATA},
    {{255, 255, 255, 255}, 32, NC_BROADCAST},
    {{0, 0, 0, 0}, 8, NC_UNSPECIFIED}, /* "this network" */
    {{10, 0, 0, 0}, 8, NC_PRIVATE},
    {{100, 64, 0, 0}, 10, NC_PRIVATE}, /* shared address space (carrier NAT) */
    {{127, 0, 0, 0}, 8, NC_LOOPBACK},
    {{169, 254, 0, 0}, 16, NC_LINK_LOCAL},
    {{172, 16, 0, 0}, 12, NC_PRIVATE},
    {{192, 0, 0, 0}, 24, NC_RESERVED},   /* IETF protocol assignments */
    {{192, 0, 2, 0}, 24, NC_RESERVED},   /* documentation */
    {{192, 88, 99, 0}, 24, NC_RESERVED}, /* former 6to4 relays */
    {{192, 168, 0, 0}, 16, NC_PRIVATE},
    {{198, 18, 0, 0}, 15, NC_RESERVED},   /* benchmarking */
    {{198, 51, 100, 0}, 24, NC_RESERVED}, /* documentation */
    {{203, 0, 113, 0}, 24, NC_RESERVED},  /* documentation */
    {{224, 0, 0, 0}, 4, NC_MULTICAST},
    {{240, 0, 0, 0}, 4, NC_RESERVED}, /* future use */
};

/* Special IPv6 ranges that do not carry an IPv4 address, most specific first. */
static const struct range v6_ranges[] = {
    {{0}, 128, NC_UNSPECIFIED},                                           /* :: */
    {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128, NC_LOOPBACK}, /* ::1 */
    {{0x00, 0x64, 0xff, 0x9b, 0x00, 0x01}, 48, NC_PRIVATE},               /* local-use NAT64 */
    {{0x01, 0x00}, 64, NC_RESERVED},             /* discard-only 100::/64 */
    {{0x20, 0x01, 0x0d, 0xb8}, 32, NC_RESERVED}, /* documentation */
    {{0xfc}, 7, NC_PRIVATE},                     /* unique local */
    {{0xfe, 0x80}, 10, NC_LINK_LOCAL},
    {{0xfe, 0xc0}, 10, NC_PRIVATE}, /* former site-local */
    {{0xff}, 8, NC_MULTICAST},
};

enum ssrf_class ssrf_classify_v4(const uint8_t a[4])
{
    for (size_t i = 0; i < sizeof v4_ranges / sizeof v4_ranges[0]; i++)
        if (prefix_equal(a, v4_ranges[i].addr, v4_ranges[i].prefix))
            return v4_ranges[i].cls;
    return NC_PUBLIC;
}

static const uint8_t V4_MAPPED[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
static const uint8_t NAT64[12] = {0x00, 0x64, 0xff, 0x9b};

/* The IPv4 address an IPv6 address carries (mapped, compatible, NAT64,
 * 6to4, Teredo), copied into v4; false when it carries none. */
static bool embedded_v4(const uint8_t a[16], uint8_t v4[4])
{
    static const uint8_t zero[12] = {0};
    if (memcmp(a, V4_MAPPED, 12) == 0 || memcmp(a, NAT64, 12) == 0) {
        memcpy(v4, a + 12, 4);
        return true;
    }
    /* IPv4-compatible ::a.b.c.d (deprecated); :: and ::1 are not. */
    if (memcmp(a, zero, 12) == 0 && (a[12] | a[13] | a[14]) != 0) {
        memcpy(v4, a + 12, 4);
        return true;
    }
    if (a[0] == 0x20 && a[1] == 0x02) { /* 6to4 2002:AABB:CCDD::/48 */
        memcpy(v4, a + 2, 4);
        return true;
    }
    if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0 && a[3] == 0) { /* Teredo: client, inverted */
        for (int i = 0; i < 4; i++)
            v4[i] = (uint8_t)~a[12 + i];
        return true;
    }
    return false;
}

enum ssrf_class ssrf_classify_v6(const uint8_t a[16])
{
    for (size_t i = 0; i < sizeof v6_ranges / sizeof v6_ranges[0]; i++)
        if (prefix_equal(a, v6_ranges[i].addr, v6_ranges[i].prefix))
            return v6_ranges[i].cls;
    uint8_t v4[4];
    if (embedded_v4(a, v4))
        return ssrf_classify_v4(v4);
    if (a[0] == 0)
        return NC_RESERVED; /* the rest of ::/8 */
    return NC_PUBLIC;
}

enum ssrf_class ssrf_classify(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        uint8_t a[4];
        memcpy(a, &in->sin_addr, 4);
        return ssrf_classify_v4(a);
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        return ssrf_classify_v6(in6->sin6_addr.s6_addr);
    }
    return NC_RESERVED;
}

const char *ssrf_class_text(enum ssrf_class c)
{
    switch (c) {
    case NC_PUBLIC:
        return "a public address";
    case NC_LOOPBACK:
        return "a loopback address";
    case NC_PRIVATE:
        return "a private address";
    case NC_LINK_LOCAL:
        return "a link-local address";
    case NC_METADATA:
        return "the link-local cloud metadata address";
    case NC_UNSPECIFIED:
        return "an unspecified address";
    case NC_MULTICAST:
        return "a multicast address";
    case NC_BROADCAST:
        return "the broadcast address";
    case NC_RESERVED:
        return "a reserved address";
    }
    return "an unknown kind of address";
}

/* ------------------------------------------------------------ allow-lists */

/* Parses one "address[/prefix]" of length n into c. */
static int parse_cidr(const char *s, size_t n, struct ssrf_cidr *c)
{
    char text[64];
    if (n == 0 || n >= sizeof text)
        return -1;
    memcpy(text, s, n);
    text[n] = '\0';
    char *slash = strchr(text, '/');
    if (slash)
        *slash = '\0';
    memset(c, 0, sizeof *c);
    int max;
    if (inet_pton(AF_INET, text, c->addr) == 1) {
        c->family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, text, c->addr) == 1) {
        c->family = AF_INET6;
        max = 128;
    } else {
        return -1;
    }
    c->prefix = max;
    if (slash) {
        const char *p = slash + 1;
        if (!*p || strlen(p) > 3)
            return -1;
        for (const char *q = p; *q; q++)
            if (!isdigit((unsigned char)*q))
                return -1;
        c->prefix = atoi(p);
        if (c->prefix > max)
            return -1;
    }
    /* Host bits beyond the prefix are ignored (10.1.2.3/8 is 10.0.0.0/8). */
    for (int bit = c->prefix; bit < max; bit++)
        c->addr[bit / 8] &= (uint8_t) ~(0x80 >> (bit % 8));
    return 0;
}

int ssrf_parse_list(const char *spec, struct ssrf_list *out, char *err, size_t errsize)
{
    out->items = NULL;
    out->n = 0;
    size_t cap = 0;
    const char *p = spec ? spec : "";
    while (*p) {
        size_t len = strcspn(p, ",");
        const char *s = p, *e = p + len;
        util_trim(&s, &e);
        if (e > s) {
            struct ssrf_cidr c;
            if (parse_cidr(s, (size_t)(e - s), &c) < 0) {
                snprintf(err, errsize, "\"%.*s\" is not an IPv4 or IPv6 CIDR such as 10.0.0.0/8",
                         (int)(e - s > 64 ? 64 : e - s), s);
                ssrf_list_cleanup(out);
                return -1;
            }
            if (out->n == cap) {
                cap = cap ? cap * 2 : 4;
                out->items = xrealloc(out->items, cap * sizeof *out->items);
            }
            out->items[out->n++] = c;
        }
        p += len;
        if (*p == ',')
            p++;
    }
    return 0;
}

void ssrf_list_cleanup(struct ssrf_list *l)
{
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

static bool list_has(const struct ssrf_list *l, int family, const uint8_t *a)
{
    for (size_t i = 0; l && i < l->n; i++)
        if (l->items[i].family == family && prefix_equal(a, l->items[i].addr, l->items[i].prefix))
            return true;
    return false;
}

bool ssrf_list_contains(const struct ssrf_list *l, const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return list_has(l, AF_INET, (const uint8_t *)&in->sin_addr);
    }
    if (sa->sa_family == AF_INET6) {
        const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        if (list_has(l, AF_INET6, a))
            return true;
        return memcmp(a, V4_MAPPED, 12) == 0 && list_has(l, AF_INET, a + 12);
    }
    return false;
}

bool ssrf_permitted(const struct ssrf_list *allow, const struct sockaddr *sa, char *why,
                        size_t whysize)
{
    enum ssrf_class c = ssrf_classify(sa);
    if (c == NC_PUBLIC || ssrf_list_contains(allow, sa))
        return true;
    char text[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, text, sizeof text);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, text, sizeof text);
    snprintf(why, whysize, "%s is %s", text, ssrf_class_text(c));
    return false;
}

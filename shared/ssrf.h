/*
 * ssrf: which network addresses the worker's webhook calls may reach
 * (SSRF protection). Pure functions over addresses; nothing here resolves a
 * name or opens a socket. The worker asks ssrf_permitted() for every
 * address it is about to connect to (curl's open-socket callback), so the
 * check holds for the address actually used, whatever DNS said before.
 *
 * By default only public addresses are permitted: loopback, private
 * (RFC 1918, shared 100.64/10, IPv6 unique local), link-local (including the
 * cloud metadata address 169.254.169.254), unspecified, multicast,
 * broadcast and reserved ranges are refused. IPv6 forms that carry an IPv4
 * address (IPv4-mapped, IPv4-compatible, NAT64 64:ff9b::/96, 6to4 2002::/16,
 * Teredo 2001::/32) are judged by the IPv4 address they carry. An allow-list
 * of CIDRs (TASKRUNNER_WEBHOOK_ALLOW_CIDRS) opens ranges again.
 */
#ifndef TR_NETCHECK_H
#define TR_NETCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "util.h"

enum ssrf_class {
    NC_PUBLIC = 0,
    NC_LOOPBACK,
    NC_PRIVATE,     /* 10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7, fec0::/10 */
    NC_LINK_LOCAL,  /* 169.254/16, fe80::/10 */
    NC_METADATA,    /* 169.254.169.254: link-local, named apart for the message */
    NC_UNSPECIFIED, /* 0.0.0.0/8, :: */
    NC_MULTICAST,   /* 224/4, ff00::/8 */
    NC_BROADCAST,   /* 255.255.255.255 */
    NC_RESERVED,    /* 240/4, documentation, benchmarking, other special ranges */
};

/* One CIDR: family AF_INET (addr[0..3]) or AF_INET6 (addr[0..15]). */
struct ssrf_cidr {
    int family;
    uint8_t addr[16];
    int prefix;
};

struct ssrf_list {
    struct ssrf_cidr *items;
    size_t n;
};

/* Parses a comma-separated list of CIDRs ("127.0.0.0/8, ::1/128"; a bare
 * address means a single host; white space and empty entries are ignored).
 * On success returns 0 and fills out (release with ssrf_list_cleanup);
 * on a bad entry returns -1, leaves out empty and writes why (naming the
 * entry) into err. */
int ssrf_parse_list(const char *spec, struct ssrf_list *out, char *err,
                        size_t errsize) WARN_UNUSED;
void ssrf_list_cleanup(struct ssrf_list *l);

/* The class of an IPv4 address (network byte order) or an IPv6 address. */
enum ssrf_class ssrf_classify_v4(const uint8_t a[4]);
enum ssrf_class ssrf_classify_v6(const uint8_t a[16]);
/* The class of a socket address; families other than IPv4/IPv6 count as
 * NC_RESERVED. */
enum ssrf_class ssrf_classify(const struct sockaddr *sa);
/* "a private address", "the cloud metadata address", ... */
const char *ssrf_class_text(enum ssrf_class c);

/* Whether sa lies in one of l's ranges. An IPv4-mapped IPv6 address also
 * matches the IPv4 ranges of its IPv4 address. */
bool ssrf_list_contains(const struct ssrf_list *l, const struct sockaddr *sa);

/* Whether a connection to sa may be made: its address is public, or in allow
 * (may be NULL). When not, writes the reason ("10.0.0.1 is a private
 * address") into why. */
bool ssrf_permitted(const struct ssrf_list *allow, const struct sockaddr *sa, char *why,
                        size_t whysize);

#endif

/*
 * Unit tests of shared/ssrf.c: the class of every special range (IPv4,
 * IPv6, IPv4 carried in IPv6), allow-list parsing and matching, and the
 * reason given. Pure: nothing here resolves a name or opens a socket.
 */
#include <arpa/inet.h>
#include <netinet/in.h>

#include "check.h"
#include "ssrf.h"

/* The socket address of a numeric IPv4 or IPv6 address. */
static const struct sockaddr *sa_of(const char *text, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, text, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
    } else if (inet_pton(AF_INET6, text, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
    } else {
        fprintf(stderr, "test bug: %s is not an address\n", text);
        ss->ss_family = AF_UNSPEC;
    }
    return (const struct sockaddr *)ss;
}

static enum ssrf_class cls(const char *text)
{
    struct sockaddr_storage ss;
    return ssrf_classify(sa_of(text, &ss));
}

static const struct {
    const char *addr;
    enum ssrf_class want;
} cases[] = {
    /* IPv4: public */
    {"8.8.8.8", NC_PUBLIC},
    {"1.1.1.1", NC_PUBLIC},
    {"93.184.216.34", NC_PUBLIC},
    {"9.255.255.255", NC_PUBLIC},
    {"11.0.0.0", NC_PUBLIC},
    {"100.63.255.255", NC_PUBLIC},
    {"100.128.0.0", NC_PUBLIC},
    {"126.255.255.255", NC_PUBLIC},
    {"128.0.0.0", NC_PUBLIC},
    {"169.253.255.255", NC_PUBLIC},
    {"169.255.0.0", NC_PUBLIC},
    {"172.15.255.255", NC_PUBLIC},
    {"172.32.0.0", NC_PUBLIC},
    {"192.167.255.255", NC_PUBLIC},
    {"192.169.0.0", NC_PUBLIC},
    {"223.255.255.255", NC_PUBLIC},
    {"1.0.0.0", NC_PUBLIC},
    /* unspecified / this network */
    {"0.0.0.0", NC_UNSPECIFIED},
    {"0.1.2.3", NC_UNSPECIFIED},
    {"0.255.255.255", NC_UNSPECIFIED},
    /* loopback */
    {"127.0.0.1", NC_LOOPBACK},
    {"127.0.0.0", NC_LOOPBACK},
    {"127.255.255.255", NC_LOOPBACK},
    {"127.1.2.3", NC_LOOPBACK},
    /* private: RFC 1918 and shared address space */
    {"10.0.0.0", NC_PRIVATE},
    {"10.0.0.1", NC_PRIVATE},
    {"10.255.255.255", NC_PRIVATE},
    {"172.16.0.0", NC_PRIVATE},
    {"172.20.1.1", NC_PRIVATE},
    {"172.31.255.255", NC_PRIVATE},
    {"192.168.0.0", NC_PRIVATE},
    {"192.168.1.1", NC_PRIVATE},
    {"192.168.255.255", NC_PRIVATE},
    {"100.64.0.0", NC_PRIVATE},
    {"100.100.100.200", NC_PRIVATE},
    {"100.127.255.255", NC_PRIVATE},
    /* link-local and the metadata address */
    {"169.254.0.0", NC_LINK_LOCAL},
    {"169.254.0.1", NC_LINK_LOCAL},
    {"169.254.255.255", NC_LINK_LOCAL},
    {"169.254.169.253", NC_LINK_LOCAL},
    {"169.254.169.254", NC_METADATA},
    /* multicast, broadcast, reserved */
    {"224.0.0.0", NC_MULTICAST},
    {"224.0.0.251", NC_MULTICAST},
    {"239.255.255.255", NC_MULTICAST},
    {"255.255.255.255", NC_BROADCAST},
    {"240.0.0.0", NC_RESERVED},
    {"255.255.255.254", NC_RESERVED},
    {"192.0.0.8", NC_RESERVED},
    {"192.0.2.1", NC_RESERVED},
    {"198.51.100.7", NC_RESERVED},
    {"203.0.113.9", NC_RESERVED},
    {"198.18.0.1", NC_RESERVED},
    {"198.19.255.255", NC_RESERVED},
    {"192.88.99.1", NC_RESERVED},
    {"198.20.0.0", NC_PUBLIC},
    /* IPv6: public */
    {"2606:4700:4700::1111", NC_PUBLIC},
    {"2a00:1450:4001:80b::200e", NC_PUBLIC},
    {"2001:4860::1", NC_PUBLIC},
    {"fbff:ffff::1", NC_PUBLIC},
    {"fe00::1", NC_PUBLIC},
    /* unspecified, loopback */
    {"::", NC_UNSPECIFIED},
    {"::1", NC_LOOPBACK},
    {"0:0:0:0:0:0:0:1", NC_LOOPBACK},
    /* unique local (fc00::/7), link-local (fe80::/10), site-local, multicast */
    {"fc00::", NC_PRIVATE},
    {"fc00::1", NC_PRIVATE},
    {"fd00:ec2::254", NC_PRIVATE},
    {"fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NC_PRIVATE},
    {"fe80::", NC_LINK_LOCAL},
    {"fe80::1", NC_LINK_LOCAL},
    {"febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NC_LINK_LOCAL},
    {"fec0::1", NC_PRIVATE},
    {"ff02::1", NC_MULTICAST},
    {"ff00::", NC_MULTICAST},
    {"2001:db8::1", NC_RESERVED},
    {"100::1", NC_RESERVED},
    {"::2:0:0:1", NC_RESERVED},
    /* IPv4-mapped: judged by the IPv4 address */
    {"::ffff:127.0.0.1", NC_LOOPBACK},
    {"::ffff:10.0.0.1", NC_PRIVATE},
    {"::ffff:192.168.1.1", NC_PRIVATE},
    {"::ffff:169.254.169.254", NC_METADATA},
    {"::ffff:169.254.1.1", NC_LINK_LOCAL},
    {"::ffff:0.0.0.0", NC_UNSPECIFIED},
    {"::ffff:8.8.8.8", NC_PUBLIC},
    {"::ffff:7f00:1", NC_LOOPBACK},
    /* IPv4-compatible (deprecated) */
    {"::127.0.0.1", NC_LOOPBACK},
    {"::10.1.2.3", NC_PRIVATE},
    {"::8.8.8.8", NC_PUBLIC},
    /* NAT64 well-known prefix, and the local-use one */
    {"64:ff9b::10.0.0.1", NC_PRIVATE},
    {"64:ff9b::127.0.0.1", NC_LOOPBACK},
    {"64:ff9b::169.254.169.254", NC_METADATA},
    {"64:ff9b::8.8.8.8", NC_PUBLIC},
    {"64:ff9b:1::1", NC_PRIVATE},
    /* 6to4: 2002:AABB:CCDD:: carries AA.BB.CC.DD */
    {"2002:7f00:1::", NC_LOOPBACK},
    {"2002:a00:1::1", NC_PRIVATE},
    {"2002:a9fe:a9fe::1", NC_METADATA},
    {"2002:808:808::1", NC_PUBLIC},
    /* Teredo: the client address, inverted, in the last 32 bits */
    {"2001:0:4136:e378:8000:63bf:80ff:fffe", NC_LOOPBACK}, /* ~80fffffe = 127.0.0.1 */
    {"2001:0:4136:e378:8000:63bf:f5ff:fffe", NC_PRIVATE},  /* ~f5fffffe = 10.0.0.1 */
    {"2001:0:4136:e378:8000:63bf:f7f7:f7f7", NC_PUBLIC},   /* 8.8.8.8 */
};

static void test_classes(void)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        enum ssrf_class got = cls(cases[i].addr);
        if (!CHECK(got == cases[i].want))
            fprintf(stderr, "    %s: got %s, want %s\n", cases[i].addr, ssrf_class_text(got),
                    ssrf_class_text(cases[i].want));
    }
    /* Families other than IP are never public. */
    struct sockaddr sa = {.sa_family = AF_UNIX};
    CHECK(ssrf_classify(&sa) == NC_RESERVED);
}

static void test_parse(void)
{
    struct ssrf_list l;
    char err[160];
    CHECK(ssrf_parse_list("", &l, err, sizeof err) == 0);
    CHECK_INT((long long)l.n, 0);
    ssrf_list_cleanup(&l);
    CHECK(ssrf_parse_list(NULL, &l, err, sizeof err) == 0);
    CHECK_INT((long long)l.n, 0);
    ssrf_list_cleanup(&l);
    CHECK(ssrf_parse_list(" 127.0.0.0/8 , ::1/128,,10.1.2.3, fd00::/8 ,", &l, err,
                              sizeof err) == 0);
    if (CHECK_INT((long long)l.n, 4)) {
        CHECK_INT(l.items[0].family, AF_INET);
        CHECK_INT(l.items[0].prefix, 8);
        CHECK_INT(l.items[1].family, AF_INET6);
        CHECK_INT(l.items[1].prefix, 128);
        CHECK_INT(l.items[2].prefix, 32); /* a bare address is one host */
        CHECK_INT(l.items[3].prefix, 8);
    }
    ssrf_list_cleanup(&l);
    /* Host bits are ignored. */
    CHECK(ssrf_parse_list("10.1.2.3/8", &l, err, sizeof err) == 0);
    if (CHECK_INT((long long)l.n, 1))
        CHECK(l.items[0].addr[0] == 10 && l.items[0].addr[1] == 0 && l.items[0].addr[3] == 0);
    ssrf_list_cleanup(&l);
    CHECK(ssrf_parse_list("0.0.0.0/0,::/0", &l, err, sizeof err) == 0);
    CHECK_INT((long long)l.n, 2);
    ssrf_list_cleanup(&l);

    static const char *bad[] = {"10.0.0.0/33",     "::/129",   "10.0.0.0/",   "10.0.0.0/-1",
                                "10.0.0.0/8x",     "10.0.0",   "localhost",   "10.0.0.0/8/8",
                                "1.2.3.4.5",       "::1/1000", "10.0.0.0 /8", "fe80::1%eth0",
                                "127.0.0.0/8,nope"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        if (!CHECK(ssrf_parse_list(bad[i], &l, err, sizeof err) < 0))
            fprintf(stderr, "    accepted: %s\n", bad[i]);
        CHECK(l.n == 0 && l.items == NULL);
        CHECK(strstr(err, "is not an IPv4 or IPv6 CIDR") != NULL);
    }
}

static bool allowed(const struct ssrf_list *l, const char *addr)
{
    struct sockaddr_storage ss;
    return ssrf_list_contains(l, sa_of(addr, &ss));
}

static void test_allow(void)
{
    struct ssrf_list l;
    char err[160];
    CHECK(ssrf_parse_list("127.0.0.0/8,::1/128,10.20.0.0/16,fd12:3456::/32,172.16.5.4", &l, err,
                              sizeof err) == 0);
    CHECK(allowed(&l, "127.0.0.1"));
    CHECK(allowed(&l, "127.255.0.9"));
    CHECK(allowed(&l, "::1"));
    CHECK(allowed(&l, "::ffff:127.0.0.1")); /* IPv4-mapped matches the IPv4 range */
    CHECK(allowed(&l, "10.20.255.1"));
    CHECK(!allowed(&l, "10.21.0.1"));
    CHECK(!allowed(&l, "10.19.255.255"));
    CHECK(allowed(&l, "fd12:3456:ffff::1"));
    CHECK(!allowed(&l, "fd12:3457::1"));
    CHECK(allowed(&l, "172.16.5.4"));
    CHECK(!allowed(&l, "172.16.5.5"));
    CHECK(!allowed(&l, "::2"));
    CHECK(!allowed(&l, "169.254.169.254"));
    CHECK(!allowed(&l, "64:ff9b::127.0.0.1")); /* NAT64 goes elsewhere: not the IPv4 range */
    CHECK(!allowed(NULL, "127.0.0.1"));
    ssrf_list_cleanup(&l);

    /* Odd prefixes. */
    CHECK(ssrf_parse_list("192.168.0.0/23,fe80::/10", &l, err, sizeof err) == 0);
    CHECK(allowed(&l, "192.168.1.255"));
    CHECK(!allowed(&l, "192.168.2.0"));
    CHECK(allowed(&l, "febf::1"));
    CHECK(!allowed(&l, "fec0::1"));
    ssrf_list_cleanup(&l);
}

static void test_permitted(void)
{
    struct ssrf_list none = {0}, loop;
    char err[160], why[128];
    struct sockaddr_storage ss;
    CHECK(ssrf_parse_list("127.0.0.0/8,::1/128", &loop, err, sizeof err) == 0);

    why[0] = '\0';
    CHECK(ssrf_permitted(&none, sa_of("8.8.8.8", &ss), why, sizeof why));
    CHECK(ssrf_permitted(&none, sa_of("2606:4700::1", &ss), why, sizeof why));
    CHECK(!ssrf_permitted(&none, sa_of("10.0.0.1", &ss), why, sizeof why));
    CHECK_STR(why, "10.0.0.1 is a private address");
    CHECK(!ssrf_permitted(&none, sa_of("127.0.0.1", &ss), why, sizeof why));
    CHECK_STR(why, "127.0.0.1 is a loopback address");
    CHECK(!ssrf_permitted(NULL, sa_of("169.254.169.254", &ss), why, sizeof why));
    CHECK_STR(why, "169.254.169.254 is the link-local cloud metadata address");
    CHECK(!ssrf_permitted(&none, sa_of("::ffff:10.0.0.1", &ss), why, sizeof why));
    CHECK_STR(why, "::ffff:10.0.0.1 is a private address");
    CHECK(!ssrf_permitted(&none, sa_of("fe80::1", &ss), why, sizeof why));
    CHECK_STR(why, "fe80::1 is a link-local address");
    CHECK(!ssrf_permitted(&none, sa_of("::", &ss), why, sizeof why));
    CHECK_STR(why, ":: is an unspecified address");
    CHECK(!ssrf_permitted(&none, sa_of("224.0.0.1", &ss), why, sizeof why));
    CHECK_STR(why, "224.0.0.1 is a multicast address");
    CHECK(!ssrf_permitted(&none, sa_of("255.255.255.255", &ss), why, sizeof why));
    CHECK_STR(why, "255.255.255.255 is the broadcast address");

    /* The allow-list opens exactly its ranges. */
    CHECK(ssrf_permitted(&loop, sa_of("127.0.0.1", &ss), why, sizeof why));
    CHECK(ssrf_permitted(&loop, sa_of("::1", &ss), why, sizeof why));
    CHECK(ssrf_permitted(&loop, sa_of("::ffff:127.0.0.1", &ss), why, sizeof why));
    CHECK(!ssrf_permitted(&loop, sa_of("10.0.0.1", &ss), why, sizeof why));
    CHECK(!ssrf_permitted(&loop, sa_of("169.254.169.254", &ss), why, sizeof why));
    CHECK(!ssrf_permitted(&loop, sa_of("fd00::1", &ss), why, sizeof why));
    /* A tiny buffer is cut, not overrun. */
    char tiny[8];
    CHECK(!ssrf_permitted(&none, sa_of("10.0.0.1", &ss), tiny, sizeof tiny));
    CHECK_STR(tiny, "10.0.0.");
    ssrf_list_cleanup(&loop);
}

int main(void)
{
    test_classes();
    test_parse();
    test_allow();
    test_permitted();
    return check_exit();
}

/*
 * Unit tests of shared/url.c: which webhook URLs are accepted.
 */
#include <stdlib.h>

#include "check.h"
#include "url.h"

int main(void)
{
    const char *accepted[] = {
        "http://x",
        "HTTPS://X.EXAMPLE:8443/a/b?c=d#e",
        "hTtP://x.example/",
        "http://[::1]:8080/",
        "http://[::ffff:1.2.3.4]/",
        "http://127.0.0.1/run",
        "https://user:pw@x.example/",
        "http://@x/",
        "http://x:65535/",
        "http://x:0/",
        "http://x:/", /* an empty port is the default one */
        "http://x_y.example/~u/a-b.c;p=1,2!$'()*+&?q=/?:@#f",
        "http://x.example/a%20b?q=%7B%7D",
        "http://256.1.1.1/", /* a name as far as the URL goes; DNS says no */
        "http://x.example//a/../b",
    };
    for (size_t i = 0; i < sizeof accepted / sizeof *accepted; i++)
        if (!check_at(url_webhook_ok(accepted[i]), "accepted", __FILE__, __LINE__))
            fprintf(stderr, "    url: %s\n", accepted[i]);

    const char *refused[] = {
        "",
        "nope",
        "not a url",
        "/run",
        "x.example/run",
        "http",
        "http:",
        "https:x",
        "ftp://x.example/",
        "file:///etc/passwd",
        "javascript://x/",
        /* no host, or an empty one */
        "http://",
        "https://",
        "http:///run",
        "http:/x.example",
        "http:x",
        /* blanks and controls */
        "http://exa mple/",
        " http://x.example/",
        "http://x.example/ ",
        "http://x.example/\tx",
        "http://x.example/\r\nHost: y",
        /* ports libcurl refuses */
        "http://x:65536/",
        "http://x:99999/",
        "http://x:18446744073709551696/",
        "http://x:80a/",
        "http://x:-1/",
        "http://x:80:80/",
        "http://[::1]:65536/",
        /* hosts libcurl refuses or would decode */
        "http://x!/",
        "http://x$/",
        "http://x'/",
        "http://x(/",
        "http://x*/",
        "http://x+/",
        "http://x,/",
        "http://x;/",
        "http://x=/",
        "http://x&/",
        "http://x%41/",
        "http://[v1.x]/",
        "http://[1:2:3:4:5:6:7:8:9]/",
        "http://[::1",
        "http://::1/",
        "http://x@y@z/",
        /* outside RFC 3986 (libcurl took these; they must be percent-encoded) */
        "http://x.example/\xc3\xbc",
        "http://b\xc3\xbc"
        "cher.example/",
        "http://x.example/{a}",
        "http://x.example/a|b",
        "http://x.example/a^b",
        "http://x.example/a`b",
        "http://x.example/a\\b",
        "http:\\\\x\\y",
        "http://x.example/a\"b",
        "http://x.example/<a>",
        "http://x.example/%zz",
        "http://x.example/%",
        "http://x.example/#a#b",
        "http://[fe80::1%25eth0]/",
    };
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++)
        if (!check_at(!url_webhook_ok(refused[i]), "refused", __FILE__, __LINE__))
            fprintf(stderr, "    url: %s\n", refused[i]);
    /* Credentials are masked for logs and answers, as tr_mask_url does. */
    const char *masked[][2] = {
        {"http://user:pw@x.example/a?b=c", "http://***@x.example/a?b=c"},
        {"HTTPS://u@x:8443", "HTTPS://***@x:8443"},
        {"http://a@b:c@x/p@q?r=@#@", "http://***@x/p@q?r=@#@"},
        {"http://@x/", "http://***@x/"},
        {"http://x.example/p@q", "http://x.example/p@q"},
        {"http://x.example?u=a@b", "http://x.example?u=a@b"},
        {"http://x.example#a@b", "http://x.example#a@b"},
        {"mailto:a@b", "mailto:a@b"},
        {"1http://u:p@x/", "1http://u:p@x/"},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof masked / sizeof *masked; i++) {
        char *got = url_mask_credentials(masked[i][0]);
        check_str_at(got, masked[i][1], "url_mask_credentials", __FILE__, __LINE__);
        free(got);
    }
    check_at(url_mask_credentials(NULL) == NULL, "NULL masks to NULL", __FILE__, __LINE__);
    return check_exit();
}

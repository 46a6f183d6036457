/*
 * Unit tests of shared/sign.c: webhook signatures match an independent
 * HMAC-SHA256 (values computed with `openssl dgst -sha256 -hmac`, and with
 * Python's hmac for the Standard Webhooks one).
 */
#include "check.h"
#include "sign.h"

int main(void)
{
    char out[SIGN_HEADER_MAX];
    const char *body = "{\"a\":1}";
    sign_webhook("s3cret", 1700000000LL, body, strlen(body), out);
    CHECK_STR(out, "t=1700000000,v1="
                   "1698a50bc74d1ff1db85c4e0a5297c2ad9fdba245d5737cdb789e4cc6e098940");
    /* An empty body signs "<t>." */
    sign_webhook("s3cret", 1700000000LL, NULL, 0, out);
    CHECK_STR(out, "t=1700000000,v1="
                   "21948100f1d7a89f3338f6b1106fc4f7a702fbe1493b833a3382f80193bde3fe");
    /* Another secret, another signature. */
    sign_webhook("other", 1700000000LL, NULL, 0, out);
    CHECK(strstr(out, "21948100f1d7") == NULL);
    /* Standard Webhooks: base64 HMAC of "<id>.<t>.<body>" (values from
     * Python's hmac and base64). */
    sign_standard_webhook("s3cret", "msg_1:start:x", 1700000000LL, body, strlen(body), out);
    CHECK_STR(out, "v1,TqliHCP9Pv8B5WeivoW1TAXGFdRhuYI5ok4Y03/wksc=");
    sign_standard_webhook("s3cret", "id", 1700000000LL, NULL, 0, out);
    CHECK_STR(out, "v1,c7Cu+oCM7Smn/XJWnepBODFRIX6SkitkfIeGTvE6P7w=");
    return check_exit();
}

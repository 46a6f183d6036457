/*
 * sign: HMAC-SHA256 webhook signatures with OpenSSL (see sign.h).
 */
#include "sign.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

void sign_webhook(const char *secret, long long t, const char *body, size_t body_len, char *out)
{
    char prefix[32];
    int plen = snprintf(prefix, sizeof prefix, "%lld.", t);
    size_t n = (size_t)plen + (body ? body_len : 0);
    unsigned char *msg = xmalloc(n + 1);
    memcpy(msg, prefix, (size_t)plen);
    if (body)
        memcpy(msg + plen, body, body_len);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    HMAC(EVP_sha256(), secret, (int)strlen(secret), msg, n, mac, &maclen);
    free(msg);
    int off = snprintf(out, SIGN_HEADER_MAX, "t=%lld,v1=", t);
    for (unsigned int i = 0; i < maclen && off + 2 < SIGN_HEADER_MAX; i++)
        off += snprintf(out + off, (size_t)(SIGN_HEADER_MAX - off), "%02x", mac[i]);
}

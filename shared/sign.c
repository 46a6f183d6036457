/*
 * sign: HMAC-SHA256 webhook signatures with Nettle (see sign.h).
 */
#include "sign.h"

#include <nettle/base64.h>
#include <nettle/hmac.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <string.h>

void sign_webhook(const char *secret, long long t, const char *body, size_t body_len, char *out)
{
    char prefix[32];
    int plen = snprintf(prefix, sizeof prefix, "%lld.", t);
    uint8_t mac[SHA256_DIGEST_SIZE];
    struct hmac_sha256_ctx ctx;
    hmac_sha256_set_key(&ctx, strlen(secret), (const uint8_t *)secret);
    hmac_sha256_update(&ctx, (size_t)plen, (const uint8_t *)prefix);
    if (body)
        hmac_sha256_update(&ctx, body_len, (const uint8_t *)body);
    hmac_sha256_digest(&ctx, sizeof mac, mac);
    explicit_bzero(&ctx, sizeof ctx);
    int off = snprintf(out, SIGN_HEADER_MAX, "t=%lld,v1=", t);
    for (size_t i = 0; i < sizeof mac && off + 2 < SIGN_HEADER_MAX; i++)
        off += snprintf(out + off, (size_t)(SIGN_HEADER_MAX - off), "%02x", mac[i]);
}

void sign_standard_webhook(const char *secret, const char *id, long long t, const char *body,
                           size_t body_len, char *out)
{
    char stamp[32];
    int slen = snprintf(stamp, sizeof stamp, ".%lld.", t);
    uint8_t mac[SHA256_DIGEST_SIZE];
    struct hmac_sha256_ctx ctx;
    hmac_sha256_set_key(&ctx, strlen(secret), (const uint8_t *)secret);
    hmac_sha256_update(&ctx, strlen(id), (const uint8_t *)id);
    hmac_sha256_update(&ctx, (size_t)slen, (const uint8_t *)stamp);
    if (body)
        hmac_sha256_update(&ctx, body_len, (const uint8_t *)body);
    hmac_sha256_digest(&ctx, sizeof mac, mac);
    explicit_bzero(&ctx, sizeof ctx);
    char b64[BASE64_ENCODE_RAW_LENGTH(SHA256_DIGEST_SIZE) + 1];
    base64_encode_raw(b64, sizeof mac, mac);
    b64[sizeof b64 - 1] = '\0';
    snprintf(out, SIGN_HEADER_MAX, "v1,%s", b64);
}

/*
 * tokens: API tokens and callback tokens (see tokens.h).
 */
#include "tokens.h"

#include <ctype.h>
#include <nettle/hmac.h>
#include <nettle/memops.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char NAME_CHARS[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-";
static const char TOKEN_CHARS[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/=";

static void sha256(const char *s, size_t n, unsigned char out[SHA256_DIGEST_SIZE])
{
    struct sha256_ctx ctx;
    sha256_init(&ctx);
    sha256_update(&ctx, n, (const uint8_t *)s);
    sha256_digest(&ctx, SHA256_DIGEST_SIZE, out);
    explicit_bzero(&ctx, sizeof ctx); /* it held token bytes */
}

/* Whether the n bytes of s are all from set. */
static bool all_of(const char *s, size_t n, const char *set)
{
    for (size_t i = 0; i < n; i++)
        if (!s[i] || !strchr(set, s[i]))
            return false;
    return true;
}

/* Parses one entry (n bytes at s, trimmed) into t. */
static int parse_entry(const char *s, size_t n, struct api_token *t, int index, char *err,
                       size_t errsize)
{
    const char *c1 = memchr(s, ':', n);
    const char *c2 = c1 ? memchr(c1 + 1, ':', n - (size_t)(c1 + 1 - s)) : NULL;
    if (!c2) {
        snprintf(err, errsize, "entry %d is not name:token:scope", index);
        return -1;
    }
    size_t nlen = (size_t)(c1 - s), tlen = (size_t)(c2 - c1 - 1), slen = n - (size_t)(c2 + 1 - s);
    if (nlen < 1 || nlen > TOKEN_NAME_MAX || !all_of(s, nlen, NAME_CHARS)) {
        snprintf(err, errsize, "entry %d: the name must be 1 to %d of A-Z a-z 0-9 . _ -", index,
                 TOKEN_NAME_MAX);
        return -1;
    }
    memcpy(t->name, s, nlen);
    t->name[nlen] = '\0';
    if (tlen < TOKEN_MIN || tlen > TOKEN_MAX || !all_of(c1 + 1, tlen, TOKEN_CHARS)) {
        snprintf(err, errsize,
                 "entry %d (%s): the token must be %d to %d of A-Z a-z 0-9 - . _ ~ + / =", index,
                 t->name, TOKEN_MIN, TOKEN_MAX);
        return -1;
    }
    sha256(c1 + 1, tlen, t->digest);
    if (slen == 4 && strncmp(c2 + 1, "read", 4) == 0) {
        t->scope = TOKEN_READ;
    } else if (slen == 5 && strncmp(c2 + 1, "write", 5) == 0) {
        t->scope = TOKEN_WRITE;
    } else {
        snprintf(err, errsize, "entry %d (%s): the scope must be read or write", index, t->name);
        return -1;
    }
    return 0;
}

static int add_entry(struct token_list *list, const struct api_token *t, int index, char *err,
                     size_t errsize)
{
    for (size_t i = 0; i < list->n; i++) {
        if (strcmp(list->items[i].name, t->name) == 0) {
            snprintf(err, errsize, "entry %d: the name %s is used twice", index, t->name);
            return -1;
        }
        if (memcmp(list->items[i].digest, t->digest, sizeof t->digest) == 0) {
            snprintf(err, errsize, "entry %d (%s): the same token as %s", index, t->name,
                     list->items[i].name);
            return -1;
        }
    }
    list->items = xrealloc(list->items, (list->n + 1) * sizeof *list->items);
    list->items[list->n++] = *t;
    return 0;
}

int tokens_parse(const char *spec, struct token_list *list, char *err, size_t errsize)
{
    const char *p = spec ? spec : "";
    int index = 0;
    while (*p) {
        size_t len = strcspn(p, ",\n#");
        const char *s = p, *e = p + len;
        util_trim(&s, &e);
        if (e > s) {
            struct api_token t;
            memset(&t, 0, sizeof t);
            index++;
            if (parse_entry(s, (size_t)(e - s), &t, index, err, errsize) < 0 ||
                add_entry(list, &t, index, err, errsize) < 0) {
                explicit_bzero(&t, sizeof t);
                return -1;
            }
            explicit_bzero(&t, sizeof t);
        }
        p += len;
        if (*p == '#')
            p += strcspn(p, "\n");
        if (*p)
            p++;
    }
    return 0;
}

void tokens_cleanup(struct token_list *list)
{
    if (list->items)
        explicit_bzero(list->items, list->n * sizeof *list->items);
    free(list->items);
    list->items = NULL;
    list->n = 0;
}

const struct api_token *tokens_find(const struct token_list *list, const char *presented)
{
    unsigned char d[32];
    sha256(presented, strlen(presented), d);
    const struct api_token *found = NULL;
    for (size_t i = 0; i < list->n; i++) {
        bool same = memeql_sec(d, list->items[i].digest, sizeof d);
        if (same && !found)
            found = &list->items[i];
    }
    return found;
}

void tokens_callback(const char *secret, const char *task_id, long long attempt,
                     char out[CALLBACK_TOKEN_LEN + 1])
{
    char msg[96];
    int n = snprintf(msg, sizeof msg, "%s:%lld", task_id, attempt);
    if (n < 0 || (size_t)n >= sizeof msg)
        n = (int)strlen(msg);
    uint8_t mac[SHA256_DIGEST_SIZE];
    struct hmac_sha256_ctx ctx;
    hmac_sha256_set_key(&ctx, strlen(secret), (const uint8_t *)secret);
    hmac_sha256_update(&ctx, (size_t)n, (const uint8_t *)msg);
    hmac_sha256_digest(&ctx, sizeof mac, mac);
    explicit_bzero(&ctx, sizeof ctx);
    for (size_t i = 0; i < sizeof mac && i * 2 < CALLBACK_TOKEN_LEN; i++)
        snprintf(out + i * 2, 3, "%02x", mac[i]);
    out[CALLBACK_TOKEN_LEN] = '\0';
}

bool tokens_callback_ok(const char *secret, const char *task_id, long long attempt,
                        const char *presented)
{
    if (strlen(presented) != CALLBACK_TOKEN_LEN)
        return false;
    char want[CALLBACK_TOKEN_LEN + 1], got[CALLBACK_TOKEN_LEN + 1];
    tokens_callback(secret, task_id, attempt, want);
    for (int i = 0; i <= CALLBACK_TOKEN_LEN; i++)
        got[i] = (char)tolower((unsigned char)presented[i]);
    bool ok = memeql_sec(want, got, CALLBACK_TOKEN_LEN);
    explicit_bzero(want, sizeof want);
    return ok;
}

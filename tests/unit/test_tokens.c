/*
 * Unit tests of shared/tokens.c: parsing API token lists (and refusing bad
 * ones without echoing the token), finding tokens, callback tokens
 * (checked against an independent HMAC-SHA256 computed with
 * `printf '%s' '<id>:<attempt>' | openssl dgst -sha256 -hmac <secret>`).
 */
#include "check.h"
#include "tokens.h"

static const char T1[] = "0123456789abcdef0123456789abcdef";
static const char T2[] = "ZYXWVUTSRQPONMLKJIHGFEDCBA-._~+/=";

static void test_parse(void)
{
    struct token_list l = {0};
    char err[200];
    char spec[400];
    snprintf(spec, sizeof spec, " ci:%s:read , ops-1.x_y:%s:write ", T1, T2);
    CHECK(tokens_parse(spec, &l, err, sizeof err) == 0);
    if (CHECK_INT((long long)l.n, 2)) {
        CHECK_STR(l.items[0].name, "ci");
        CHECK(l.items[0].scope == TOKEN_READ);
        CHECK_STR(l.items[1].name, "ops-1.x_y");
        CHECK(l.items[1].scope == TOKEN_WRITE);
    }
    const struct api_token *t = tokens_find(&l, T1);
    CHECK(t && strcmp(t->name, "ci") == 0);
    t = tokens_find(&l, T2);
    CHECK(t && strcmp(t->name, "ops-1.x_y") == 0);
    CHECK(tokens_find(&l, "0123456789abcdef0123456789abcdeF") == NULL);
    CHECK(tokens_find(&l, "0123456789abcdef0123456789abcde") == NULL);
    CHECK(tokens_find(&l, "") == NULL);
    tokens_cleanup(&l);
    CHECK(l.n == 0 && l.items == NULL);

    /* The file form: one a line, comments, blank lines; adds to a list. */
    snprintf(spec, sizeof spec, "# tokens\n\nci:%s:read   # the CI\n\n  # nothing\nops:%s:write\n",
             T1, T2);
    CHECK(tokens_parse(spec, &l, err, sizeof err) == 0);
    CHECK_INT((long long)l.n, 2);
    CHECK(tokens_parse("", &l, err, sizeof err) == 0);
    CHECK_INT((long long)l.n, 2);
    tokens_cleanup(&l);

    static const char *bad[] = {
        "ci",
        "ci:0123456789abcdef0123456789abcdef",
        "ci:0123456789abcdef0123456789abcdef:admin",
        "ci:0123456789abcdef0123456789abcdef:Read",
        ":0123456789abcdef0123456789abcdef:read",
        "c i:0123456789abcdef0123456789abcdef:read",
        "ci:short-token:read",
        "ci:0123456789abcdef 0123456789abcdef:read",
        "ci:0123456789abcdef\"0123456789abcdef:read",
        "ci:0123456789abcdef0123456789abcdef:read:x",
        "ci:0123456789abcdef0123456789abcdef:read,ci:aaaaaaaaaaaaaaaaaaaaaaaa:write",
        "ci:0123456789abcdef0123456789abcdef:read,cd:0123456789abcdef0123456789abcdef:write",
        "this-name-is-far-too-long-to-be-a-name-this-name-is-far-too-long-x:"
        "0123456789abcdef0123456789abcdef:read",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct token_list b = {0};
        err[0] = '\0';
        if (!CHECK(tokens_parse(bad[i], &b, err, sizeof err) < 0))
            fprintf(stderr, "    accepted: %s\n", bad[i]);
        CHECK(err[0] != '\0');
        CHECK(strstr(err, "0123456789abcdef") == NULL); /* never the token */
        tokens_cleanup(&b);
    }
}

static void test_callback(void)
{
    const char *id = "0b9a7c1e-6c55-4d3f-9a53-8f1f1c2d3e4f";
    char tok[CALLBACK_TOKEN_LEN + 1];
    tokens_callback("callback-secret-0123", id, 1, tok);
    CHECK_STR(tok, "b8bec1f2e8aa4462e36aeda5cf80110d502093489499b468d868efd42071d847");
    CHECK_INT((long long)strlen(tok), 64);
    CHECK(tokens_callback_ok("callback-secret-0123", id, 1, tok));
    /* Another attempt, task or secret: refused. */
    CHECK(!tokens_callback_ok("callback-secret-0123", id, 2, tok));
    CHECK(!tokens_callback_ok("callback-secret-0123", "1b9a7c1e-6c55-4d3f-9a53-8f1f1c2d3e4f", 1,
                              tok));
    CHECK(!tokens_callback_ok("other-secret-0123456", id, 1, tok));
    /* Upper-case hex is the same token; a cut or longer one is not. */
    char upper[CALLBACK_TOKEN_LEN + 1];
    for (int i = 0; i <= CALLBACK_TOKEN_LEN; i++)
        upper[i] = (char)(tok[i] >= 'a' && tok[i] <= 'f' ? tok[i] - 32 : tok[i]);
    CHECK(tokens_callback_ok("callback-secret-0123", id, 1, upper));
    char cut[CALLBACK_TOKEN_LEN];
    memcpy(cut, tok, CALLBACK_TOKEN_LEN - 1);
    cut[CALLBACK_TOKEN_LEN - 1] = '\0';
    CHECK(!tokens_callback_ok("callback-secret-0123", id, 1, cut));
    char longer[CALLBACK_TOKEN_LEN + 3];
    snprintf(longer, sizeof longer, "%s00", tok);
    CHECK(!tokens_callback_ok("callback-secret-0123", id, 1, longer));
    CHECK(!tokens_callback_ok("callback-secret-0123", id, 1, ""));
}

int main(void)
{
    test_parse();
    test_callback();
    return check_exit();
}

/*
 * tokens: the credentials of the API.
 *
 * API tokens (TASKRUNNER_API_TOKENS, TASKRUNNER_API_TOKENS_FILE) say who may
 * call the API, under which name (the actor of the audit trail) and with
 * which scope: `read` (GET only) or `write` (everything). Only a SHA-256
 * digest of each token is kept; a presented token is looked up in constant
 * time.
 *
 * Callback tokens let an executor report on one task's start attempt
 * through its handle URL: hex HMAC-SHA256(callback secret, "<task id>:<attempt>").
 * Nothing is stored: the responder recomputes it from the task's current
 * attempt, so a token of an earlier attempt or of another task is refused.
 */
#ifndef TR_TOKENS_H
#define TR_TOKENS_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

enum token_scope { TOKEN_READ = 1, TOKEN_WRITE = 2 };
enum { TOKEN_NAME_MAX = 64, TOKEN_MIN = 16, TOKEN_MAX = 512, CALLBACK_TOKEN_LEN = 64 };

struct api_token {
    char name[TOKEN_NAME_MAX + 1];
    enum token_scope scope;
    unsigned char digest[32]; /* SHA-256 of the token */
};

struct token_list {
    struct api_token *items;
    size_t n;
};

/* Adds the tokens of spec to list (start from a zeroed list). spec holds
 * entries `name:token:scope` separated by commas or new lines; white space
 * around entries is ignored, and so is everything from a '#' to the end of
 * its line. name: 1..64 of A-Z a-z 0-9 . _ -; token: 16..512 of
 * A-Z a-z 0-9 - . _ ~ + / =; scope: read or write. Names and tokens must be
 * unique. Returns -1 on a bad entry with why in err (never the token). */
int tokens_parse(const char *spec, struct token_list *list, char *err, size_t errsize) WARN_UNUSED;
void tokens_cleanup(struct token_list *list);

/* The entry whose token is presented, or NULL. Every entry is compared, each
 * in constant time, whatever matches. */
const struct api_token *tokens_find(const struct token_list *list, const char *presented);

/* Writes the callback token of the task's start attempt into out (64 hex
 * digits and a NUL). */
void tokens_callback(const char *secret, const char *task_id, long long attempt,
                     char out[CALLBACK_TOKEN_LEN + 1]);
/* Whether presented is that token (compared in constant time). */
bool tokens_callback_ok(const char *secret, const char *task_id, long long attempt,
                        const char *presented);

#endif

/*
 * Unit tests of shared/webhook_headers.c: the header names a task may not
 * set, in any letter case, and what counts as a header name and value.
 */
#include "webhook_headers.h"

#include "check.h"

int main(void)
{
    static const char *const refused[] = {
        "Host", "host", "HOST", "Content-Length", "content-length", "Transfer-Encoding",
        "Connection", "Keep-Alive", "TE", "te", "Trailer", "Upgrade", "Expect",
        "Proxy-Authorization", "proxy-connection", "Proxy-", "X-Task-Id", "x-task-trigger",
        "X-Task-Status", "X-TASK-ATTEMPT", "X-Batch-Id", "Idempotency-Key", "idempotency-key",
        "X-Taskrunner-Signature", "webhook-id", "Webhook-Signature", "WEBHOOK-TIMESTAMP"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        if (!CHECK(webhook_header_refused(refused[i])))
            fprintf(stderr, "    %s should be refused\n", refused[i]);
    static const char *const allowed[] = {"Authorization", "Content-Type", "X-Tasks", "X-Task",
                                          "Hosts", "Tea", "X-Trace-Id", "Accept", "webhook",
                                          "X-Batch-Idx", "Proxy", "User-Agent"};
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
        if (!CHECK(!webhook_header_refused(allowed[i])))
            fprintf(stderr, "    %s should be allowed\n", allowed[i]);
    CHECK(webhook_header_name_ok("X-A_b.c~!#$%&'*+^`|"));
    CHECK(!webhook_header_name_ok(""));
    CHECK(!webhook_header_name_ok("Bad Name"));
    CHECK(!webhook_header_name_ok("X-A:"));
    CHECK(!webhook_header_name_ok("X-A\r\nHost"));
    CHECK(webhook_header_value_ok("a\tb c"));
    CHECK(!webhook_header_value_ok("a\r\nContent-Length: 0"));
    CHECK(!webhook_header_value_ok("a\nb"));
    CHECK(!webhook_header_value_ok("a\x7f"));
    return check_exit();
}

/*
 * Unit tests of worker/targets.c: the target of a URL, the per-target cap
 * and queue, and the circuit breaker's states (open after N failures, one
 * probe once the cool-down is over, doubling cool-down, resume).
 */
#include <string.h>

#include "check.h"
#include "targets.h"

static enum target_event done(struct targets *t, const char *target, bool failed, long long now)
{
    int cooldown, failures;
    return targets_done(t, target, failed, false, now, &cooldown, &failures);
}

int main(void)
{
    char out[TARGET_MAX];
    /* scheme, host (lower case) and port, the default port filled in */
    CHECK_INT(targets_of_url("http://Example.COM/x?y=1", out, sizeof out), 0);
    CHECK_STR(out, "http://example.com:80");
    CHECK_INT(targets_of_url("https://u:p@h.example:8443/a", out, sizeof out), 0);
    CHECK_STR(out, "https://h.example:8443");
    CHECK_INT(targets_of_url("http://[::1]:9/", out, sizeof out), 0);
    CHECK_STR(out, "http://[::1]:9");
    CHECK_INT(targets_of_url("not a url", out, sizeof out), -1);

    struct config cfg = {.max_inflight_per_host = 2, .breaker_failures = 3,
                         .breaker_cooldown_ms = 100, .breaker_cooldown_max_ms = 300,
                         .webhook_timeout_ms = 1000};
    struct targets *t = targets_new(&cfg);
    const char *a = "http://a:80", *b = "http://b:80";
    /* The cap: two in flight, then two queued, then handed back. */
    CHECK_INT(targets_admit(t, a, 0), TARGET_GO);
    CHECK_INT(targets_admit(t, a, 0), TARGET_GO);
    CHECK_INT(targets_admit(t, a, 0), TARGET_QUEUE);
    struct call c1 = {.delivery_id = 1}, c2 = {.delivery_id = 2}, got;
    targets_queue(t, a, &c1);
    targets_queue(t, a, &c2);
    CHECK_INT(targets_admit(t, a, 0), TARGET_PARK);
    /* Another target is not held back by a's. */
    CHECK_INT(targets_admit(t, b, 0), TARGET_GO);
    CHECK(!targets_next_ready(t, &got, out, sizeof out));
    CHECK_INT(done(t, a, false, 0), TARGET_NONE);
    CHECK(targets_next_ready(t, &got, out, sizeof out));
    CHECK_INT((int)got.delivery_id, 1);
    CHECK_STR(out, a);

    /* The breaker of b: three failures in a row open it; a 4xx-like answer
     * (not a failure) in between resets the count. */
    CHECK_INT(done(t, b, true, 0), TARGET_NONE);
    CHECK_INT(targets_admit(t, b, 0), TARGET_GO);
    CHECK_INT(done(t, b, false, 0), TARGET_NONE);
    for (int i = 0; i < 2; i++) {
        CHECK_INT(targets_admit(t, b, 0), TARGET_GO);
        CHECK_INT(done(t, b, true, 0), TARGET_NONE);
    }
    CHECK_INT(targets_admit(t, b, 0), TARGET_GO);
    CHECK_INT(done(t, b, true, 10), TARGET_OPENED);
    CHECK_INT(targets_held_count(t), 1);
    CHECK_INT(targets_admit(t, b, 50), TARGET_HELD);
    CHECK_INT(targets_wait_ms(t, b, true, 50), 60 + 100);
    /* Cool-down over: one probe; it fails, the cool-down doubles. */
    CHECK_INT(targets_admit(t, b, 110), TARGET_PROBE);
    targets_probe_granted(t, b);
    CHECK_INT(targets_admit(t, b, 110), TARGET_HELD);
    CHECK_INT(done(t, b, true, 120), TARGET_REHELD);
    CHECK_INT(targets_admit(t, b, 300), TARGET_HELD);
    CHECK_INT(targets_admit(t, b, 320), TARGET_PROBE);
    targets_probe_granted(t, b);
    CHECK_INT(done(t, b, true, 320), TARGET_REHELD); /* 400 ms, capped at 300 */
    CHECK_INT(targets_admit(t, b, 619), TARGET_HELD);
    CHECK_INT(targets_admit(t, b, 620), TARGET_PROBE);
    targets_probe_granted(t, b);
    CHECK_INT(done(t, b, false, 630), TARGET_RESUMED);
    CHECK_INT(targets_held_count(t), 0);
    CHECK_INT(targets_admit(t, b, 630), TARGET_GO);

    /* Shared state: a hold seen in the database holds here; gone, resumes. */
    targets_sync_begin(t);
    targets_sync_held(t, "http://c:80", 500, 1000, 0);
    targets_sync_end(t);
    CHECK_INT(targets_admit(t, "http://c:80", 100), TARGET_HELD);
    targets_sync_begin(t);
    targets_sync_end(t);
    CHECK_INT(targets_admit(t, "http://c:80", 100), TARGET_GO);
    call_cleanup(&got);
    targets_free(t);
    return check_exit();
}

/*
 * Unit tests of shared/backoff.c: exponential growth, the cap, and the range
 * of each kind of jitter.
 */
#include "backoff.h"
#include "check.h"

int main(void)
{
    struct backoff b = {.base_ms = 500, .factor = 2, .cap_ms = 60000,
                        .jitter = BACKOFF_JITTER_NONE};
    /* Exponential: 500, 1000, 2000, ... */
    CHECK_INT(backoff_delay_ms(&b, 1, 0.5), 500);
    CHECK_INT(backoff_delay_ms(&b, 2, 0.5), 1000);
    CHECK_INT(backoff_delay_ms(&b, 3, 0.5), 2000);
    CHECK_INT(backoff_delay_ms(&b, 7, 0.5), 32000);
    /* Capped, however many attempts (no overflow at large counts). */
    CHECK_INT(backoff_delay_ms(&b, 8, 0.5), 60000);
    CHECK_INT(backoff_delay_ms(&b, 1000000, 0.5), 60000);
    /* attempts below 1 count as the first. */
    CHECK_INT(backoff_delay_ms(&b, 0, 0.5), 500);

    /* Equal jitter: between half the delay and the delay. */
    b.jitter = BACKOFF_JITTER_EQUAL;
    CHECK_INT(backoff_delay_ms(&b, 3, 0), 1000);
    CHECK_INT(backoff_delay_ms(&b, 3, 1), 2000);
    CHECK_INT(backoff_delay_ms(&b, 3, 0.5), 1500);
    /* Full jitter: anything from 0 to the delay. */
    b.jitter = BACKOFF_JITTER_FULL;
    CHECK_INT(backoff_delay_ms(&b, 3, 0), 0);
    CHECK_INT(backoff_delay_ms(&b, 3, 1), 2000);
    CHECK_INT(backoff_delay_ms(&b, 3, 0.25), 500);
    /* A random number out of [0, 1] is clamped. */
    CHECK_INT(backoff_delay_ms(&b, 3, 7), 2000);
    CHECK_INT(backoff_delay_ms(&b, 3, -1), 0);

    /* A factor of 1: constant. */
    struct backoff c = {.base_ms = 250, .factor = 1, .cap_ms = 1000,
                        .jitter = BACKOFF_JITTER_NONE};
    CHECK_INT(backoff_delay_ms(&c, 50, 0.3), 250);
    return check_exit();
}

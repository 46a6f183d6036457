/*
 * backoff: exponential delays with a cap and jitter (see backoff.h).
 */
#include "backoff.h"

long long backoff_delay_ms(const struct backoff *b, int attempts, double unit)
{
    double delay = b->base_ms;
    for (int i = 1; i < attempts && delay < b->cap_ms; i++)
        delay *= b->factor;
    if (delay > b->cap_ms)
        delay = b->cap_ms;
    if (delay < 0)
        delay = 0;
    if (unit < 0)
        unit = 0;
    if (unit > 1)
        unit = 1;
    switch (b->jitter) {
    case BACKOFF_JITTER_EQUAL:
        delay = delay / 2 + unit * (delay / 2);
        break;
    case BACKOFF_JITTER_FULL:
        delay = unit * delay;
        break;
    case BACKOFF_JITTER_NONE:
        break;
    }
    return (long long)delay;
}

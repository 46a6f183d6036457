/*
 * backoff: how long to wait before the next attempt of something that failed
 * (a webhook call now; task retries later): exponential from a base, capped,
 * with jitter so that many failures at once do not retry at once.
 */
#ifndef TR_BACKOFF_H
#define TR_BACKOFF_H

enum backoff_jitter {
    BACKOFF_JITTER_NONE,  /* the delay itself */
    BACKOFF_JITTER_EQUAL, /* half the delay, plus up to the other half at random */
    BACKOFF_JITTER_FULL,  /* anything from 0 to the delay */
};

struct backoff {
    double base_ms; /* the delay after the first failed attempt */
    double factor;  /* each further failure multiplies it */
    double cap_ms;  /* it never grows beyond */
    enum backoff_jitter jitter;
};

/* The delay before the attempt after `attempts` failed ones (1 = after the
 * first failure): base_ms * factor^(attempts - 1), capped, then jittered with
 * unit, a random number in [0, 1]. Never negative. */
long long backoff_delay_ms(const struct backoff *b, int attempts, double unit);

#endif

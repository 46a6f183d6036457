/*
 * targets: per-target places in flight, waiting calls and the circuit
 * breaker of one worker (see targets.h).
 *
 * Targets live in a hash table of chains; an entry is dropped as soon as it
 * holds nothing worth keeping (no call in flight, queued or parked, no
 * failure counted, not held back), so the table holds the targets in use.
 */
#include "targets.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "log.h"
#include "util.h"

enum { N_CHAINS = 1024 };

struct waiting {
    struct waiting *next;
    struct call call;
};

struct target {
    struct target *next; /* in its chain */
    char name[TARGET_MAX];
    int inflight;                /* calls of this worker in flight to it */
    int parked;                  /* calls handed back to wait for a place here */
    struct waiting *head, *tail; /* calls queued here for a place, oldest first */
    int queued;
    int failures;         /* consecutive failed calls */
    bool held;            /* the breaker is open (here or in another worker) */
    bool probing;         /* our probe call is in flight */
    bool probe_asked;     /* a waiting call was released to be the probe */
    bool seen;            /* seen held in the last sync */
    long long held_until; /* monotonic ms: the cool-down ends */
    int cooldown_ms;
};

struct targets {
    const struct config *cfg;
    struct target *chains[N_CHAINS];
    int held;             /* targets held back */
    size_t release_chain; /* targets_next_release's position */
    struct target *release_at;
};

static uint32_t hash(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

struct targets *targets_new(const struct config *cfg)
{
    struct targets *t = xcalloc(1, sizeof *t);
    t->cfg = cfg;
    return t;
}

void targets_free(struct targets *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < N_CHAINS; i++) {
        struct target *e = t->chains[i];
        while (e) {
            struct target *next = e->next;
            while (e->head) {
                struct waiting *w = e->head;
                e->head = w->next;
                call_cleanup(&w->call);
                free(w);
            }
            free(e);
            e = next;
        }
    }
    free(t);
}

int targets_of_url(const char *url, char *out, size_t n)
{
    int rc = -1;
    char *scheme = NULL, *host = NULL, *port = NULL;
    CURLU *u = curl_url();
    if (!u)
        fatal("out of memory (curl_url)");
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK)
        goto out;
    for (char *p = host; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    int len = snprintf(out, n, "%s://%s:%s", scheme, host, port);
    if (len < 0 || (size_t)len >= n)
        goto out;
    rc = 0;
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return rc;
}

static struct target *find(struct targets *t, const char *name, bool create)
{
    struct target **chain = &t->chains[hash(name) % N_CHAINS];
    for (struct target *e = *chain; e; e = e->next)
        if (strcmp(e->name, name) == 0)
            return e;
    if (!create)
        return NULL;
    struct target *e = xcalloc(1, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    e->next = *chain;
    *chain = e;
    return e;
}

/* Drops e when it holds nothing worth keeping. */
static void maybe_drop(struct targets *t, struct target *e)
{
    if (e->inflight > 0 || e->parked > 0 || e->head || e->failures > 0 || e->held)
        return;
    if (t->release_at == e)
        t->release_at = e->next;
    struct target **p = &t->chains[hash(e->name) % N_CHAINS];
    while (*p && *p != e)
        p = &(*p)->next;
    if (*p)
        *p = e->next;
    free(e);
}

static void set_held(struct targets *t, struct target *e, bool held)
{
    if (e->held != held)
        t->held += held ? 1 : -1;
    e->held = held;
    if (!held) {
        e->probing = e->probe_asked = false;
        e->failures = 0;
    }
}

enum target_verdict targets_admit(struct targets *t, const char *target, long long now)
{
    struct target *e = find(t, target, true);
    if (e->held) {
        if (e->probing || now < e->held_until)
            return TARGET_HELD;
        return TARGET_PROBE;
    }
    if (e->inflight < t->cfg->max_inflight_per_host) {
        e->inflight++;
        return TARGET_GO;
    }
    return e->queued < t->cfg->max_inflight_per_host ? TARGET_QUEUE : TARGET_PARK;
}

void targets_probe_granted(struct targets *t, const char *target)
{
    struct target *e = find(t, target, true);
    e->probing = true;
    e->probe_asked = false;
    e->inflight++;
}

void targets_probe_refused(struct targets *t, const char *target, long long now)
{
    struct target *e = find(t, target, true);
    /* Another worker probes, or resumed it: the next sync tells. */
    e->held_until = now + t->cfg->breaker_cooldown_ms;
    e->probe_asked = false;
}

static int grown(const struct config *cfg, int cooldown_ms)
{
    long long next = cooldown_ms <= 0 ? cfg->breaker_cooldown_ms : 2LL * cooldown_ms;
    return (int)(next > cfg->breaker_cooldown_max_ms ? cfg->breaker_cooldown_max_ms : next);
}

enum target_event targets_done(struct targets *t, const char *target, bool failed, bool neutral,
                               long long now, int *cooldown_ms, int *failures)
{
    enum target_event ev = TARGET_NONE;
    struct target *e = find(t, target, false);
    if (!e)
        return ev;
    if (e->inflight > 0)
        e->inflight--;
    bool probe = e->probing;
    if (probe)
        e->probing = false;
    if (neutral) {
        maybe_drop(t, e);
        return ev;
    }
    if (!failed) {
        if (e->held && probe)
            ev = TARGET_RESUMED;
        if (e->held && !probe) {
            /* A call made before the breaker opened answered: not a probe,
             * the target stays held until one succeeds. */
        } else {
            set_held(t, e, false);
        }
        e->failures = 0;
    } else {
        e->failures++;
        if (e->held && probe) {
            e->cooldown_ms = grown(t->cfg, e->cooldown_ms);
            e->held_until = now + e->cooldown_ms;
            ev = TARGET_REHELD;
        } else if (!e->held && e->failures >= t->cfg->breaker_failures) {
            set_held(t, e, true);
            e->cooldown_ms = t->cfg->breaker_cooldown_ms;
            e->held_until = now + e->cooldown_ms;
            ev = TARGET_OPENED;
        }
    }
    *cooldown_ms = e->cooldown_ms;
    *failures = e->failures;
    maybe_drop(t, e);
    return ev;
}

int targets_wait_ms(struct targets *t, const char *target, bool held, long long now)
{
    struct target *e = find(t, target, false);
    if (!held || !e)
        return t->cfg->webhook_timeout_ms;
    long long left = e->held_until > now ? e->held_until - now : 0;
    return (int)(left + (e->cooldown_ms > 0 ? e->cooldown_ms : t->cfg->breaker_cooldown_ms));
}

void targets_parked(struct targets *t, const char *target, int n)
{
    find(t, target, true)->parked += n;
}

void targets_queue(struct targets *t, const char *target, struct call *c)
{
    struct target *e = find(t, target, true);
    struct waiting *w = xcalloc(1, sizeof *w);
    w->call = *c;
    memset(c, 0, sizeof *c);
    if (e->tail)
        e->tail->next = w;
    else
        e->head = w;
    e->tail = w;
    e->queued++;
}

static void dequeue(struct target *e, struct call *c, char *target, size_t n)
{
    struct waiting *w = e->head;
    e->head = w->next;
    if (!e->head)
        e->tail = NULL;
    e->queued--;
    *c = w->call;
    free(w);
    snprintf(target, n, "%s", e->name);
}

bool targets_next_ready(struct targets *t, struct call *c, char *target, size_t n)
{
    for (size_t i = 0; i < N_CHAINS; i++)
        for (struct target *e = t->chains[i]; e; e = e->next)
            if (e->head && (e->held || e->inflight < t->cfg->max_inflight_per_host)) {
                dequeue(e, c, target, n);
                return true;
            }
    return false;
}

bool targets_next_any(struct targets *t, struct call *c, char *target, size_t n)
{
    for (size_t i = 0; i < N_CHAINS; i++)
        for (struct target *e = t->chains[i]; e; e = e->next)
            if (e->head) {
                dequeue(e, c, target, n);
                return true;
            }
    return false;
}

void targets_release_begin(struct targets *t)
{
    t->release_chain = 0;
    t->release_at = t->chains[0];
}

bool targets_next_release(struct targets *t, long long now, char *target, size_t n, int *limit)
{
    while (t->release_chain < N_CHAINS) {
        struct target *e = t->release_at;
        if (!e) {
            if (++t->release_chain < N_CHAINS)
                t->release_at = t->chains[t->release_chain];
            continue;
        }
        t->release_at = e->next;
        int free_places = t->cfg->max_inflight_per_host - e->inflight - e->queued;
        if (e->held) {
            if (!e->probing && !e->probe_asked && now >= e->held_until) {
                /* A call waiting in the database comes to be the probe. */
                e->probe_asked = true;
                *limit = 1;
                snprintf(target, n, "%s", e->name);
                return true;
            }
        } else if (e->parked > 0 && free_places > 0) {
            *limit = free_places < e->parked ? free_places : e->parked;
            snprintf(target, n, "%s", e->name);
            return true;
        }
    }
    return false;
}

void targets_released(struct targets *t, const char *target, int asked, int n)
{
    struct target *e = find(t, target, false);
    if (!e || e->held)
        return;
    /* Fewer than asked: none are left (another worker took them, or they
     * were canceled). */
    e->parked = n < asked ? 0 : e->parked - n;
    if (e->parked < 0)
        e->parked = 0;
    maybe_drop(t, e);
}

void targets_sync_begin(struct targets *t)
{
    for (size_t i = 0; i < N_CHAINS; i++)
        for (struct target *e = t->chains[i]; e; e = e->next)
            e->seen = false;
}

void targets_sync_held(struct targets *t, const char *target, int wait_ms, int cooldown_ms,
                       long long now)
{
    struct target *e = find(t, target, true);
    e->seen = true;
    if (!e->held) {
        set_held(t, e, true);
        e->held_until = now + wait_ms;
        e->cooldown_ms = cooldown_ms;
    } else if (!e->probing) {
        long long until = now + wait_ms;
        if (until > e->held_until)
            e->held_until = until;
        if (cooldown_ms > e->cooldown_ms)
            e->cooldown_ms = cooldown_ms;
    }
}

void targets_sync_end(struct targets *t)
{
    for (size_t i = 0; i < N_CHAINS; i++) {
        struct target *e = t->chains[i];
        while (e) {
            struct target *next = e->next;
            if (e->held && !e->seen && !e->probing) {
                set_held(t, e, false);
                maybe_drop(t, e);
            }
            e = next;
        }
    }
}

int targets_held_count(const struct targets *t)
{
    return t->held;
}

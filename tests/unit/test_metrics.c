/*
 * Unit tests of shared/metrics.c: in-memory counters and histograms, what a
 * flush hands over (and keeps when the database does not take it), and the
 * Prometheus text exposition.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "metrics.h"

/* The pending changes as the JSON a flush would send (the caller frees). */
static char *pending_json(struct metrics *m, bool commit)
{
    struct metrics_batch b;
    metrics_pending(m, &b);
    char *json = xstrdup(b.json);
    if (commit)
        metrics_commit(m, &b);
    metrics_batch_cleanup(&b);
    return json;
}

static void test_counters(void)
{
    struct metrics *m = metrics_new();
    char *j = pending_json(m, true);
    CHECK_STR(j, "[]");
    free(j);

    const char *ok[] = {"route", "/tasks/:id", "code", "200", NULL};
    const char *odd[] = {"route", "a\"b\\c\n", "code", "500", NULL};
    metrics_add(m, "req_total", ok, 1);
    metrics_add(m, "req_total", ok, 2);
    metrics_add(m, "req_total", odd, 1);
    metrics_add(m, "plain_total", NULL, 5);
    j = pending_json(m, false);
    CHECK_STR(j, "[[\"req_total\", {\"route\": \"/tasks/:id\", \"code\": \"200\"}, 3], "
                 "[\"req_total\", {\"route\": \"a\\\"b\\\\c\\u000a\", \"code\": \"500\"}, 1], "
                 "[\"plain_total\", {}, 5]]");
    free(j);

    /* Not committed (the database did not take it): still pending, and
     * what came meanwhile is added to it. */
    metrics_add(m, "plain_total", NULL, 1);
    j = pending_json(m, true);
    CHECK(strstr(j, "[\"plain_total\", {}, 6]") != NULL);
    free(j);

    /* Committed: only what came since is pending, as a delta. */
    metrics_add(m, "req_total", ok, 4);
    j = pending_json(m, true);
    CHECK_STR(j, "[[\"req_total\", {\"route\": \"/tasks/:id\", \"code\": \"200\"}, 4]]");
    free(j);
    j = pending_json(m, true);
    CHECK_STR(j, "[]");
    free(j);

    /* Many series: the table grows and keeps every one. */
    for (int i = 0; i < 1000; i++) {
        char v[16];
        snprintf(v, sizeof v, "%d", i);
        const char *l[] = {"n", v, NULL};
        metrics_add(m, "many_total", l, i);
    }
    const char *l500[] = {"n", "500", NULL};
    metrics_add(m, "many_total", l500, 1);
    j = pending_json(m, true);
    CHECK(strstr(j, "[\"many_total\", {\"n\": \"500\"}, 501]") != NULL);
    CHECK(strstr(j, "[\"many_total\", {\"n\": \"999\"}, 999]") != NULL);
    free(j);
    metrics_free(m);
}

static void test_histogram(void)
{
    struct metrics *m = metrics_new();
    static const double bounds[] = {0.1, 1, 2.5};
    const char *l[] = {"route", "/x", NULL};
    metrics_observe(m, "lat_seconds", l, bounds, 3, 0.5);
    metrics_observe(m, "lat_seconds", l, bounds, 3, 0.05);
    metrics_observe(m, "lat_seconds", l, bounds, 3, 7);
    metrics_observe(m, "lat_seconds", l, bounds, 3, -1); /* a clock step: counted as 0 */
    char *j = pending_json(m, true);
    CHECK(strstr(j, "[\"lat_seconds_bucket\", {\"route\": \"/x\", \"le\": \"0.1\"}, 2]") != NULL);
    CHECK(strstr(j, "[\"lat_seconds_bucket\", {\"route\": \"/x\", \"le\": \"1\"}, 3]") != NULL);
    CHECK(strstr(j, "[\"lat_seconds_bucket\", {\"route\": \"/x\", \"le\": \"2.5\"}, 3]") != NULL);
    CHECK(strstr(j, "[\"lat_seconds_bucket\", {\"route\": \"/x\", \"le\": \"+Inf\"}, 4]") != NULL);
    CHECK(strstr(j, "[\"lat_seconds_sum\", {\"route\": \"/x\"}, 7550000]") != NULL);
    CHECK(strstr(j, "[\"lat_seconds_count\", {\"route\": \"/x\"}, 4]") != NULL);
    free(j);
    metrics_observe(m, "plain_seconds", NULL, bounds, 3, 1);
    j = pending_json(m, true);
    CHECK(strstr(j, "[\"plain_seconds_bucket\", {\"le\": \"1\"}, 1]") != NULL);
    CHECK(strstr(j, "[\"plain_seconds_bucket\", {\"le\": \"0.1\"}") == NULL);
    CHECK(strstr(j, "[\"plain_seconds_count\", {}, 1]") != NULL);
    free(j);

    /* Observations that round to 0 µs: the _sum series is still written
     * once (at 0), so that the scrape shows it beside _count; after that a
     * zero change is not pending. */
    metrics_observe(m, "fast_seconds", NULL, bounds, 3, 0);
    j = pending_json(m, true);
    CHECK(strstr(j, "[\"fast_seconds_sum\", {}, 0]") != NULL);
    CHECK(strstr(j, "[\"fast_seconds_count\", {}, 1]") != NULL);
    free(j);
    metrics_observe(m, "fast_seconds", NULL, bounds, 3, 0);
    j = pending_json(m, true);
    CHECK(strstr(j, "fast_seconds_sum") == NULL);
    CHECK(strstr(j, "[\"fast_seconds_count\", {}, 1]") != NULL);
    free(j);
    metrics_free(m);
}

enum { THREADS = 8, PER_THREAD = 20000 };

static void *adder(void *arg)
{
    struct metrics *m = arg;
    const char *l[] = {"k", "v", NULL};
    for (int i = 0; i < PER_THREAD; i++) {
        metrics_add(m, "conc_total", l, 1);
        if (i % 1000 == 0) { /* flushes run beside the adders */
            struct metrics_batch b;
            metrics_pending(m, &b);
            metrics_batch_cleanup(&b);
        }
    }
    return NULL;
}

static void test_threads(void)
{
    struct metrics *m = metrics_new();
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, adder, m);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    char *j = pending_json(m, true);
    char want[80];
    snprintf(want, sizeof want, "[[\"conc_total\", {\"k\": \"v\"}, %d]]", THREADS * PER_THREAD);
    CHECK_STR(j, want);
    free(j);
    metrics_free(m);
}

static void test_render(void)
{
    static const double bounds[] = {0.1, 1};
    static const struct metrics_family fams[] = {
        {"a_total", METRICS_COUNTER, NULL, "Plain.", NULL, 0},
        {"b_total", METRICS_COUNTER, "kind", "By kind.", NULL, 0},
        {"lat_seconds", METRICS_HISTOGRAM, "route", "Latency.", bounds, 2},
        {"g", METRICS_GAUGE, "status", "Gauge.", NULL, 0},
        {"h_seconds", METRICS_HISTOGRAM, NULL, "Empty.", bounds, 2},
    };
    /* As the database may give them: any order, buckets only where counted. */
    static const struct metrics_sample samples[] = {
        {"lat_seconds_sum", "{\"route\": \"/x\"}", 1500000},
        {"b_total", "{\"kind\": \"we\\\"ird\\\\k\\nind\"}", 7},
        {"lat_seconds_bucket", "{\"le\": \"+Inf\", \"route\": \"/x\"}", 3},
        {"lat_seconds_count", "{\"route\": \"/x\"}", 3},
        {"lat_seconds_bucket", "{\"le\": \"1\", \"route\": \"/x\"}", 2},
        {"g", "{\"status\": \"Running\"}", 4},
        {"unknown_total", "{}", 9},
        {"b_total", "not json", 1},
    };
    struct strbuf out;
    strbuf_init(&out);
    metrics_render(&out, fams, sizeof fams / sizeof fams[0], samples,
                   sizeof samples / sizeof samples[0]);
    CHECK_STR(out.data, "# HELP a_total Plain.\n"
                        "# TYPE a_total counter\n"
                        "a_total 0\n"
                        "# HELP b_total By kind.\n"
                        "# TYPE b_total counter\n"
                        "b_total{kind=\"we\\\"ird\\\\k\\nind\"} 7\n"
                        "# HELP lat_seconds Latency.\n"
                        "# TYPE lat_seconds histogram\n"
                        "lat_seconds_bucket{route=\"/x\",le=\"0.1\"} 0\n"
                        "lat_seconds_bucket{route=\"/x\",le=\"1\"} 2\n"
                        "lat_seconds_bucket{route=\"/x\",le=\"+Inf\"} 3\n"
                        "lat_seconds_sum{route=\"/x\"} 1.500000\n"
                        "lat_seconds_count{route=\"/x\"} 3\n"
                        "# HELP g Gauge.\n"
                        "# TYPE g gauge\n"
                        "g{status=\"Running\"} 4\n"
                        "# HELP h_seconds Empty.\n"
                        "# TYPE h_seconds histogram\n");
    strbuf_cleanup(&out);

    size_t n;
    const struct metrics_family *cat = metrics_catalog(&n);
    CHECK(n >= 12);
    for (size_t i = 0; i < n; i++) {
        CHECK(strncmp(cat[i].name, "taskrunner_", 11) == 0);
        CHECK(cat[i].type != METRICS_HISTOGRAM || cat[i].n_buckets > 0);
        CHECK(cat[i].type != METRICS_COUNTER || strstr(cat[i].name, "_total") != NULL);
    }
}

int main(void)
{
    test_counters();
    test_histogram();
    test_threads();
    test_render();
    return check_exit();
}

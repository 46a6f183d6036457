/*
 * metrics: GET /metrics, the Prometheus text exposition of the totals in the
 * database (shared/metrics.h): task counters kept exact by the functions of
 * sql/functions/ (metrics.sql, statuses.sql), the responders' and workers' flushed counters and histograms,
 * and the current count of tasks per status. Whichever responder answers,
 * the numbers are those of every process.
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>

#include "handlers.h"
#include "metrics.h"
#include "reply.h"

static const char SQL_SCRAPE[] =
    "SELECT name, labels, value FROM tr_metrics_scrape($1::integer, $2::integer)";
static const char CONTENT_TYPE[] = "text/plain; version=0.0.4; charset=utf-8";

void metrics_get(struct request *r, const char *unused)
{
    char max_kinds[16], max_groups[16];
    snprintf(max_kinds, sizeof max_kinds, "%d", r->cfg->metrics_max_kinds);
    snprintf(max_groups, sizeof max_groups, "%d", r->cfg->metrics_max_groups);
    const char *params[] = {max_kinds, max_groups};
    PGresult *res;
    struct db_error err;
    if (db_query(r->db, SQL_SCRAPE, 2, params, &res, &err) < 0) {
        reply_db_error(r, &err);
        return;
    }
    int n = PQntuples(res);
    struct metrics_sample *samples = xcalloc(n > 0 ? (size_t)n : 1, sizeof *samples);
    for (int i = 0; i < n; i++) {
        samples[i].name = PQgetvalue(res, i, 0);
        samples[i].labels = PQgetvalue(res, i, 1);
        samples[i].value = strtoll(PQgetvalue(res, i, 2), NULL, 10);
    }
    size_t n_families;
    const struct metrics_family *families = metrics_catalog(&n_families);
    struct strbuf out;
    strbuf_init(&out);
    metrics_render(&out, families, n_families, samples, (size_t)n);
    reply_text(r, 200, CONTENT_TYPE, out.data ? out.data : "", out.len);
    strbuf_cleanup(&out);
    free(samples);
    PQclear(res);
}

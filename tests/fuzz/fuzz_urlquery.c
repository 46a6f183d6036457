/*
 * fuzz_urlquery: libFuzzer target for the query-string parser (shared/urlquery.c,
 * what fcgi/request.c and fcgi/auth.c use). The first byte picks the length
 * of the parameter name taken from the bytes that follow; the rest is the
 * query string (cut at a NUL, as a CGI parameter would be). The names the
 * API reads are looked up too.
 *
 * Invariants: a value found is a NUL-free string no longer than the query;
 * a malformed value (-1) leaves the out-parameter NULL.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "urlquery.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void look_up(const char *query, const char *name)
{
    char *v = (char *)1;
    int rc = urlquery_value(query, name, &v);
    if (rc < 0) {
        if (v != NULL)
            abort();
        return;
    }
    if (rc != 0)
        abort();
    if (v && strlen(v) > strlen(query))
        abort();
    free(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"status", "kind",      "name",     "batch_id", "metadata",
                                        "page",   "page_size", "per_page", "token",    ""};
    if (size == 0)
        return 0;
    size_t nlen = data[0] % 16;
    if (nlen > size - 1)
        nlen = size - 1;
    char *name = malloc(nlen + 1);
    char *query = malloc(size - 1 - nlen + 1);
    if (!name || !query)
        abort();
    memcpy(name, data + 1, nlen);
    name[nlen] = '\0';
    memcpy(query, data + 1 + nlen, size - 1 - nlen);
    query[size - 1 - nlen] = '\0';

    look_up(query, name);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        look_up(query, names[i]);
    free(name);
    free(query);
    return 0;
}

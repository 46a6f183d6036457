/*
 * trivial-fcgi: the ceiling responders of scripts/bench.
 *
 *   trivial-fcgi THREADS                 answers every request with a fixed body
 *   trivial-fcgi THREADS CONNINFO FILE   also runs the SQL statement in FILE
 *                                        (one round trip, prepared) per request
 *
 * Built by scripts/bench (cc -O2 ... -lfcgi -lpq -lpthread) into its var dir
 * and run like the real responders: spawn-fcgi hands over the listening
 * socket as fd 0, multiwatch runs TASKRUNNER_RESPONDERS such processes, and
 * each process runs THREADS threads, each with its own FastCGI request and
 * (in the second form) its own PostgreSQL connection. What stands between
 * this and taskrunner-fcgi is the work of the service itself: validation,
 * JSON, its SQL functions.
 *
 * TERM (or INT) stops it at once: nothing it holds needs cleaning up.
 */
#include <fcgiapp.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *conninfo; /* NULL: no database */
static char *sql;            /* the statement of FILE, trailing ';' removed */

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        exit(1);
    }
    char *buf = NULL;
    size_t len = 0, cap = 0, n;
    char chunk[4096];
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (len + n + 1 > cap) {
            cap = (len + n + 1) * 2;
            buf = realloc(buf, cap);
            if (!buf)
                abort();
        }
        memcpy(buf + len, chunk, n);
        len += n;
    }
    fclose(f);
    if (!buf)
        return strdup("");
    buf[len] = '\0';
    while (len > 0 && strchr(" \t\r\n;", buf[len - 1]))
        buf[--len] = '\0';
    return buf;
}

static PGconn *connect_db(void)
{
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "trivial-fcgi: %s", PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    PGresult *r = PQprepare(c, "ceiling", sql, 0, NULL);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        fprintf(stderr, "trivial-fcgi: prepare: %s", PQerrorMessage(c));
        PQclear(r);
        PQfinish(c);
        return NULL;
    }
    PQclear(r);
    return c;
}

/* Runs the statement; 0 or -1. Reconnects once after a broken connection. */
static int run_sql(PGconn **c)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!*c)
            *c = connect_db();
        if (!*c)
            return -1;
        PGresult *r = PQexecPrepared(*c, "ceiling", 0, NULL, NULL, NULL, 0);
        ExecStatusType st = PQresultStatus(r);
        PQclear(r);
        if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
            return 0;
        fprintf(stderr, "trivial-fcgi: %s", PQerrorMessage(*c));
        if (PQstatus(*c) == CONNECTION_OK)
            return -1;
        PQfinish(*c);
        *c = NULL;
    }
    return -1;
}

static void *serve(void *arg)
{
    (void)arg;
    FCGX_Request req;
    PGconn *db = NULL;
    char buf[65536];
    if (FCGX_InitRequest(&req, 0, 0) != 0)
        return NULL;
    if (conninfo)
        db = connect_db();
    while (FCGX_Accept_r(&req) >= 0) {
        while (FCGX_GetStr(buf, sizeof buf, req.in) > 0)
            ; /* read and drop the body, as a real handler reads it */
        if (conninfo && run_sql(&db) < 0)
            FCGX_PutS("Status: 500\r\nContent-Type: application/json\r\n\r\n"
                      "{\"error\": \"ceiling statement failed\", \"details\": []}\n",
                      req.out);
        else
            FCGX_PutS("Status: 200\r\nContent-Type: application/json\r\n\r\n{\"ok\": true}\n",
                      req.out);
        FCGX_Finish_r(&req);
    }
    if (db)
        PQfinish(db);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 2 && argc != 4) {
        fprintf(stderr, "usage: trivial-fcgi THREADS [CONNINFO SQL_FILE]\n");
        return 2;
    }
    int n = atoi(argv[1]);
    if (n < 1 || n > 256) {
        fprintf(stderr, "trivial-fcgi: THREADS must be 1..256\n");
        return 2;
    }
    if (argc == 4) {
        conninfo = argv[2];
        sql = read_file(argv[3]);
    }
    /* Whatever mask the parent left: TERM must reach this process. */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (FCGX_Init() != 0) {
        fprintf(stderr, "trivial-fcgi: FCGX_Init failed\n");
        return 1;
    }
    /* libfcgi catches TERM (and USR1) to stop after the current request,
     * which never comes to a thread waiting in accept(). */
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    pthread_t *threads = calloc((size_t)n, sizeof *threads);
    if (!threads)
        abort();
    for (int i = 0; i < n; i++) {
        if (pthread_create(&threads[i], NULL, serve, NULL) != 0) {
            fprintf(stderr, "trivial-fcgi: could not start thread %d\n", i);
            return 1;
        }
    }
    for (int i = 0; i < n; i++)
        pthread_join(threads[i], NULL);
    return 0;
}

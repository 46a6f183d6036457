/*
 * call: one webhook call the worker is to make, as read from the database
 * (a row of tr_claim or tr_take_deliveries), and what became of it.
 *
 * Vocabulary: a *task* is what a client created; a *delivery* is one webhook
 * call for it (a row of the deliveries table); an *attempt* is one HTTP try.
 */
#ifndef TR_CALL_H
#define TR_CALL_H

#include <json-c/json.h>
#include <libpq-fe.h>
#include <stdbool.h>

#include "statuses.h"

struct call {
    long long delivery_id;
    char task_id[40];
    char batch_id[40];
    enum webhook_trigger trigger;
    char outcome[12];      /* task status reported by end and cancel calls, or "" */
    json_object *params;   /* the action's params (owned) */
    int attempts;          /* HTTP tries including this one */
    int task_attempt;      /* the task's start attempt of a start call (its callback
                              token is bound to it); 0 for end and cancel calls */
    char *idem_key;        /* Idempotency-Key (owned) */
    bool from_executor;    /* an action the executor registered (its on_start
                              answer), not one of the task's author */
    json_object *context;  /* what its placeholders read (tr_call_context), or
                              NULL when its params hold none (owned) */
};

/* Fills c from row i of res (columns of the tr_call type). Returns -1 when
 * the stored params are unreadable or the trigger unknown. */
int call_from_row(struct call *c, const PGresult *res, int i);
void call_cleanup(struct call *c);

#endif

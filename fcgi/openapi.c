/*
 * openapi: GET /openapi.json, the OpenAPI 3.1 document of the API
 * (docs/openapi.json, built into the responder by scripts/embed-file.cmake).
 */
#include <stddef.h>

#include "handlers.h"
#include "reply.h"

/* The document's bytes (generated openapi_doc.c). */
extern const char openapi_doc[];

void openapi_get(struct request *r, const char *unused)
{
    reply_json(r, 200, NULL, openapi_doc);
}

/*
 * jsontext: operations on JSON text that is already valid (as PostgreSQL or
 * json-c wrote it), without parsing it into objects.
 */
#ifndef TR_JSONTEXT_H
#define TR_JSONTEXT_H

#include <stddef.h>

/* Copies the valid JSON text src (len bytes) to dst without the whitespace
 * between tokens (PostgreSQL writes `{"a" : 1, "b" : 2}`), keeping strings
 * byte for byte. dst must hold len bytes; it may be src itself. Returns the
 * length written (dst is not NUL-terminated). */
size_t jsontext_compact(char *dst, const char *src, size_t len);

#endif

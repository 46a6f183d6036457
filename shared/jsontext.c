/*
 * jsontext: JSON text without parsing (see jsontext.h).
 */
#include "jsontext.h"

size_t jsontext_compact(char *dst, const char *src, size_t len)
{
    size_t n = 0;
    int in_string = 0, escaped = 0;
    for (size_t i = 0; i < len; i++) {
        char c = src[i];
        if (in_string) {
            if (escaped)
                escaped = 0;
            else if (c == '\\')
                escaped = 1;
            else if (c == '"')
                in_string = 0;
        } else if (c == '"') {
            in_string = 1;
        } else if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
            continue; /* between tokens: insignificant (RFC 8259, section 2) */
        }
        dst[n++] = c;
    }
    return n;
}

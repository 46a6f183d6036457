# Writes the bytes of file IN as a C array: OUT defines
#   const char <NAME>[]      (the bytes, then a NUL)
#   const size_t <NAME>_len  (how many bytes, the NUL left out)
# The responder serves docs/openapi.json this way (GET /openapi.json), so the
# document is always the one of the build and needs no file at run time.
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" hexlen)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "((0x[0-9a-f][0-9a-f],){16})" "\\1\n" bytes "${bytes}")
file(WRITE "${OUT}"
"/* Generated from ${IN} by scripts/embed-file.cmake: do not edit. */
#include <stddef.h>
extern const char ${NAME}[];
extern const size_t ${NAME}_len;
const char ${NAME}[] = {
${bytes}0};
const size_t ${NAME}_len = sizeof ${NAME} - 1;
")

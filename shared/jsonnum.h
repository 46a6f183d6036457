/*
 * jsonnum: the rule for the numbers of free-form JSON (metadata, webhook
 * bodies), checked on the number's text as the client wrote it.
 *
 * Such numbers are stored by PostgreSQL as jsonb, i.e. numeric: the decimal
 * value exactly as written, printed back in plain notation (1.5e3 comes back
 * as 1500, 5e-324 as 0.000…5). json-c reads integers as 64-bit integers and
 * other numbers as doubles. A number is accepted only when both ends keep it:
 *   - an integer (written without fraction or exponent, or one whose plain
 *     notation has none, such as 1e3) lies in the signed 64-bit range;
 *   - any other number is finite as a double and not so small that a double
 *     reads it as 0 (json-c would change it), its exponent is within ±1000
 *     and it has at most 16383 digits after the point (PostgreSQL numeric).
 * So what is stored is what was sent, and what a GET returns can be sent
 * again. See docs/API.md, "Numbers".
 */
#ifndef TR_JSONNUM_H
#define TR_JSONNUM_H

#include <stdbool.h>
#include <stddef.h>

/* Whether the len bytes of text are an integer literal (RFC 8259 number
 * without fraction or exponent). */
bool jsonnum_is_integer_literal(const char *text, size_t len);

/* NULL when the JSON number literal text (len bytes) can be stored as given
 * and read back; otherwise why not, as a phrase after "the number"
 * ("is an integer beyond the signed 64-bit range"). */
const char *jsonnum_problem(const char *text, size_t len);

#endif

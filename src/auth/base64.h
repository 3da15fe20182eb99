/* base64.h -- RFC 4648 base64 (standard alphabet, '=' padding), as used by
 * SASL (SMTP AUTH 334 lines, POP3 AUTH / IMAP AUTHENTICATE "+ " lines).
 *
 * Encoding always produces padded output.  Decoding is strict about the
 * form: the input length must be a multiple of 4, only A-Z a-z 0-9 + / are
 * accepted, '=' only as one or two final padding characters.  The unused
 * low bits of the last symbol are ignored (not required to be zero), as
 * the original decodes (RFC 4648 section 3.5).  Whitespace (including CR/LF) is an error:
 * the caller strips the line end first.  An empty input decodes to an
 * empty output (success).
 *
 * Memory: the output str is owned by the caller; it is REPLACED (not
 * appended to) by both functions.  Errors are values: 1 success, 0 invalid
 * input (decoder) or out of memory; the output is then undefined-but-valid
 * (a well-formed str, possibly truncated) and must not be used.
 * No I/O, no global state. */
#ifndef MF_BASE64_H
#define MF_BASE64_H

#include <mailfront/str.h>

/* Encode len bytes of data into out.  1 ok, 0 out of memory / too long. */
int base64_encode(const char* data, unsigned long len, str* out);

/* Decode len bytes of text into out (may contain NULs).  1 ok, 0 invalid
 * base64 or out of memory. */
int base64_decode(const char* text, unsigned long len, str* out);

#endif

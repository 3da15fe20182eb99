/* smtp.h -- internal interfaces of the SMTP protocol module.
 * address.c: parsers of command arguments (MAIL/RCPT, ESMTP parameters,
 * UTF-8, BDAT); body.c: the DATA and BDAT body decoder. */
#ifndef MF_SMTP_H
#define MF_SMTP_H
#include <mailfront/mailfront.h>

/* Parse the argument of MAIL/RCPT (protocols.md "Address argument
 * parsing").  addr gets the address, params the NUL-separated ESMTP
 * parameters.  Returns 0, or -1 for a syntax error (501). */
int smtp_parse_address(const char* arg, unsigned long len, str* addr, str* params);

/* UTF-8 check (RFC 3629) of s[0..len): 0 = all ASCII, 1 = valid UTF-8
 * with non-ASCII characters, -1 = invalid (overlong forms, surrogates,
 * code points beyond U+10FFFF, bytes C0, C1, F5..FF, truncated or stray
 * continuation bytes). */
int smtp_utf8_check(const char* s, unsigned long len);

/* Look up ESMTP parameter key (case-insensitive) in NUL-separated
 * KEY[=VALUE] items.  Returns 1 when present (*value = the text after '=',
 * or NULL for a bare keyword), else 0. */
int smtp_param_find(const str* params, const char* key, const char** value);

/* Parse the BDAT argument `1*DIGIT [ SP "LAST" ]` (blanks around the words
 * tolerated, LAST case-insensitive).  0 ok (*size, *last), -1 syntax error
 * (no digits, a sign, other text, or a size beyond 2^64-1). */
int smtp_parse_bdat(const char* arg, unsigned long len, unsigned long long* size, int* last);

/* The DATA body decoder.  Feed it raw bytes; it emits decoded data (LF line
 * ends, dots unstuffed) in blocks of at most SMTP_BLOCK bytes through emit.
 * strict = the session speaks CRLF: only CRLF.CRLF ends the body, and bare
 * CR or LF is counted in `bare` (normalize = 1 turns each into a line
 * end).  Otherwise the original's LF-tolerant algorithm applies. */
#define SMTP_BLOCK 4096
struct smtp_body
{
  int strict, normalize;
  int chunked;                 /* BDAT: no dot handling, never an end line */
  int cr, period, atcrlf;
  unsigned long pos;
  unsigned long long bare;
  unsigned long long total;    /* decoded bytes emitted */
  char out[SMTP_BLOCK];
  unsigned outlen;
  void (*emit)(void* ctx, const char* bytes, unsigned len);
  void* ctx;
};
void smtp_body_start(struct smtp_body* b, int strict, int normalize,
                     void (*emit)(void*, const char*, unsigned), void* ctx);
/* Consume bytes from in[0..len): returns 1 when the end-of-data line was
 * found (then *used is how many bytes belonged to the body), else 0 with
 * *used = len. */
int smtp_body_feed(struct smtp_body* b, const char* in, unsigned long len, unsigned long* used);
/* Emit whatever is buffered. */
void smtp_body_flush(struct smtp_body* b);
/* BDAT: the body decoder in chunk mode (strict CRLF handling: CRLF becomes
 * LF, bare CR/LF counted as in strict DATA; a "." is an ordinary byte and
 * smtp_body_feed never finds an end).  The state carries across chunks. */
void smtp_body_start_chunked(struct smtp_body* b, int normalize,
                             void (*emit)(void*, const char*, unsigned), void* ctx);
/* BDAT LAST: a CR held at the very end is a bare CR; then flush. */
void smtp_body_finish(struct smtp_body* b);
#endif

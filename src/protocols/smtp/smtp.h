/* smtp.h -- internal interfaces of the SMTP protocol module.
 * address.c: MAIL/RCPT argument parsing; body.c: the DATA decoder. */
#ifndef MF_SMTP_H
#define MF_SMTP_H
#include <mailfront/mailfront.h>

/* Parse the argument of MAIL/RCPT (protocols.md "Address argument
 * parsing").  addr gets the address, params the NUL-separated ESMTP
 * parameters.  Returns 0, or -1 for a syntax error (501). */
int smtp_parse_address(const char* arg, unsigned long len, str* addr, str* params);

/* The DATA body decoder.  Feed it raw bytes; it emits decoded data (LF line
 * ends, dots unstuffed) in blocks of at most SMTP_BLOCK bytes through emit.
 * strict = the session speaks CRLF: only CRLF.CRLF ends the body, and bare
 * CR or LF is counted in `bare` (normalize = 1 turns each into a line
 * end).  Otherwise the original's LF-tolerant algorithm applies. */
#define SMTP_BLOCK 4096
struct smtp_body
{
  int strict, normalize;
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
#endif

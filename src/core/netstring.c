/* netstring.c -- netstring readers for QMQP/QMTP: `LEN:DATA,`.
 * get_netstring_len reads LEN and the colon; get_netstring the whole
 * netstring into a str (callers bound LEN first when it can be large).
 * Returns 1 ok, 0 format error, -1 end of input or read error.  LEN is
 * limited to 20 digits with an overflow check. */
#include <mailfront/mailfront.h>

int get_netstring_len(ibuf* in, unsigned long* out)
{
  unsigned long n = 0;
  int digits = 0;
  char c;
  for (;;) {
    int r = ibuf_getc(in, &c);
    if (r <= 0) return -1;
    if (c == ':') break;
    if (c < '0' || c > '9') return 0;
    unsigned long d = (unsigned long)(c - '0');
    if (n > (~0ul - d) / 10 || ++digits > 20) return 0;
    n = n * 10 + d;
  }
  if (digits == 0) return 0;
  *out = n;
  return 1;
}

int get_netstring(ibuf* in, str* s)
{
  unsigned long n;
  char c;
  int r = get_netstring_len(in, &n);
  if (r <= 0) return r;
  if (n > STR_MAX || !str_ready(s, (unsigned)n)) return 0;
  if (ibuf_read(in, s->s, n) <= 0) return -1;
  s->len = (unsigned)n;
  s->s[n] = 0;
  r = ibuf_getc(in, &c);
  if (r <= 0) return -1;
  return c == ',';
}

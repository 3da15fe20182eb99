/* netstring.c -- netstring readers for QMQP/QMTP: `LEN:DATA,`.
 * get_netstring_len reads LEN and the colon; get_netstring the whole
 * netstring into a str.  Returns 1 ok, 0 format error, -1 end of input or
 * read error.  LEN is limited to 20 digits with an overflow check.
 *
 * get_netstring is bounded (issue 10 item 13): a LEN above
 * $NETSTRING_MAX (default NETSTRING_MAX_DFLT bytes) is a format error, and
 * the string grows with the bytes that actually arrive (at most
 * NETSTRING_STEP at a time), never to the length a peer announces. */
#include <mailfront/mailfront.h>
#include <stdlib.h>

#define NETSTRING_MAX_DFLT (1ul << 20)
#define NETSTRING_STEP 65536ul

static unsigned long netstring_max(void)
{
  const char* v = getenv("NETSTRING_MAX");
  if (v == 0 || *v < '0' || *v > '9') return NETSTRING_MAX_DFLT;
  char* end;
  unsigned long n = strtoul(v, &end, 10);
  return (*end == 0 && n < STR_MAX) ? n : NETSTRING_MAX_DFLT;
}

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
  if (n > netstring_max() || n >= STR_MAX) return 0;
  s->len = 0;
  if (!str_ready(s, 0)) return 0;
  while (s->len < n) {
    unsigned long k = n - s->len;
    if (k > NETSTRING_STEP) k = NETSTRING_STEP;
    if (!str_ready(s, (unsigned)(s->len + k))) return 0;
    if (ibuf_read(in, s->s + s->len, k) <= 0) return -1;
    s->len += (unsigned)k;
  }
  s->s[n] = 0;
  r = ibuf_getc(in, &c);
  if (r <= 0) return -1;
  return c == ',';
}

/* proxy_parse.c -- unit and fuzz tests of the PROXY protocol parser
 * (src/daemon/proxy.c): valid v1/v2 headers of every family, every prefix
 * of a valid header is "more", malformed headers are refused with a
 * reason, and random mutations never read out of bounds (run under ASan)
 * and never claim more than the v1 limit. */
#include "tap.h"
#include "daemon/proxy.c"
#include <stdlib.h>

static enum proxy_status P(const char* s, size_t n, unsigned v, struct proxy_result* r)
{
  const char* why;
  /* a heap copy of exactly n bytes: ASan sees any read past the end */
  unsigned char* b = malloc(n ? n : 1);
  memcpy(b, s, n);
  enum proxy_status st = proxy_parse(b, n, v, r, &why);
  free(b);
  if (st == PROXY_BAD && !why) return 99;   /* a refusal always has a reason */
  return st;
}
#define PS(lit, v, r) P((lit), sizeof(lit) - 1, (v), (r))

static const char* ip_of(const struct sockaddr_storage* ss, char* buf, unsigned* port)
{
  if (ss->ss_family == AF_INET) {
    const struct sockaddr_in* s = (const void*)ss;
    *port = ntohs(s->sin_port);
    return inet_ntop(AF_INET, &s->sin_addr, buf, INET6_ADDRSTRLEN);
  }
  const struct sockaddr_in6* s = (const void*)ss;
  *port = ntohs(s->sin6_port);
  return inet_ntop(AF_INET6, &s->sin6_addr, buf, INET6_ADDRSTRLEN);
}

static int addr_is(const struct sockaddr_storage* ss, const char* ip, unsigned port)
{
  char buf[INET6_ADDRSTRLEN];
  unsigned p;
  const char* t = ip_of(ss, buf, &p);
  return t && strcmp(t, ip) == 0 && p == port;
}

static void v1_cases(void)
{
  struct proxy_result r;
  static const char h4[] = "PROXY TCP4 192.0.2.7 198.51.100.1 56324 25\r\nEHLO x\r\n";
  CHECK(PS(h4, PROXY_ACCEPT_V1, &r) == PROXY_DONE, "v1 TCP4 parses");
  CHECK(r.version == 1 && !r.local && r.header_len == 44, "v1 TCP4 header length");
  CHECK(addr_is(&r.src, "192.0.2.7", 56324) && addr_is(&r.dst, "198.51.100.1", 25), "v1 TCP4 addresses");
  CHECK(PS(h4, PROXY_ACCEPT_ANY, &r) == PROXY_DONE, "v1 accepted by any");
  CHECK(PS(h4, PROXY_ACCEPT_V2, &r) == PROXY_BAD, "v1 refused when only v2 is accepted");

  CHECK(PS("PROXY TCP6 2001:db8::1 ::1 1 65535\r\n", PROXY_ACCEPT_V1, &r) == PROXY_DONE
        && addr_is(&r.src, "2001:db8::1", 1) && addr_is(&r.dst, "::1", 65535), "v1 TCP6");
  CHECK(PS("PROXY UNKNOWN\r\n", PROXY_ACCEPT_V1, &r) == PROXY_DONE && r.local && r.header_len == 15,
        "v1 UNKNOWN is local");
  CHECK(PS("PROXY UNKNOWN ffff::1 ::1 1 2\r\n", PROXY_ACCEPT_V1, &r) == PROXY_DONE && r.local,
        "v1 UNKNOWN with addresses ignores them");

  for (size_t n = 0; n < 44; n++)
    if (P(h4, n, PROXY_ACCEPT_ANY, &r) != PROXY_MORE) { CHECK(0, "v1 prefix is more"); return; }
  CHECK(1, "every v1 prefix asks for more");

  static const char* const badv1[] = {
    "PROXY TCP4 192.0.2.7 198.51.100.1 56324 25\n",           /* no CR */
    "PROXY TCP4 192.0.2.7 198.51.100.1 56324\r\n",            /* field missing */
    "PROXY TCP4 192.0.2.7 198.51.100.1 56324 25 9\r\n",       /* extra field */
    "PROXY TCP4 192.0.2.7  198.51.100.1 56324 25\r\n",        /* double space */
    "PROXY TCP4 192.0.2.7 198.51.100.1 56324 25 \r\n",        /* trailing space */
    "PROXY TCP4 2001:db8::1 198.51.100.1 1 2\r\n",            /* v6 in TCP4 */
    "PROXY TCP6 192.0.2.7 ::1 1 2\r\n",                       /* v4 in TCP6 */
    "PROXY TCP4 192.0.2.700 198.51.100.1 1 2\r\n",
    "PROXY TCP4 192.0.2.7 198.51.100.1 65536 2\r\n",          /* port range */
    "PROXY TCP4 192.0.2.7 198.51.100.1 012 2\r\n",            /* leading zero */
    "PROXY TCP4 192.0.2.7 198.51.100.1 -1 2\r\n",
    "PROXY UDP4 192.0.2.7 198.51.100.1 1 2\r\n",
    "PROXY \r\n",
    "PROXY\r\n",
    "proxy TCP4 192.0.2.7 198.51.100.1 1 2\r\n",
    "EHLO client.example\r\n",
    "PROXY TCP4 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa 198.51.100.1 1 2\r\n",
  };
  int all = 1;
  for (size_t i = 0; i < sizeof badv1 / sizeof badv1[0]; i++)
    if (P(badv1[i], strlen(badv1[i]), PROXY_ACCEPT_ANY, &r) != PROXY_BAD) {
      printf("# accepted: %s", badv1[i]);
      all = 0;
    }
  CHECK(all, "malformed v1 headers are refused");
  CHECK(P("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\0\r\n", 33, PROXY_ACCEPT_V1, &r) == PROXY_BAD, "v1 NUL refused");

  char longline[200];
  memset(longline, 'x', sizeof longline);
  memcpy(longline, "PROXY TCP4 ", 11);
  CHECK(P(longline, 106, PROXY_ACCEPT_V1, &r) == PROXY_MORE, "106 bytes without LF: more");
  CHECK(P(longline, 107, PROXY_ACCEPT_V1, &r) == PROXY_BAD, "107 bytes without LF: too long");
  CHECK(P(longline, 200, PROXY_ACCEPT_V1, &r) == PROXY_BAD, "200 bytes without LF: too long");
}

static size_t v2(unsigned char* b, unsigned vercmd, unsigned fam, const unsigned char* addr,
                 size_t alen, size_t tlvs)
{
  memcpy(b, v2sig, 12);
  b[12] = (unsigned char)vercmd;
  b[13] = (unsigned char)fam;
  b[14] = (unsigned char)((alen + tlvs) >> 8);
  b[15] = (unsigned char)((alen + tlvs) & 0xff);
  memcpy(b + 16, addr, alen);
  memset(b + 16 + alen, 0xee, tlvs);
  return 16 + alen + tlvs;
}

static void v2_cases(void)
{
  struct proxy_result r;
  unsigned char b[600];
  const unsigned char a4[12] = { 192, 0, 2, 7, 198, 51, 100, 1, 0xdc, 0x04, 0, 25 };
  size_t n = v2(b, 0x21, 0x11, a4, 12, 0);
  CHECK(P((char*)b, n, PROXY_ACCEPT_V2, &r) == PROXY_DONE && r.version == 2 && !r.local
        && r.header_len == 28, "v2 TCP4 parses");
  CHECK(addr_is(&r.src, "192.0.2.7", 56324) && addr_is(&r.dst, "198.51.100.1", 25), "v2 TCP4 addresses");
  CHECK(P((char*)b, n, PROXY_ACCEPT_V1, &r) == PROXY_BAD, "v2 refused when only v1 is accepted");
  int more = 1;
  for (size_t i = 0; i < n; i++)
    if (P((char*)b, i, PROXY_ACCEPT_ANY, &r) != PROXY_MORE) more = 0;
  CHECK(more, "every v2 prefix asks for more");

  (void)v2(b, 0x21, 0x11, a4, 12, 300);   /* only the first 28 bytes are given */
  CHECK(P((char*)b, 28, PROXY_ACCEPT_V2, &r) == PROXY_DONE && r.header_len == 328,
        "v2 with TLVs: done once the addresses are in, length counts the TLVs");

  unsigned char a6[36] = { 0x20, 0x01, 0x0d, 0xb8 };
  a6[15] = 1; a6[31] = 1; a6[32] = 0x01; a6[33] = 0x00; a6[35] = 25;
  n = v2(b, 0x21, 0x21, a6, 36, 0);
  CHECK(P((char*)b, n, PROXY_ACCEPT_ANY, &r) == PROXY_DONE && addr_is(&r.src, "2001:db8::1", 256)
        && addr_is(&r.dst, "::1", 25), "v2 TCP6");

  n = v2(b, 0x20, 0x00, a4, 0, 0);
  CHECK(P((char*)b, n, PROXY_ACCEPT_V2, &r) == PROXY_DONE && r.local && r.header_len == 16, "v2 LOCAL");
  n = v2(b, 0x20, 0x11, a4, 12, 0);
  CHECK(P((char*)b, n, PROXY_ACCEPT_V2, &r) == PROXY_DONE && r.local, "v2 LOCAL ignores addresses");
  n = v2(b, 0x21, 0x00, a4, 0, 0);
  CHECK(P((char*)b, n, PROXY_ACCEPT_V2, &r) == PROXY_DONE && r.local, "v2 UNSPEC is local");
  n = v2(b, 0x21, 0x12, a4, 12, 0);
  CHECK(P((char*)b, n, PROXY_ACCEPT_V2, &r) == PROXY_DONE && r.local, "v2 UDP uses real endpoints");
  unsigned char au[216] = { 0 };
  n = v2(b, 0x21, 0x31, au, 216, 0);
  CHECK(P((char*)b, n, PROXY_ACCEPT_V2, &r) == PROXY_DONE && r.local, "v2 UNIX is local");

  n = v2(b, 0x31, 0x11, a4, 12, 0);
  CHECK(P((char*)b, n, PROXY_ACCEPT_V2, &r) == PROXY_BAD, "v2 version 3 refused");
  n = v2(b, 0x22, 0x11, a4, 12, 0);
  CHECK(P((char*)b, n, PROXY_ACCEPT_V2, &r) == PROXY_BAD, "v2 command 2 refused");
  n = v2(b, 0x21, 0x11, a4, 11, 0);
  CHECK(P((char*)b, n, PROXY_ACCEPT_V2, &r) == PROXY_BAD, "v2 short TCP4 block refused");
  n = v2(b, 0x21, 0x21, a6, 35, 0);
  CHECK(P((char*)b, n, PROXY_ACCEPT_V2, &r) == PROXY_BAD, "v2 short TCP6 block refused");
  n = v2(b, 0x21, 0x41, a4, 12, 0);
  CHECK(P((char*)b, n, PROXY_ACCEPT_V2, &r) == PROXY_BAD, "v2 family 4 refused");
  n = v2(b, 0x21, 0x11, a4, 12, 0);
  b[5] ^= 1;
  CHECK(P((char*)b, n, PROXY_ACCEPT_V2, &r) == PROXY_BAD, "v2 bad signature refused");
  CHECK(P("\r\nQUIT\r\n", 8, PROXY_ACCEPT_ANY, &r) == PROXY_BAD, "CRLF then text refused");
  CHECK(P("", 0, PROXY_ACCEPT_ANY, &r) == PROXY_MORE, "nothing yet: more");
  CHECK(proxy_versions("v1") == 1 && proxy_versions("v2") == 2 && proxy_versions("any") == 3
        && proxy_versions("v3") == 0 && proxy_versions(0) == 0, "version names");
}

static void fuzz(void)
{
  static const char* const seeds[] = {
    "PROXY TCP4 192.0.2.7 198.51.100.1 56324 25\r\n",
    "PROXY TCP6 2001:db8::1 ::1 1 65535\r\n",
    "PROXY UNKNOWN\r\n",
    "\r\n\r\n\0\r\nQUIT\n\x21\x11\0\x0c\xc0\0\2\7\xc6\x33\x64\1\xdc\4\0\x19",
    "\r\n\r\n\0\r\nQUIT\n\x21\x21\0\x24" "0123456789abcdef0123456789abcdef0123",
  };
  static const size_t seedlen[] = { 44, 36, 15, 28, 52 };
  unsigned seed = 12345;
  int ok = 1;
  for (int it = 0; it < 200000; it++) {
    size_t k = (size_t)it % 5;
    unsigned char b[300];
    size_t n = seedlen[k];
    memcpy(b, seeds[k], n);
    for (int m = 0; m < 3; m++) {
      seed = seed * 1103515245u + 12345u;
      unsigned pos = (seed >> 8) % (unsigned)n;
      seed = seed * 1103515245u + 12345u;
      switch ((seed >> 16) % 4) {
        case 0: b[pos] = (unsigned char)(seed >> 3); break;
        case 1: if (n > 1) n--; break;
        case 2: if (n < sizeof b) b[n++] = (unsigned char)(seed >> 5); break;
        case 3: b[pos] = (unsigned char)" 0123456789.:\r\n"[(seed >> 7) % 15]; break;
      }
    }
    struct proxy_result r;
    enum proxy_status st = P((char*)b, n, PROXY_ACCEPT_ANY, &r);
    if (st == 99) ok = 0;
    if (st == PROXY_DONE && r.version == 1 && (r.header_len > n || r.header_len > PROXY_V1_MAX)) ok = 0;
    if (st == PROXY_DONE && r.version == 2 && r.header_len < 16) ok = 0;
    if (st == PROXY_DONE && !r.local && r.src.ss_family != AF_INET && r.src.ss_family != AF_INET6) ok = 0;
  }
  CHECK(ok, "200000 mutated headers: every refusal has a reason, lengths within bounds");
}

int main(void)
{
  v1_cases();
  v2_cases();
  fuzz();
  return done();
}

/* Unit tests of rbl's resolver settings and TXT answer decoding. */
#include "../../src/plugins/rbl/dnstxt.c"
#include "tap.h"

/* A DNS answer: header, question, then the given answer RRs (raw). */
static int message(unsigned char* m, const unsigned char* rrs, int rrlen, int ancount)
{
  static const unsigned char hdr[12] = { 0x12, 0x34, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0 };
  static const unsigned char q[] = { 1, 'x', 4, 't', 'e', 's', 't', 0, 0, 16, 0, 1 };
  memcpy(m, hdr, 12);
  m[7] = (unsigned char)ancount;
  memcpy(m + 12, q, sizeof q);
  memcpy(m + 12 + sizeof q, rrs, (size_t)rrlen);
  return 12 + (int)sizeof q + rrlen;
}

int main(void)
{
  unsigned char m[512];
  str out = { 0, 0, 0 }, err = { 0, 0, 0 };
  /* name ptr to offset 12, TXT IN, ttl, rdlen, rdata */
  const unsigned char rr1[] = { 0xc0, 12, 0, 16, 0, 1, 0, 0, 0, 60, 0, 9, 3, 'a', 'b', 'c', 4, 'd', '\n', 0x80, 'e' };
  int n = message(m, rr1, sizeof rr1, 1);
  CHECK(dnstxt_parse(m, n, &out) == 1, "one TXT record");
  CHECK_MEM(out.s, out.len, "abcd??e", "strings concatenated, unprintables replaced");

  unsigned char two[64];
  memcpy(two, rr1, sizeof rr1);
  const unsigned char rr2[] = { 0xc0, 12, 0, 16, 0, 1, 0, 0, 0, 60, 0, 3, 2, 'z', 'z' };
  memcpy(two + sizeof rr1, rr2, sizeof rr2);
  n = message(m, two, (int)(sizeof rr1 + sizeof rr2), 2);
  CHECK(dnstxt_parse(m, n, &out) == 2, "two TXT records");
  CHECK_MEM(out.s, out.len, "abcd??e\0zz", "records separated by NUL");

  /* issue 10 item 9: every record empty (TXT ""): a string, not NULL */
  str fresh = { 0, 0, 0 };
  const unsigned char empty[] = { 0xc0, 12, 0, 16, 0, 1, 0, 0, 0, 60, 0, 1, 0 };
  n = message(m, empty, sizeof empty, 1);
  CHECK(dnstxt_parse(m, n, &fresh) == 1 && fresh.s != 0 && fresh.len == 0 && fresh.s[0] == 0,
        "one empty TXT record: empty C string");
  str_free(&fresh);
  const unsigned char empty0[] = { 0xc0, 12, 0, 16, 0, 1, 0, 0, 0, 60, 0, 0 };
  n = message(m, empty0, sizeof empty0, 1);
  CHECK(dnstxt_parse(m, n, &fresh) == 1 && fresh.s != 0 && fresh.len == 0, "TXT record without strings: empty C string");
  str_free(&fresh);

  const unsigned char bad[] = { 0xc0, 12, 0, 16, 0, 1, 0, 0, 0, 60, 0, 3, 9, 'z', 'z' };
  n = message(m, bad, sizeof bad, 1);
  CHECK(dnstxt_parse(m, n, &out) == -1, "string longer than rdata rejected");
  n = message(m, rr1, sizeof rr1 - 5, 1);
  CHECK(dnstxt_parse(m, n, &out) == -1, "truncated message rejected");
  const unsigned char a[] = { 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 2 };
  n = message(m, a, sizeof a, 1);
  CHECK(dnstxt_parse(m, n, &out) == 0, "A records ignored");

  /* random mutations of a valid answer: never a crash or overrun (ASan) */
  unsigned seed = 12345;
  for (int round = 0; round < 20000; round++) {
    n = message(m, two, (int)(sizeof rr1 + sizeof rr2), 2);
    for (int k = 0; k < 3; k++) {
      seed = seed * 1103515245u + 12345u;
      m[(seed >> 8) % (unsigned)n] = (unsigned char)(seed >> 20);
    }
    seed = seed * 1103515245u + 12345u;
    int cut = n - (int)((seed >> 8) % 8u);
    int r = dnstxt_parse(m, cut, &out);
    if (r < -1 || r > 255) { CHECK(0, "fuzzed answer: result in range"); break; }
  }
  CHECK(1, "20000 mutated answers parsed without a fault");

  struct dnstxt_conf c;
  CHECK(dnstxt_configure(&c, "127.0.0.1", 0, 0, &err) == 0 && c.nservers == 1 && c.timeout == 10, "one server, default timeout");
  CHECK(ntohs(c.servers[0].sin_port) == 53, "default port 53");
  CHECK(dnstxt_configure(&c, "10.0.0.1, 10.0.0.2 10.0.0.3 10.0.0.4", "5353", 3, &err) == 0 && c.nservers == 3, "list capped at 3");
  CHECK(ntohs(c.servers[2].sin_port) == 5353 && c.timeout == 3, "port and timeout");
  CHECK(dnstxt_configure(&c, 0, 0, 0, &err) == 0 && c.nservers == 0, "unset: resolv.conf");
  CHECK(dnstxt_configure(&c, "1.2.3", 0, 0, &err) == -1, "bad address rejected");
  CHECK(dnstxt_configure(&c, "", 0, 0, &err) == -1, "empty address rejected");
  CHECK(dnstxt_configure(&c, "127.0.0.1", "0", 0, &err) == -1, "port 0 rejected");
  CHECK(dnstxt_configure(&c, "127.0.0.1", "70000", 0, &err) == -1, "port too large rejected");
  CHECK(dnstxt_configure(&c, "127.0.0.1", "-5", 0, &err) == -1, "negative port rejected");
  str_free(&out);
  str_free(&err);
  return done();
}

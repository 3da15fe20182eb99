/* rdns_qname.c -- unit tests of mailfrontd's reverse names
 * (src/daemon/rdns.c): IPv4, IPv4-mapped IPv6, IPv6 nibbles, another
 * family; and the PTR answer decoding with a hand-made DNS message
 * (first PTR taken, names with odd bytes refused, a short output). */
#include "tap.h"
#include "daemon/rdns.c"
#include "plugins/rbl/dnstxt.c"
#include <arpa/inet.h>

static const char* qname(int family, const char* text)
{
  static char out[RDNS_QNAME_MAX];
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  ss.ss_family = (sa_family_t)family;
  if (family == AF_INET) inet_pton(AF_INET, text, &((struct sockaddr_in*)&ss)->sin_addr);
  if (family == AF_INET6) inet_pton(AF_INET6, text, &((struct sockaddr_in6*)&ss)->sin6_addr);
  return rdns_qname(&ss, out) < 0 ? "(none)" : out;
}

/* A response with one question and the given PTR answers (names as DNS labels). */
static int answer(unsigned char* m, const char* const* names, int n)
{
  static const unsigned char head[] = { 0x12, 0x34, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0 };
  static const unsigned char q[] = { 1, '1', 1, '0', 1, '0', 3, '1', '2', '7', 7, 'i', 'n', '-', 'a', 'd', 'd', 'r',
                                     4, 'a', 'r', 'p', 'a', 0, 0, 12, 0, 1 };
  int len = 0;
  memcpy(m, head, sizeof head);
  m[7] = (unsigned char)n;
  len += sizeof head;
  memcpy(m + len, q, sizeof q);
  len += sizeof q;
  for (int i = 0; i < n; i++) {
    static const unsigned char rr[] = { 0xc0, 12, 0, 12, 0, 1, 0, 0, 0, 60 };
    memcpy(m + len, rr, sizeof rr);
    len += sizeof rr;
    int rd = len;
    len += 2;
    const char* p = names[i];
    while (*p) {
      size_t l = strcspn(p, ".");
      m[len++] = (unsigned char)l;
      memcpy(m + len, p, l);
      len += (int)l;
      p += l + (p[l] == '.');
    }
    m[len++] = 0;
    m[rd] = (unsigned char)((len - rd - 2) >> 8);
    m[rd + 1] = (unsigned char)(len - rd - 2);
  }
  return len;
}

int main(void)
{
  CHECK(strcmp(qname(AF_INET, "192.0.2.7"), "7.2.0.192.in-addr.arpa") == 0, "IPv4");
  CHECK(strcmp(qname(AF_INET6, "::ffff:10.1.2.3"), "3.2.1.10.in-addr.arpa") == 0, "IPv4-mapped IPv6 is IPv4");
  CHECK(strcmp(qname(AF_INET6, "2001:db8::567:89ab"),
         "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa") == 0, "IPv6 nibbles");
  CHECK(strcmp(qname(AF_UNIX, ""), "(none)") == 0, "another family has no name");

  unsigned char m[1024];
  char out[64];
  static const char* const two[] = { "mx.example.org", "other.example" };
  int len = answer(m, two, 2);
  CHECK(first_ptr(m, len, out, sizeof out) == 1 && strcmp(out, "mx.example.org") == 0, "first PTR taken");
  static const char* const odd[] = { "bad name.example" };
  len = answer(m, odd, 1);
  CHECK(first_ptr(m, len, out, sizeof out) == 0, "a name with a space is not used");
  len = answer(m, two, 1);
  CHECK(first_ptr(m, len, out, 5) == 0, "a name longer than the output is not used");
  CHECK(first_ptr(m, 10, out, sizeof out) == -1, "a truncated message is malformed");
  len = answer(m, two, 0);
  CHECK(first_ptr(m, len, out, sizeof out) == 0, "no answer: no name");
  return done();
}

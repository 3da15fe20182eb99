/* addr_text.c -- unit tests of mailfrontd's address text (src/daemon/addr.c):
 * the hand-made dotted quad equals inet_ntop's for edge and many other
 * IPv4 addresses, IPv4-mapped IPv6 is shown as IPv4, IPv6 as inet_ntop. */
#include "tap.h"
#include "daemon/addr.c"
#include <stdio.h>

static void v4(struct sockaddr_storage* ss, uint32_t a)
{
  memset(ss, 0, sizeof *ss);
  ss->ss_family = AF_INET;
  ((struct sockaddr_in*)ss)->sin_addr.s_addr = htonl(a);
}

int main(void)
{
  struct sockaddr_storage ss;
  char out[ADDR_IP_MAX], ref[ADDR_IP_MAX];
  static const uint32_t edges[] = { 0, 0xffffffffu, 0x0a006409u, 0x01142d2du, 0x7f000001u, 0x64646464u, 0x09090909u };
  int same = 1;
  for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) {
    v4(&ss, edges[i]);
    addr_ip(&ss, out);
    inet_ntop(AF_INET, &((struct sockaddr_in*)&ss)->sin_addr, ref, sizeof ref);
    if (strcmp(out, ref) != 0) { same = 0; printf("# %s != %s\n", out, ref); }
  }
  CHECK(same, "edge IPv4 addresses as inet_ntop writes them");
  same = 1;
  uint32_t x = 2463534242u;
  for (int i = 0; i < 100000; i++) {
    x ^= x << 13; x ^= x >> 17; x ^= x << 5;
    v4(&ss, x);
    addr_ip(&ss, out);
    inet_ntop(AF_INET, &((struct sockaddr_in*)&ss)->sin_addr, ref, sizeof ref);
    if (strcmp(out, ref) != 0) { same = 0; printf("# %s != %s\n", out, ref); break; }
  }
  CHECK(same, "100,000 pseudo-random IPv4 addresses as inet_ntop writes them");
  memset(&ss, 0, sizeof ss);
  ss.ss_family = AF_INET6;
  inet_pton(AF_INET6, "::ffff:192.0.2.200", &((struct sockaddr_in6*)&ss)->sin6_addr);
  addr_ip(&ss, out);
  CHECK(strcmp(out, "192.0.2.200") == 0, "IPv4-mapped IPv6 as IPv4");
  inet_pton(AF_INET6, "2001:db8::7", &((struct sockaddr_in6*)&ss)->sin6_addr);
  addr_ip(&ss, out);
  CHECK(strcmp(out, "2001:db8::7") == 0, "IPv6");
  ss.ss_family = AF_UNIX;
  addr_ip(&ss, out);
  CHECK(out[0] == 0, "another family: empty");
  return done();
}

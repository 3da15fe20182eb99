/* addr.c -- see addr.h. */
#include "daemon/addr.h"
#include <arpa/inet.h>
#include <string.h>

static int v4mapped(const struct sockaddr_storage* ss)
{
  return ss->ss_family == AF_INET6
    && IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6*)ss)->sin6_addr);
}

/* Dotted quad by hand: inet_ntop formats it with sprintf, whose code and
 * stack frames a forked child would otherwise fault in for every
 * connection (docs/mailfrontd.md "Performance"). */
static void dotted_quad(const unsigned char* a, char out[ADDR_IP_MAX])
{
  char* o = out;
  for (int i = 0; i < 4; i++) {
    unsigned v = a[i];
    if (v >= 100) *o++ = (char)('0' + v / 100);
    if (v >= 10) *o++ = (char)('0' + v / 10 % 10);
    *o++ = (char)('0' + v % 10);
    *o++ = i < 3 ? '.' : 0;
  }
}

void addr_ip(const struct sockaddr_storage* ss, char out[ADDR_IP_MAX])
{
  out[0] = 0;
  if (ss->ss_family == AF_INET) {
    dotted_quad((const unsigned char*)&((const struct sockaddr_in*)ss)->sin_addr, out);
  } else if (v4mapped(ss)) {
    dotted_quad(((const struct sockaddr_in6*)ss)->sin6_addr.s6_addr + 12, out);
  } else if (ss->ss_family == AF_INET6) {
    if (!inet_ntop(AF_INET6, &((const struct sockaddr_in6*)ss)->sin6_addr, out, ADDR_IP_MAX)) out[0] = 0;
  }
}

unsigned addr_port(const struct sockaddr_storage* ss)
{
  if (ss->ss_family == AF_INET) return ntohs(((const struct sockaddr_in*)ss)->sin_port);
  if (ss->ss_family == AF_INET6) return ntohs(((const struct sockaddr_in6*)ss)->sin6_port);
  return 0;
}

static void keep_bits(unsigned char* b, unsigned n, unsigned bits)
{
  for (unsigned i = 0; i < n; i++) {
    unsigned have = bits > i * 8 ? bits - i * 8 : 0;
    if (have >= 8) continue;
    b[i] &= (unsigned char)(0xff00u >> have);
  }
}

void addr_key(const struct sockaddr_storage* ss, unsigned v4bits, unsigned v6bits, struct addr_key* k)
{
  memset(k, 0, sizeof *k);
  if (ss->ss_family == AF_INET || v4mapped(ss)) {
    k->family = 4;
    if (ss->ss_family == AF_INET) memcpy(k->b, &((const struct sockaddr_in*)ss)->sin_addr, 4);
    else memcpy(k->b, ((const struct sockaddr_in6*)ss)->sin6_addr.s6_addr + 12, 4);
    keep_bits(k->b, 4, v4bits);
  } else if (ss->ss_family == AF_INET6) {
    k->family = 6;
    memcpy(k->b, &((const struct sockaddr_in6*)ss)->sin6_addr, 16);
    keep_bits(k->b, 16, v6bits);
  }
}

int addr_key_equal(const struct addr_key* a, const struct addr_key* b)
{
  return a->family == b->family && memcmp(a->b, b->b, sizeof a->b) == 0;
}

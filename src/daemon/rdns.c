/* rdns.c -- bounded PTR lookups for mailfrontd -h (contract in rdns.h). */
#include "daemon/rdns.h"
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int rdns_configure(struct dnstxt_conf* c, unsigned long timeout_s, str* err)
{
  return dnstxt_configure(c, getenv("DNSCACHEIP"), getenv("DNSCACHEPORT"), timeout_s, err);
}

int rdns_qname(const struct sockaddr_storage* ss, char out[RDNS_QNAME_MAX])
{
  static const char hex[] = "0123456789abcdef";
  const unsigned char* b;
  if (ss->ss_family == AF_INET6) {
    const struct in6_addr* a = &((const struct sockaddr_in6*)ss)->sin6_addr;
    if (!IN6_IS_ADDR_V4MAPPED(a)) {
      char* o = out;
      for (int i = 15; i >= 0; i--) {
        *o++ = hex[a->s6_addr[i] & 15]; *o++ = '.';
        *o++ = hex[a->s6_addr[i] >> 4]; *o++ = '.';
      }
      memcpy(o, "ip6.arpa", sizeof "ip6.arpa");
      return 0;
    }
    b = a->s6_addr + 12;
  } else if (ss->ss_family == AF_INET) {
    b = (const unsigned char*)&((const struct sockaddr_in*)ss)->sin_addr;
  } else {
    return -1;
  }
  snprintf(out, RDNS_QNAME_MAX, "%u.%u.%u.%u.in-addr.arpa", b[3], b[2], b[1], b[0]);
  return 0;
}

static int usable(const char* name)
{
  if (!*name) return 0;
  for (const char* p = name; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')
          || *p == '-' || *p == '_' || *p == '.'))
      return 0;
  return 1;
}

/* The first PTR of answer msg[0..len) into out: 1, 0 none, -1 malformed. */
static int first_ptr(const unsigned char* msg, int len, char* out, size_t outlen)
{
  ns_msg h;
  if (ns_initparse(msg, len, &h) < 0) return -1;
  for (int i = 0; i < ns_msg_count(h, ns_s_an); i++) {
    ns_rr rr;
    if (ns_parserr(&h, ns_s_an, i, &rr) < 0) return -1;
    if (ns_rr_type(rr) != ns_t_ptr || ns_rr_class(rr) != ns_c_in) continue;
    char name[NS_MAXDNAME];
    if (ns_name_uncompress(ns_msg_base(h), ns_msg_end(h), ns_rr_rdata(rr), name, sizeof name) < 0) return -1;
    size_t n = strlen(name);
    if (n >= outlen || !usable(name)) return 0;
    memcpy(out, name, n + 1);
    return 1;
  }
  return 0;
}

int rdns_name(const struct dnstxt_conf* c, const struct sockaddr_storage* ss, char* out, size_t outlen)
{
  char q[RDNS_QNAME_MAX];
  if (rdns_qname(ss, q) < 0) return 0;
  struct __res_state rs;
  str err = {0, 0, 0};
  if (dnstxt_res_init(c, &rs, c->timeout, &err) < 0) { str_free(&err); return -1; }
  unsigned char ans[NS_PACKETSZ * 4];
  int n = res_nquery(&rs, q, ns_c_in, ns_t_ptr, ans, sizeof ans);
  int r = n < 0 ? (rs.res_h_errno == HOST_NOT_FOUND || rs.res_h_errno == NO_DATA ? 0 : -1)
                : first_ptr(ans, n > (int)sizeof ans ? (int)sizeof ans : n, out, outlen);
  res_nclose(&rs);
  return r;
}

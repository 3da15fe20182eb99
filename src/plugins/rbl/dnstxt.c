/* dnstxt.c -- TXT lookups with a configurable server and a deadline
 * (see dnstxt.h).  Uses res_ninit/res_nquery on a private resolver state,
 * so nothing global is changed; the state is closed after each lookup. */
#include "dnstxt.h"
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <netdb.h>
#include <resolv.h>
#include <stdlib.h>
#include <string.h>

static void set_err(str* err, const char* a, const char* b)
{
  err->len = 0;
  str_cats(err, a);
  if (b) str_cats(err, b);
}

int dnstxt_configure(struct dnstxt_conf* c, const char* ips, const char* port,
                     unsigned long timeout, str* err)
{
  memset(c, 0, sizeof *c);
  c->timeout = timeout ? (timeout > 3600 ? 3600 : (unsigned)timeout) : 10;
  unsigned long p = 53;
  if (port && *port) {
    char* end;
    p = strtoul(port, &end, 10);
    if (*end || p == 0 || p > 65535 || port[0] < '0' || port[0] > '9') {
      set_err(err, "invalid $DNSCACHEPORT: ", port);
      return -1;
    }
  }
  if (!ips) return 0;
  const char* s = ips;
  while (*s) {
    while (*s == ' ' || *s == ',' || *s == '\t') s++;
    if (!*s) break;
    size_t n = strcspn(s, " ,\t");
    char buf[INET_ADDRSTRLEN];
    struct in_addr a;
    if (n >= sizeof buf) { set_err(err, "invalid $DNSCACHEIP: ", ips); return -1; }
    memcpy(buf, s, n);
    buf[n] = 0;
    if (inet_pton(AF_INET, buf, &a) != 1) { set_err(err, "invalid $DNSCACHEIP: ", ips); return -1; }
    if (c->nservers < DNSTXT_MAXSERVERS) {
      struct sockaddr_in* sa = &c->servers[c->nservers++];
      sa->sin_family = AF_INET;
      sa->sin_port = htons((unsigned short)p);
      sa->sin_addr = a;
    }
    s += n;
  }
  if (!c->nservers) { set_err(err, "invalid $DNSCACHEIP: ", ips); return -1; }
  return 0;
}

int dnstxt_parse(const unsigned char* msg, int len, str* out)
{
  ns_msg h;
  out->len = 0;
  if (ns_initparse(msg, len, &h) < 0) return -1;
  int count = 0;
  int an = ns_msg_count(h, ns_s_an);
  for (int i = 0; i < an; i++) {
    ns_rr rr;
    if (ns_parserr(&h, ns_s_an, i, &rr) < 0) return -1;
    if (ns_rr_type(rr) != ns_t_txt || ns_rr_class(rr) != ns_c_in) continue;
    const unsigned char* d = ns_rr_rdata(rr);
    unsigned rl = ns_rr_rdlen(rr), j = 0;
    if (count > 0 && !str_catc(out, 0)) return -1;
    while (j < rl) {
      unsigned sl = d[j++];
      if (sl > rl - j) return -1;
      for (unsigned k = 0; k < sl; k++) {
        unsigned char ch = d[j + k];
        if (!str_catc(out, (ch >= 32 && ch <= 126) ? (char)ch : '?')) return -1;
      }
      j += sl;
    }
    count++;
  }
  /* out is always a C string, also when every record is empty (TXT "")
   * and nothing was appended (issue 10 item 9: NULL reached str_cats) */
  if (out->s == 0 && !str_ready(out, 0)) return -1;
  out->s[out->len] = 0;
  return count;
}

int dnstxt_lookup(const struct dnstxt_conf* c, const char* name, str* out, unsigned* nrec, str* err)
{
  struct __res_state rs;
  memset(&rs, 0, sizeof rs);
  if (res_ninit(&rs) != 0) { set_err(err, "resolver initialisation failed", 0); return -1; }
  if (c->nservers) {
    rs.nscount = c->nservers;
    for (int i = 0; i < c->nservers; i++) {
      rs.nsaddr_list[i] = c->servers[i];
      /* glibc prefers an IPv6 copy from resolv.conf when present:
       * overwrite it with our IPv4 server. */
      if (rs._u._ext.nsaddrs[i]) {
        memset(rs._u._ext.nsaddrs[i], 0, sizeof *rs._u._ext.nsaddrs[i]);
        memcpy(rs._u._ext.nsaddrs[i], &c->servers[i], sizeof c->servers[i]);
      }
    }
  }
  rs.retry = c->timeout >= 2 ? 2 : 1;
  rs.retrans = (int)(c->timeout / (unsigned)rs.retry);
  if (rs.retrans < 1) rs.retrans = 1;
  rs.options &= ~(unsigned long)(RES_DNSRCH | RES_DEFNAMES | RES_ROTATE);

  int rc = -1;
  unsigned char* ans = malloc(NS_MAXMSG);
  if (!ans) { set_err(err, "out of memory", 0); res_nclose(&rs); return -1; }
  errno = 0;
  int n = res_nquery(&rs, name, ns_c_in, ns_t_txt, ans, NS_MAXMSG);
  if (n < 0) {
    switch (rs.res_h_errno) {
    case HOST_NOT_FOUND:
    case NO_DATA:
      rc = 0;
      break;
    case TRY_AGAIN:
      set_err(err, errno == ETIMEDOUT ? "timed out looking up " : "server failure looking up ", name);
      break;
    default:
      set_err(err, "DNS server refused or failed the query for ", name);
      break;
    }
  } else {
    int cnt = dnstxt_parse(ans, n > NS_MAXMSG ? NS_MAXMSG : n, out);
    if (cnt < 0) set_err(err, "malformed DNS answer for ", name);
    else { rc = cnt > 0; *nrec = (unsigned)cnt; }
  }
  free(ans);
  res_nclose(&rs);
  return rc;
}

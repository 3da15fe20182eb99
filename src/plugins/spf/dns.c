/* spf/dns.c -- libspf2's DNS layer for plugin-spf: every lookup goes to
 * $DNSCACHEIP/$DNSCACHEPORT (the rbl plugin's settings, rbl/dnstxt.h)
 * through a private glibc resolver state, under one deadline for the
 * whole SPF evaluation (see spf.h).  libspf2's own "resolv" layer reads
 * /etc/resolv.conf in a hidden state, so it can be neither pointed at a
 * server nor bounded: this layer replaces it.
 *
 * Answers are decoded into libspf2's RR sets (A, AAAA, MX, PTR, TXT);
 * a lookup after the deadline, a timeout or a server failure is
 * TRY_AGAIN, which libspf2 turns into temperror.  Memory: RR sets belong
 * to libspf2 (it frees them); the layer struct is freed by its destroy. */
#include "spf.h"
#include "../rbl/dnstxt.h"
#include <arpa/nameser.h>
#include <errno.h>
#include <netdb.h>
#include <resolv.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct layer
{
  SPF_dns_server_t base;     /* first: libspf2 sees this */
  struct dnstxt_conf conf;
  long long deadline_ms;     /* monotonic; 0 = not armed */
  unsigned timeout;          /* seconds, for the whole evaluation */
  int timed_out;             /* a lookup failed for lack of time */
};

static long long mono_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Add one decoded record to the set; -1 on failure. */
static int add_rr(SPF_dns_rr_t* rr, int* cnt, const void* data, size_t len, int nul)
{
  if (SPF_dns_rr_buf_realloc(rr, *cnt, len + (nul ? 1 : 0)) != SPF_E_SUCCESS) return -1;
  char* dst = (char*)rr->rr[*cnt];
  memcpy(dst, data, len);
  if (nul) dst[len] = 0;
  (*cnt)++;
  return 0;
}

/* Decode the records of type t in the answer section. */
static void decode(SPF_dns_rr_t* rr, const unsigned char* msg, int len, ns_type t)
{
  ns_msg h;
  int cnt = 0;
  char name[NS_MAXDNAME];
  if (ns_initparse(msg, len, &h) < 0) { rr->herrno = NO_RECOVERY; return; }
  int an = ns_msg_count(h, ns_s_an);
  for (int i = 0; i < an; i++) {
    ns_rr r;
    if (ns_parserr(&h, ns_s_an, i, &r) < 0) { rr->herrno = NO_RECOVERY; break; }
    if (ns_rr_type(r) != t || ns_rr_class(r) != ns_c_in) continue;
    const unsigned char* d = ns_rr_rdata(r);
    unsigned dl = ns_rr_rdlen(r);
    int ok = 0;
    switch (t) {
    case ns_t_a:
      ok = dl == 4 ? add_rr(rr, &cnt, d, 4, 0) : 0;
      break;
    case ns_t_aaaa:
      ok = dl == 16 ? add_rr(rr, &cnt, d, 16, 0) : 0;
      break;
    case ns_t_mx:
      if (dl < 3 || ns_name_uncompress(msg, msg + len, d + 2, name, sizeof name) < 0) break;
      ok = add_rr(rr, &cnt, name, strlen(name), 1);
      break;
    case ns_t_ptr:
      if (ns_name_uncompress(msg, msg + len, d, name, sizeof name) < 0) break;
      ok = add_rr(rr, &cnt, name, strlen(name), 1);
      break;
    case ns_t_txt: {
      /* character-strings concatenated; a NUL inside ends the text */
      if (SPF_dns_rr_buf_realloc(rr, cnt, dl + 1) != SPF_E_SUCCESS) { ok = -1; break; }
      char* dst = rr->rr[cnt]->txt;
      unsigned j = 0, o = 0;
      while (j < dl) {
        unsigned sl = d[j++];
        if (sl > dl - j) sl = dl - j;
        memcpy(dst + o, d + j, sl);
        o += sl;
        j += sl;
      }
      dst[o] = 0;
      cnt++;
      break;
    }
    default:
      break;
    }
    if (ok < 0) { rr->herrno = NO_RECOVERY; break; }
  }
  rr->num_rr = cnt;
  if (cnt == 0 && rr->herrno == NETDB_SUCCESS) rr->herrno = NO_DATA;
}

static SPF_dns_rr_t* layer_lookup(SPF_dns_server_t* s, const char* domain, ns_type t, int should_cache)
{
  (void)should_cache;
  struct layer* l = (struct layer*)s;
  long long left = l->deadline_ms ? l->deadline_ms - mono_ms() : (long long)l->timeout * 1000;
  if (left <= 0) {
    l->timed_out = 1;
    return SPF_dns_rr_new_init(s, domain, t, 0, TRY_AGAIN);
  }
  struct __res_state rs;
  str err = { 0, 0, 0 };
  unsigned secs = (unsigned)((left + 999) / 1000);
  if (dnstxt_res_init(&l->conf, &rs, secs, &err) < 0) {
    str_free(&err);
    return SPF_dns_rr_new_init(s, domain, t, 0, TRY_AGAIN);
  }
  /* One attempt, the time left shared by the servers (glibc gives each
   * server the whole retrans on the first attempt). */
  rs.retry = 1;
  rs.retrans = (int)secs / (rs.nscount > 0 ? rs.nscount : 1);
  if (rs.retrans < 1) rs.retrans = 1;
  unsigned char* ans = malloc(NS_MAXMSG);
  SPF_dns_rr_t* rr;
  int n = ans ? res_nquery(&rs, domain, ns_c_in, t, ans, NS_MAXMSG) : -1;
  if (n < 0) {
    int h = ans ? rs.res_h_errno : TRY_AGAIN;
    if (h != HOST_NOT_FOUND && h != NO_DATA) h = TRY_AGAIN;   /* timeout, SERVFAIL, refused */
    rr = SPF_dns_rr_new_init(s, domain, t, 0, h);
  } else {
    rr = SPF_dns_rr_new_init(s, domain, t, 0, NETDB_SUCCESS);
    if (rr) decode(rr, ans, n > NS_MAXMSG ? NS_MAXMSG : n, t);
  }
  free(ans);
  res_nclose(&rs);
  return rr;
}

static void layer_destroy(SPF_dns_server_t* s)
{
  free(s);
}

SPF_dns_server_t* spf_dns_new(const struct dnstxt_conf* conf, unsigned timeout)
{
  struct layer* l = calloc(1, sizeof *l);
  if (!l) return 0;
  l->base.destroy = layer_destroy;
  l->base.lookup = layer_lookup;
  l->base.name = "mailfront";
  l->conf = *conf;
  l->timeout = timeout ? timeout : 1;
  return &l->base;
}

void spf_dns_arm(SPF_dns_server_t* s)
{
  struct layer* l = (struct layer*)s;
  l->deadline_ms = mono_ms() + (long long)l->timeout * 1000;
  l->timed_out = 0;
}

int spf_dns_timed_out(SPF_dns_server_t* s)
{
  return ((struct layer*)s)->timed_out;
}

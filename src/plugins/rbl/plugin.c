/* plugin-rbl -- refuses (or captures) mail from clients listed in DNS
 * blocklists (plugins.md "rbl").
 *
 * init (session lookups, like every variable here): $RBL_BLACKLISTS and
 * $RBL_WHITELISTS are comma-separated zones (empty elements skipped); the
 * client is
 * $TCPREMOTEIP (IPv4 only).  TXT records of D.C.B.A.ZONE are looked up
 * through dnstxt.h ($DNSCACHEIP, $DNSCACHEPORT, $RBL_TIMEOUT seconds per
 * lookup, default 10): every whitelist zone first (a hit = good), then, if
 * none hit, every blacklist zone (a hit = bad); the last hit gives the
 * text.  A DNS failure or timeout is logged with the name looked up and
 * start-up fails with `451 4.3.0 DNS error doing RBL lookup`.
 * $RBL_DEBUG logs each hit on one line.
 * A bad client gets `451 Blocked: TXT` at MAIL, or, with $RBL_QUEUEDIR
 * set, its messages are written by a queuedir writer of its own
 * (prefix RBL_QUEUEDIR, opened for a bad client only) and refused with
 * the same reply at end of data; backend-queuedir has a separate writer,
 * so both can be used together.
 * State: one struct per session, the plugin's version-4 context (opened
 * and freed by the core through session_open/session_close). */
#include "lib/setting.h"
#include <mailfront/mailfront.h>
#include "dnstxt.h"
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

extern struct plugin plugin;

static RESPONSE(dns_error, 451, "4.3.0 DNS error doing RBL lookup");

struct rbl
{
  int bad;                 /* client blacklisted (and not whitelisted) */
  int capture;             /* $RBL_QUEUEDIR set */
  int debug;
  str text;                /* "Blocked: TXT" */
  response block;          /* {451, text.s} */
  str name, txt, err;      /* scratch */
  struct dnstxt_conf dns;
  struct queuedir* qd;     /* capture writer, for a bad client */
};

static const response* rbl_open(void** ctx)
{
  *ctx = calloc(1, sizeof(struct rbl));
  return *ctx ? 0 : &resp_oom;
}

static void rbl_close(void* ctx)
{
  struct rbl* rb = ctx;
  if (!rb) return;
  queuedir_close(rb->qd);
  str_free(&rb->text);
  str_free(&rb->name);
  str_free(&rb->txt);
  str_free(&rb->err);
  free(rb);
}

/* Query every zone of a comma-separated list; 1 if any listed the IP,
 * 0 if none, -1 on DNS failure.  The last hit's first text goes to
 * rb.text. */
static int check_zones(struct rbl* rb, const char* zones, const unsigned char ip[4], const char* what)
{
  int hit = 0;
  const char* z = zones;
  while (z && *z) {
    size_t n = strcspn(z, ",");
    if (n > 0) {
      rb->name.len = 0;
      for (int i = 3; i >= 0; i--)
        if (!str_catu(&rb->name, ip[i]) || !str_catc(&rb->name, '.')) return -1;
      if (!str_catb(&rb->name, z, (unsigned)n)) return -1;
      unsigned nrec = 0;
      int r = dnstxt_lookup(&rb->dns, rb->name.s, &rb->txt, &nrec, &rb->err);
      if (r < 0) {
        warn2("rbl: ", rb->err.s ? rb->err.s : "DNS error");
        return -1;
      }
      if (r > 0) {
        hit = 1;
        if (!str_copys(&rb->text, "Blocked: ") || !str_cats(&rb->text, rb->txt.s)) return -1;
        if (rb->debug) {
          str line = { 0, 0, 0 };
          int ok = str_cat3s(&line, what, " by ", "") && str_catb(&line, z, (unsigned)n) && str_cats(&line, ": ");
          for (unsigned i = 0, off = 0; ok && i < nrec; i++) {
            const char* t = rb->txt.s + off;
            ok = (i == 0 || str_cats(&line, " // ")) && str_cats(&line, t);
            off += (unsigned)strlen(t) + 1;
          }
          if (ok) msg2("rbl: ", line.s);
          str_free(&line);
        }
      }
    }
    z += n;
    if (*z == ',') z++;
  }
  return hit;
}

static const response* rbl_init(void)
{
  struct rbl* rb = plugin_context(&plugin);
  if (!rb) return &resp_internal;
  rb->debug = session_getenv("RBL_DEBUG") != 0;
  const char* black = session_getenv("RBL_BLACKLISTS");
  if (!black || !*black) return 0;
  rb->capture = session_getenv("RBL_QUEUEDIR") != 0;
  const char* ipstr = session_getenv("TCPREMOTEIP");
  if (!ipstr) return 0;
  unsigned char ip[4];
  if (inet_pton(AF_INET, ipstr, ip) != 1) {
    msg3("rbl: Cannot parse IP '", ipstr, "'");
    return 0;
  }
  static const struct env_number timeout_spec = { 10, 1, 3600, 0 };
  if (dnstxt_configure(&rb->dns, session_getenv("DNSCACHEIP"), session_getenv("DNSCACHEPORT"),
                       env_setting("RBL_TIMEOUT", &timeout_spec), &rb->err) < 0) {
    warn2("rbl: ", rb->err.s);
    return &resp_dns_error;
  }
  const char* white = session_getenv("RBL_WHITELISTS");
  int r = white ? check_zones(rb, white, ip, "whitelisted") : 0;
  if (r == 0) {
    r = check_zones(rb, black, ip, "blacklisted");
    if (r > 0) rb->bad = 1;
  }
  str_free(&rb->name);
  str_free(&rb->txt);
  if (r < 0) return &resp_dns_error;
  if (rb->bad) {
    rb->block.number = 451;
    rb->block.message = rb->text.s;
    if (rb->capture && !(rb->qd = queuedir_open("RBL_QUEUEDIR"))) return &resp_oom;
  }
  return 0;
}

/* The session's state when its messages are being captured, else NULL. */
static struct rbl* capturing(void)
{
  struct rbl* rb = plugin_context(&plugin);
  return rb && rb->bad && rb->capture ? rb : 0;
}

/* A queuedir result: errors pass through, acceptance is not ours to give. */
static const response* writer(const response* r) { return response_ok(r) ? 0 : r; }

static const response* rbl_reset(void)
{
  struct rbl* rb = capturing();
  return rb ? writer(queuedir_reset(rb->qd)) : 0;
}

static const response* rbl_sender(str* address, str* params)
{
  struct rbl* rb = plugin_context(&plugin);
  if (!rb || !rb->bad) return 0;
  if (!rb->capture) return &rb->block;
  return writer(queuedir_sender(rb->qd, address, params));
}

static const response* rbl_recipient(str* address, str* params)
{
  struct rbl* rb = capturing();
  return rb ? writer(queuedir_recipient(rb->qd, address, params)) : 0;
}

static const response* rbl_data_start(int fd)
{
  struct rbl* rb = capturing();
  return rb ? writer(queuedir_data_start(rb->qd, fd)) : 0;
}

static const response* rbl_data_block(const char* bytes, unsigned long len)
{
  struct rbl* rb = capturing();
  return rb ? writer(queuedir_data_block(rb->qd, bytes, len)) : 0;
}

static const response* rbl_message_end(int fd)
{
  struct rbl* rb = capturing();
  if (!rb) return 0;
  const response* r = writer(queuedir_message_end(rb->qd, fd));
  return r ? r : &rb->block;
}

struct plugin plugin = {
  .version = PLUGIN_VERSION_4,
  .init = rbl_init,
  .reset = rbl_reset,
  .sender = rbl_sender,
  .recipient = rbl_recipient,
  .data_start = rbl_data_start,
  .data_block = rbl_data_block,
  .message_end = rbl_message_end,
  .session_open = rbl_open,
  .session_close = rbl_close,
};

/* plugin-add-received -- prepends Received: header lines to each message
 * (plugins.md "add-received").
 *
 * The connection facts (${PROTO}LOCALIP, REMOTEIP, LOCALHOST, REMOTEHOST,
 * $FIXUP_RECEIVED_HOST/IP: session lookups) are read at init of every
 * session.  At data_start the
 * optional fixup header, $HEADER_ADD and the standard header are injected
 * with backend_data_block(), so other plugins and the size limit do not see
 * them.  Authenticated sessions get no header when $AUTH_ADD_RECEIVED is 0.
 *
 * The `with` word is the session's protocol name (SMTP, ESMTP, QMQP, ...),
 * except for a transaction that declared SMTPUTF8 (session number
 * `smtputf8`): then the RFC 6531 type UTF8SMTP, with S after STARTTLS
 * (`tls_state`) and A when authenticated: UTF8SMTPS, UTF8SMTPA, UTF8SMTPSA.
 *
 * State: version 4.  The facts and the header buffer are the session's
 * context (session_open allocates it, session_close frees it); nothing
 * mutable at file scope, so one process may run many sessions. */
#include "lib/setting.h"
#include <mailfront/mailfront.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

extern struct plugin plugin;

/* The session's facts (strings of the session's environment, valid to its
 * end) and the header being built. */
struct conn
{
  const char *link, *lip, *rip, *lhost, *rhost;
  str fixhost, fixip;
  int ipv6;
  str hdr;
};

static const response* ar_open(void** ctx)
{
  *ctx = calloc(1, sizeof(struct conn));
  return *ctx ? 0 : &resp_oom;
}

static void ar_close(void* ctx)
{
  struct conn* c = ctx;
  if (!c) return;
  str_free(&c->fixhost);
  str_free(&c->fixip);
  str_free(&c->hdr);
  free(c);
}

static const char* trimmed(str* out, const char* v)
{
  out->len = 0;
  if (!v) return "";
  while (*v && isspace((unsigned char)*v)) v++;
  size_t n = strlen(v);
  while (n > 0 && isspace((unsigned char)v[n - 1])) n--;
  str_copyb(out, v, (unsigned)n);
  return out->s ? out->s : "";
}

static const response* ar_init(void)
{
  struct conn* c = plugin_context(&plugin);
  if (!c) return &resp_internal;
  c->link = getprotoenv(0);
  c->ipv6 = strcasecmp(c->link, "TCP6") == 0;
  c->lip = getprotoenv("LOCALIP");
  c->rip = getprotoenv("REMOTEIP");
  c->lhost = getprotoenv("LOCALHOST");
  c->rhost = getprotoenv("REMOTEHOST");
  trimmed(&c->fixhost, session_getenv("FIXUP_RECEIVED_HOST"));
  trimmed(&c->fixip, session_getenv("FIXUP_RECEIVED_IP"));
  return 0;
}

static int cat_ip(const struct conn* c, str* s, const char* ip)
{
  return str_cats(s, "[") && (!c->ipv6 || str_cats(s, "IPv6:")) && str_cats(s, ip) && str_cats(s, "]");
}

static int cat_date(str* s)
{
  static const char* const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
  char buf[64];
  time_t now = time(0);
  struct tm tm;
  gmtime_r(&now, &tm);
  size_t n = strftime(buf, sizeof buf, "%d ", &tm);
  n += (size_t)snprintf(buf + n, sizeof buf - n, "%s ", months[tm.tm_mon]);
  strftime(buf + n, sizeof buf - n, "%Y %H:%M:%S -0000", &tm);
  return str_cats(s, buf);
}

static int nonempty(const char* s) { return s && *s; }

/* The `with` protocol type (RFC 3848 and RFC 6531 registries). */
static const char* with_type(void)
{
  static const char* const utf8_types[2][2] = {
    { "UTF8SMTP", "UTF8SMTPA" },
    { "UTF8SMTPS", "UTF8SMTPSA" },
  };
  if (session_getnum("smtputf8", 0) == 0) return session_protocol();
  int tls = session_getnum("tls_state", 0) != 0;
  int auth = session_getnum("authenticated", 0) != 0;
  return utf8_types[tls][auth];
}

static int build(const struct conn* c, str* s)
{
  int ok = 1;
  s->len = 0;
  if (nonempty(c->lhost) && nonempty(c->lip) && c->fixhost.len && c->fixip.len
      && (strcasecmp(c->lhost, c->fixhost.s) != 0 || strcasecmp(c->lip, c->fixip.s) != 0)) {
    ok = ok && str_cat3s(s, "Received: from ", c->lhost, " (") && str_cats(s, c->lhost) && str_cats(s, " ")
      && cat_ip(c, s, c->lip) && str_cat3s(s, ")\n  by ", c->fixhost.s, " (") && cat_ip(c, s, c->fixip.s)
      && str_cats(s, "); ") && cat_date(s) && str_cats(s, "\n");
  }
  const char* add = session_getenv("HEADER_ADD");
  if (add) ok = ok && str_cat2s(s, add, "\n");
  const char* from = session_getstr("helo_domain");
  if (!from) from = c->rhost ? c->rhost : c->rip ? c->rip : UNKNOWN;
  ok = ok && str_cat2s(s, "Received: from ", from);
  if (c->rhost || c->rip) {
    ok = ok && str_cats(s, " (");
    if (c->rhost) ok = ok && str_cats(s, c->rhost);
    if (c->rhost && c->rip) ok = ok && str_cats(s, " ");
    if (c->rip) ok = ok && cat_ip(c, s, c->rip);
    ok = ok && str_cats(s, ")");
  }
  ok = ok && str_cat2s(s, "\n  by ", c->lhost ? c->lhost : c->lip ? c->lip : UNKNOWN);
  if (c->lip) ok = ok && str_cats(s, " (") && cat_ip(c, s, c->lip) && str_cats(s, ")");
  ok = ok && str_cat3s(s, "\n  with ", with_type(), " via ") && str_cat2s(s, c->link, "; ")
    && cat_date(s) && str_cats(s, "\n");
  return ok;
}

static const response* ar_data_start(int fd)
{
  (void)fd;
  struct conn* c = plugin_context(&plugin);
  if (!c) return &resp_internal;
  int authed = session_getnum("authenticated", 0) != 0 || session_getenv("RELAYCLIENT") != 0;
  static const struct env_number flag_on = { 1, 0, 1, 1 };        /* 0: off */
  if (authed && env_setting("AUTH_ADD_RECEIVED", &flag_on) == 0) return 0;
  if (!build(c, &c->hdr)) return &resp_oom;
  return backend_data_block(c->hdr.s, c->hdr.len);
}

struct plugin plugin = {
  .version = PLUGIN_VERSION_4,
  .init = ar_init,
  .data_start = ar_data_start,
  .session_open = ar_open,
  .session_close = ar_close,
};

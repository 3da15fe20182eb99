/* plugin-add-received -- prepends Received: header lines to each message
 * (plugins.md "add-received").
 *
 * The connection facts (${PROTO}LOCALIP, REMOTEIP, LOCALHOST, REMOTEHOST,
 * $FIXUP_RECEIVED_HOST/IP) are read once at init.  At data_start the
 * optional fixup header, $HEADER_ADD and the standard header are injected
 * with backend_data_block(), so other plugins and the size limit do not see
 * them.  Authenticated sessions get no header when $AUTH_ADD_RECEIVED is 0.
 *
 * The `with` word is the session's protocol name (SMTP, ESMTP, QMQP, ...),
 * except for a transaction that declared SMTPUTF8 (session number
 * `smtputf8`): then the RFC 6531 type UTF8SMTP, with S after STARTTLS
 * (`tls_state`) and A when authenticated: UTF8SMTPS, UTF8SMTPA, UTF8SMTPSA. */
#include "lib/setting.h"
#include <mailfront/mailfront.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct conn
{
  const char *link, *lip, *rip, *lhost, *rhost;
  str fixhost, fixip;
  int ipv6;
};
static struct conn c;
static str hdr;

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
  c.link = getprotoenv(0);
  c.ipv6 = strcasecmp(c.link, "TCP6") == 0;
  c.lip = getprotoenv("LOCALIP");
  c.rip = getprotoenv("REMOTEIP");
  c.lhost = getprotoenv("LOCALHOST");
  c.rhost = getprotoenv("REMOTEHOST");
  trimmed(&c.fixhost, getenv("FIXUP_RECEIVED_HOST"));
  trimmed(&c.fixip, getenv("FIXUP_RECEIVED_IP"));
  return 0;
}

static int cat_ip(str* s, const char* ip)
{
  return str_cats(s, "[") && (!c.ipv6 || str_cats(s, "IPv6:")) && str_cats(s, ip) && str_cats(s, "]");
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

static int build(str* s)
{
  int ok = 1;
  s->len = 0;
  if (nonempty(c.lhost) && nonempty(c.lip) && c.fixhost.len && c.fixip.len
      && (strcasecmp(c.lhost, c.fixhost.s) != 0 || strcasecmp(c.lip, c.fixip.s) != 0)) {
    ok = ok && str_cat3s(s, "Received: from ", c.lhost, " (") && str_cats(s, c.lhost) && str_cats(s, " ")
      && cat_ip(s, c.lip) && str_cat3s(s, ")\n  by ", c.fixhost.s, " (") && cat_ip(s, c.fixip.s)
      && str_cats(s, "); ") && cat_date(s) && str_cats(s, "\n");
  }
  const char* add = session_getenv("HEADER_ADD");
  if (add) ok = ok && str_cat2s(s, add, "\n");
  const char* from = session_getstr("helo_domain");
  if (!from) from = c.rhost ? c.rhost : c.rip ? c.rip : UNKNOWN;
  ok = ok && str_cat2s(s, "Received: from ", from);
  if (c.rhost || c.rip) {
    ok = ok && str_cats(s, " (");
    if (c.rhost) ok = ok && str_cats(s, c.rhost);
    if (c.rhost && c.rip) ok = ok && str_cats(s, " ");
    if (c.rip) ok = ok && cat_ip(s, c.rip);
    ok = ok && str_cats(s, ")");
  }
  ok = ok && str_cat2s(s, "\n  by ", c.lhost ? c.lhost : c.lip ? c.lip : UNKNOWN);
  if (c.lip) ok = ok && str_cats(s, " (") && cat_ip(s, c.lip) && str_cats(s, ")");
  ok = ok && str_cat3s(s, "\n  with ", with_type(), " via ") && str_cat2s(s, c.link, "; ")
    && cat_date(s) && str_cats(s, "\n");
  return ok;
}

static const response* ar_data_start(int fd)
{
  (void)fd;
  int authed = session_getnum("authenticated", 0) != 0 || session_getenv("RELAYCLIENT") != 0;
  static const struct env_number flag_on = { 1, 0, 1, 1 };        /* 0: off */
  if (authed && env_setting("AUTH_ADD_RECEIVED", &flag_on) == 0) return 0;
  if (!build(&hdr)) return &resp_oom;
  return backend_data_block(hdr.s, hdr.len);
}

struct plugin plugin = {
  .version = PLUGIN_VERSION,
  .init = ar_init,
  .data_start = ar_data_start,
};

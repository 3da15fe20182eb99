/* plugin-spf -- SPF (RFC 7208) checks of the envelope sender with libspf2
 * (docs/spf.md).
 *
 * At MAIL FROM the sender's domain is checked for the client address
 * ($TCPREMOTEIP, IPv4 or IPv6); for the null sender the HELO name is
 * checked instead (postmaster@HELO).  Results listed in $SPF_REJECT
 * (default "fail") are refused with `550 5.7.23`, those in $SPF_TEMPFAIL
 * (default "temperror") with `451 4.7.24` (lists separated by spaces or
 * commas; result words: pass fail softfail neutral none temperror
 * permerror).  Any other result is accepted and recorded in the message:
 * at data_start a Received-SPF field and an Authentication-Results field
 * (authserv-id $SPF_AUTHSERV_ID, else $TCPLOCALHOST, else "localhost") are
 * injected after the back end's own header lines.
 * Skipped: relay clients ($RELAYCLIENT set), authenticated sessions,
 * sessions without a client address, QMQP/QMTP, $SPF_DISABLE set.
 * DNS: $DNSCACHEIP/$DNSCACHEPORT as for the rbl plugin (default
 * /etc/resolv.conf), every lookup of one check within $SPF_TIMEOUT seconds
 * in all (default 20); past it the result is temperror (spf/dns.c).
 * libspf2's messages go to our log as warnings; its fatal-error handler is
 * replaced so that an internal error ends as temperror instead of abort.
 *
 * State: version 4; one struct per session, the context of
 * session_open/session_close; the libspf2 server and its DNS layer are
 * made at the session's first check (with its $SPF_AUTHSERV_ID,
 * $SPF_TIMEOUT, $DNSCACHEIP, $DNSCACHEPORT: session lookups) and freed
 * by session_close, so one process may run many sessions. */
#include "lib/setting.h"
#include "spf.h"
#include "../rbl/dnstxt.h"
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static RESPONSE(config, 451, "4.3.5 SPF checking is misconfigured");

/* Result words by libspf2 result (RFC 7208 section 2.6). */
struct word { SPF_result_t result; const char* word; };
static const struct word words[] = {
  { SPF_RESULT_PASS, "pass" },
  { SPF_RESULT_FAIL, "fail" },
  { SPF_RESULT_SOFTFAIL, "softfail" },
  { SPF_RESULT_NEUTRAL, "neutral" },
  { SPF_RESULT_NONE, "none" },
  { SPF_RESULT_TEMPERROR, "temperror" },
  { SPF_RESULT_PERMERROR, "permerror" },
};

struct spf
{
  int configured;            /* server created (or failed: config_error) */
  int config_error;
  SPF_server_t* server;
  SPF_dns_server_t* dns;     /* ours: SPF_server_new_dns does not free it */
  const char* ip;            /* $TCPREMOTEIP when an address, else NULL */
  int v6;
  str helo;                  /* last HELO/EHLO name */
  str headers;               /* fields for the current message, or empty */
  str text;                  /* reply text */
  response reply;
};

extern struct plugin plugin;

static const response* spf_open(void** ctx)
{
  *ctx = calloc(1, sizeof(struct spf));
  return *ctx ? 0 : &resp_oom;
}

static void spf_close(void* ctx)
{
  struct spf* sp = ctx;
  if (!sp) return;
  if (sp->server) SPF_server_free(sp->server);
  if (sp->dns) sp->dns->destroy(sp->dns);
  str_free(&sp->helo);
  str_free(&sp->headers);
  str_free(&sp->text);
  free(sp);
}

/* libspf2 calls its error handler for internal errors and expects it not
 * to return; we jump back to the check in progress.  The two statics
 * below are set and cleared within one evaluate() call (the handler has
 * no context argument): nothing in them outlives a check. */
static jmp_buf spf_abort;
static int in_check;

static void log_spf(const char* file, int line, const char* msg)
{
  (void)file;
  (void)line;
  warn2("spf: libspf2: ", msg);
}

__attribute__((noreturn)) static void error_spf(const char* file, int line, const char* msg)
{
  log_spf(file, line, msg);
  if (in_check) longjmp(spf_abort, 1);
  abort();
}

static void quiet_spf(const char* file, int line, const char* msg)
{
  (void)file;
  (void)line;
  (void)msg;
}

static const char* receiver(void)
{
  const char* r = session_getenv("SPF_AUTHSERV_ID");
  if (!r || !*r) r = getprotoenv("LOCALHOST");
  return r && *r ? r : "localhost";
}

/* QMQP and QMTP hand the envelope over after the message: nothing to
 * check before the data, and the client is a relay. */
static int smtp_session(void)
{
  const char* p = session_protocol();
  return strcmp(p, "SMTP") == 0 || strcmp(p, "ESMTP") == 0;
}

static int skipped(const struct spf* sp)
{
  return !sp->ip || !smtp_session() || session_getenv("RELAYCLIENT") != 0 || session_getnum("authenticated", 0) != 0
    || session_getenv("SPF_DISABLE") != 0;
}

/* Is word in the space/comma separated list? */
static int listed(const char* list, const char* word)
{
  size_t wl = strlen(word);
  for (const char* s = list; s && *s;) {
    s += strspn(s, " ,\t");
    size_t n = strcspn(s, " ,\t");
    if (n == wl && strncasecmp(s, word, n) == 0) return 1;
    s += n;
  }
  return 0;
}

static const char* policy(const char* var, const char* dflt)
{
  const char* v = session_getenv(var);
  return v ? v : dflt;
}

static int configure(struct spf* sp)
{
  if (sp->configured) return !sp->config_error;
  sp->configured = 1;
  sp->config_error = 1;
  struct dnstxt_conf conf;
  str err = { 0, 0, 0 };
  static const struct env_number timeout_spec = { 20, 1, 3600, 0 };
  unsigned long t = env_setting("SPF_TIMEOUT", &timeout_spec);
  if (dnstxt_configure(&conf, session_getenv("DNSCACHEIP"), session_getenv("DNSCACHEPORT"), t, &err) < 0) {
    warn2("spf: ", err.s);
    str_free(&err);
    return 0;
  }
  SPF_error_handler = error_spf;
  SPF_warning_handler = log_spf;
  SPF_info_handler = quiet_spf;
  SPF_debug_handler = quiet_spf;
  sp->dns = spf_dns_new(&conf, (unsigned)t);
  sp->server = sp->dns ? SPF_server_new_dns(sp->dns, 0) : 0;
  if (!sp->server) {
    if (sp->dns) sp->dns->destroy(sp->dns);
    sp->dns = 0;
    warn1("spf: cannot create the SPF server (out of memory)");
    return 0;
  }
  SPF_server_set_rec_dom(sp->server, receiver());
  sp->config_error = 0;
  return 1;
}

/* libspf2 reports a record it cannot compile like a missing one
 * (SPF_E_NOT_SPF); the compiler's own error among the messages tells the
 * two apart: a broken record is a permerror (RFC 7208 4.6). */
static int record_broken(SPF_response_t* resp)
{
  int n = resp ? SPF_response_messages(resp) : 0;
  for (int i = 0; i < n; i++) {
    SPF_error_t* e = SPF_response_message(resp, i);
    if (e && SPF_error_errorp(e) && SPF_error_code(e) != SPF_E_NOT_SPF && SPF_error_code(e) != SPF_E_DNS_ERROR) return 1;
  }
  return 0;
}

/* Run the check; the result word ("temperror" on internal trouble). */
static const char* evaluate(struct spf* sp, const char* from, int* helo_identity)
{
  SPF_request_t* req = SPF_request_new(sp->server);
  SPF_response_t* resp = 0;
  const char* word = "temperror";
  *helo_identity = from[0] == 0;
  if (!req) return word;
  if (*helo_identity && sp->helo.len == 0) {
    SPF_request_free(req);
    return "none";                         /* nothing to check */
  }
  in_check = 1;
  if (setjmp(spf_abort) == 0) {
    SPF_errcode_t e = sp->v6 ? SPF_request_set_ipv6_str(req, sp->ip) : SPF_request_set_ipv4_str(req, sp->ip);
    if (e == SPF_E_SUCCESS && sp->helo.len) e = SPF_request_set_helo_dom(req, sp->helo.s);
    if (e == SPF_E_SUCCESS && SPF_request_set_env_from(req, from) != 0) e = SPF_E_NO_MEMORY;
    if (e == SPF_E_SUCCESS) {
      spf_dns_arm(sp->dns);
      SPF_errcode_t qe = SPF_request_query_mailfrom(req, &resp);
      SPF_result_t r = resp ? SPF_response_result(resp) : SPF_RESULT_INVALID;
      if (r == SPF_RESULT_INVALID)    /* no verdict: the error code decides */
        r = qe == SPF_E_NOT_SPF ? (record_broken(resp) ? SPF_RESULT_PERMERROR : SPF_RESULT_NONE)
          : (qe == SPF_E_DNS_ERROR || qe == SPF_E_NO_MEMORY || qe == SPF_E_INTERNAL_ERROR || qe == SPF_E_SUCCESS)
          ? SPF_RESULT_TEMPERROR : SPF_RESULT_PERMERROR;
      for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (words[i].result == r) word = words[i].word;
      if (spf_dns_timed_out(sp->dns)) word = "temperror";
    }
  }
  in_check = 0;
  if (resp) SPF_response_free(resp);
  SPF_request_free(req);
  return word;
}

static const response* refuse(struct spf* sp, unsigned code, const char* status, const char* word, const char* domain)
{
  sp->text.len = 0;
  int ok = str_cats(&sp->text, status);
  for (const char* p = domain; ok && *p; p++) {
    unsigned char c = (unsigned char)*p;
    ok = str_catc(&sp->text, (c > 32 && c < 127) ? (char)c : '?');
  }
  ok = ok && str_cats(&sp->text, ": ") && str_cats(&sp->text, word);
  if (!ok) return &resp_oom;
  sp->reply.number = code;
  sp->reply.message = sp->text.s;
  return &sp->reply;
}

static const response* spf_init(void)
{
  struct spf* sp = plugin_context(&plugin);
  if (!sp) return &resp_internal;
  const char* ip = getprotoenv("REMOTEIP");
  unsigned char a[16];
  if (ip && inet_pton(AF_INET, ip, a) == 1) sp->ip = ip;
  else if (ip && inet_pton(AF_INET6, ip, a) == 1) { sp->ip = ip; sp->v6 = 1; }
  else if (ip) msg3("spf: cannot parse client address '", ip, "', not checking SPF");
  return 0;
}

static const response* spf_helo(str* hostname, str* caps)
{
  (void)caps;
  struct spf* sp = plugin_context(&plugin);
  if (!sp) return &resp_internal;
  sp->helo.len = 0;
  for (unsigned i = 0; i < hostname->len; i++)       /* stop at a NUL byte */
    if (hostname->s[i] == 0 || !str_catc(&sp->helo, hostname->s[i])) break;
  if (!str_catc(&sp->helo, 0)) return &resp_oom;
  sp->helo.len--;
  return 0;
}

static const response* spf_sender(str* address, str* params)
{
  (void)params;
  struct spf* sp = plugin_context(&plugin);
  if (!sp) return &resp_internal;
  sp->headers.len = 0;
  if (skipped(sp)) return 0;
  if (!configure(sp)) return &resp_config;
  if (memchr(address->s ? address->s : "", 0, address->len)) return 0;   /* cannot be checked */
  const char* from = address->s ? address->s : "";
  int helo_identity;
  const char* word = evaluate(sp, from, &helo_identity);
  const char* at = strrchr(from, '@');
  const char* domain = helo_identity ? sp->helo.s : at ? at + 1 : from;
  msg4("spf: result=", word, helo_identity ? " identity=helo domain=" : " identity=mailfrom domain=", domain ? domain : "");
  if (listed(policy("SPF_REJECT", "fail"), word))
    return refuse(sp, 550, "5.7.23 SPF check failed for ", word, domain ? domain : "");
  if (listed(policy("SPF_TEMPFAIL", "temperror"), word))
    return refuse(sp, 451, "4.7.24 SPF check could not be completed for ", word, domain ? domain : "");
  struct spf_facts f = { word, receiver(), sp->ip, from, sp->helo.s ? sp->helo.s : "", helo_identity };
  if (!spf_received_header(&sp->headers, &f) || !spf_authres_header(&sp->headers, &f)) {
    sp->headers.len = 0;
    return &resp_oom;
  }
  return 0;
}

/* A new transaction: no fields pending (sender computes them again). */
static const response* spf_reset(void)
{
  struct spf* sp = plugin_context(&plugin);
  if (sp) sp->headers.len = 0;
  return 0;
}

static const response* spf_data_start(int fd)
{
  (void)fd;
  struct spf* sp = plugin_context(&plugin);
  if (!sp || sp->headers.len == 0) return 0;
  const response* r = backend_data_block(sp->headers.s, sp->headers.len);
  sp->headers.len = 0;
  return r;
}

struct plugin plugin = {
  .version = PLUGIN_VERSION_4,
  .init = spf_init,
  .helo = spf_helo,
  .reset = spf_reset,
  .sender = spf_sender,
  .data_start = spf_data_start,
  .session_open = spf_open,
  .session_close = spf_close,
};

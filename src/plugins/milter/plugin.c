/* plugin-milter -- the Sendmail milter protocol (version 6, as Postfix
 * speaks it) towards one or more milters (docs/filtering.md, man page
 * mailfront-plugin-milter.8).
 *
 * Settings (read at the first hook of a session):
 *   $MILTERS                 milters in order: inet:HOST:PORT,
 *                            inet6:[ADDR]:PORT, unix:PATH; space or comma
 *                            separated.  Unset or empty: the plugin is idle.
 *   $MILTER_DEFAULT_ACTION   tempfail (default), accept or reject: what a
 *                            milter that is down or breaks the protocol
 *                            means.  accept leaves that milter out for the
 *                            rest of the session; the others stick: every
 *                            later command of the session gets the reply.
 *   $MILTER_CONNECT_TIMEOUT (30), $MILTER_COMMAND_TIMEOUT (30),
 *   $MILTER_CONTENT_TIMEOUT (300) seconds, each wait.
 *   $MILTER_HEADER_MAX (1048576) bytes of header section (then body),
 *   $MILTER_MAX_PACKET (1048576) bytes of one packet from a milter,
 *   $MILTER_DAEMON_NAME ({daemon_name}, "mailfront"),
 *   $MILTER_QUARANTINE (header, reject, tempfail or discard).
 *
 * Life of a session: the milters are connected at the first hook
 * (helo, sender or data_start) with option negotiation and the connect
 * step; HELO, MAIL, RCPT and DATA are sent at their hooks; the message
 * streams from data_block as header, end-of-header and body packets (body
 * in CRLF lines, 64 KiB chunks); end of data is sent at message_end, whose
 * modifications are applied to the message file (scratchfile + dup2) and
 * the envelope, and the back end is fed again (backend_resubmit).  QMQP
 * and QMTP give the message before the envelope: then everything is sent
 * at message_end from the message file.  Each reset aborts an open
 * transaction.  Steps a milter declines are skipped; steps it marked
 * no-reply are not waited for.  Discard switches to a back end that drops
 * the message until the next reset.
 *
 * State: one struct milter_session per session, the version-4 context
 * (session_open allocates it; session_close says QUIT to every connected
 * milter, closes every fd and frees it); the hooks find it with
 * plugin_context(&plugin) and pass it to every helper as `ms`.  Version 4
 * module: safe for many sessions in one process; settings are read per
 * session; nothing at file scope changes after loading.  Memory per
 * message is bounded by MILTER_HEADER_MAX, the packet limit and one body
 * chunk; the body itself is never held. */
#include <mailfront/mailfront.h>
#include "plugins/netclient.h"
#include <netdb.h>
#include <poll.h>
#include <sys/time.h>
#include <sys/stat.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "lib/mailheaders.h"
#include "wire.h"
#include <stdarg.h>
#include <stdio.h>
#include <strings.h>

static RESPONSE(cmd_reject, 550, "5.7.1 Command rejected");
static RESPONSE(msg_reject, 550, "5.7.1 Message content rejected");
static RESPONSE(tempfail, 451, "4.7.1 Service unavailable - try again later");
static RESPONSE(discarded, 250, "2.6.0 Message accepted");

enum answer { A_CONTINUE, A_ACCEPT, A_REJECT, A_TEMPFAIL, A_DISCARD, A_REPLY, A_SKIP, A_FAIL };
static const char* const answer_names[] = {
  "continue", "accept", "reject", "tempfail", "discard", "replycode", "skip", "failure"
};
enum step { S_CONNECT, S_HELO, S_MAIL, S_RCPT, S_DATA, S_HEADER, S_EOH, S_BODY, S_EOM };

static const struct step_info
{
  const char* name;
  char cmd;
  int macros;               /* enum mw_stage, or -1 */
  unsigned no, nr;          /* the step is skipped / not answered */
  int content;              /* content timeout */
} steps[] = {
  [S_CONNECT] = { "connect", SMFIC_CONNECT, MW_CONNECT, SMFIP_NOCONNECT, SMFIP_NR_CONN, 0 },
  [S_HELO] = { "helo", SMFIC_HELO, MW_HELO, SMFIP_NOHELO, SMFIP_NR_HELO, 0 },
  [S_MAIL] = { "mail", SMFIC_MAIL, MW_MAIL, SMFIP_NOMAIL, SMFIP_NR_MAIL, 0 },
  [S_RCPT] = { "rcpt", SMFIC_RCPT, MW_RCPT, SMFIP_NORCPT, SMFIP_NR_RCPT, 0 },
  [S_DATA] = { "data", SMFIC_DATA, MW_DATA, SMFIP_NODATA, SMFIP_NR_DATA, 0 },
  [S_HEADER] = { "header", SMFIC_HEADER, -1, SMFIP_NOHDRS, SMFIP_NR_HDR, 1 },
  [S_EOH] = { "eoh", SMFIC_EOH, MW_EOH, SMFIP_NOEOH, SMFIP_NR_EOH, 1 },
  [S_BODY] = { "body", SMFIC_BODY, -1, SMFIP_NOBODY, SMFIP_NR_BODY, 1 },
  [S_EOM] = { "eom", SMFIC_BODYEOB, MW_EOM, 0, 0, 1 },
};

/* The macros sent when a milter asks for none in particular (Postfix's
 * defaults, as far as mailfront knows the values). */
static const char* const default_macros[MW_NSTAGES] = {
  [MW_CONNECT] = "j _ {daemon_name} {daemon_addr} {daemon_port} v {client_addr} {client_port} {client_name}",
  [MW_HELO] = "{tls_version} {cipher}",
  [MW_MAIL] = "i {auth_type} {auth_authen} {mail_addr}",
  [MW_RCPT] = "i {rcpt_addr}",
  [MW_DATA] = "i",
  [MW_EOM] = "i",
  [MW_EOH] = "i",
};

/* The modifications and the action each needs. */
static const struct { char cmd; unsigned action; } mod_actions[] = {
  { SMFIR_ADDHEADER, SMFIF_ADDHDRS }, { SMFIR_INSHEADER, SMFIF_ADDHDRS },
  { SMFIR_CHGHEADER, SMFIF_CHGHDRS }, { SMFIR_REPLBODY, SMFIF_CHGBODY },
  { SMFIR_ADDRCPT, SMFIF_ADDRCPT }, { SMFIR_ADDRCPT_PAR, SMFIF_ADDRCPT_PAR },
  { SMFIR_DELRCPT, SMFIF_DELRCPT }, { SMFIR_CHGFROM, SMFIF_CHGFROM },
  { SMFIR_QUARANTINE, SMFIF_QUARANTINE },
};

enum mstate { M_CLOSED, M_OPEN, M_OFF };

struct milter
{
  const char* text;         /* the $MILTERS item, for logs (in ms->list) */
  struct mw_spec spec;
  enum mstate state;
  int fd;
  struct mw_optneg neg;
  int in_tx;                /* MAIL sent, end of data not yet answered */
  int tx_off;               /* accepted/discarded: nothing more this transaction */
  int skip_body;            /* answered SKIP to a body chunk */
  unsigned connect_ms, command_ms, content_ms;
  int dflt;                 /* enum dflt */
};

enum dflt { D_TEMPFAIL, D_ACCEPT, D_REJECT };
enum quarantine { Q_HEADER, Q_REJECT, Q_TEMPFAIL, Q_DISCARD };
static const char* const dflt_names[] = { "tempfail", "accept", "reject" };
static const char* const quarantine_names[] = { "header", "reject", "tempfail", "discard" };

struct milter_session
{
  int configured;
  str list;                       /* $MILTERS, split in place */
  struct milter* m;
  unsigned n;
  enum quarantine quarantine_mode;
  unsigned long header_max, max_packet;
  const response* sticky;         /* answers every later command */
  response sticky_resp;
  str sticky_text;
  response reply;                 /* the last replycode answer */
  str reply_text;
  str out, in, tmp, val, hdr;     /* packet buffers, a macro value, a header */
  /* the transaction */
  int tx, data_started, late;
  char qid[40];
  unsigned long counter;
  str sender, rcpts, cur_rcpt;
  int fd, base_known;
  off_t base;
  struct mh_scan scan;
  int scanning;
  str chunk;                      /* body bytes in CRLF, not yet sent */
  int last_cr;
  const response* result;         /* the message's refusal, decided in data */
  int discard;
  str quarantine;
  int quarantined;
  /* end of data */
  struct mh_list hl;
  int hl_loaded;
  int bodyfd, body_cr;
  int env_changed;
  struct milter* body_owner;      /* the milter whose REPLBODY is in bodyfd */
  struct plugin* saved_backend;   /* the real back end while discarding */
};

extern struct plugin plugin;

/* $name in seconds (lib/setting.h's rule: 0 or bad -> dflt), in milliseconds. */
static unsigned seconds_ms(const char* name, unsigned long dflt)
{
  const struct env_number spec = { dflt, 1, 0x7fffffffUL / 1000, 0 };
  return (unsigned)(env_setting(name, &spec) * 1000);
}

static int pick(const char* v, const char* const* names, int n, int dflt)
{
  for (int i = 0; v && i < n; i++)
    if (strcasecmp(v, names[i]) == 0) return i;
  return dflt;
}

static void logf_(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
static void logf_(const char* fmt, ...)
{
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  msg1(buf);
}

/* ---- configuration ---- */

/* Postfix's per-milter settings: { address, name=value, ... }. */
enum opt { O_CONNECT, O_COMMAND, O_CONTENT, O_DEFAULT };
static const char* const opt_names[] = { "connect_timeout", "command_timeout", "content_timeout", "default_action" };

static int milter_options(struct milter* m, const struct mw_item* it)
{
  unsigned pos = 0, nl, vl;
  const char* name;
  const char* v;
  int r;
  while ((r = mw_option_next(it->opts, it->optslen, &pos, &name, &nl, &v, &vl)) == 1) {
    size_t k;
    for (k = 0; k < sizeof opt_names / sizeof opt_names[0]; k++)
      if (strlen(opt_names[k]) == nl && strncmp(opt_names[k], name, nl) == 0) break;
    unsigned long secs = 0;
    unsigned ms_ = 0;
    if (k < O_DEFAULT) {
      if (mw_time(v, vl, &secs) < 0 || secs == 0) return -1;
      ms_ = secs > 0x7fffffffUL / 1000 ? 0x7fffffffu : (unsigned)(secs * 1000);
    }
    switch ((enum opt)k) {
    case O_CONNECT: m->connect_ms = ms_; break;
    case O_COMMAND: m->command_ms = ms_; break;
    case O_CONTENT: m->content_ms = ms_; break;
    case O_DEFAULT: {
      int d;
      for (d = 0; d < 3; d++)
        if (strlen(dflt_names[d]) == vl && strncasecmp(dflt_names[d], v, vl) == 0) break;
      if (d == 3) return -1;
      m->dflt = (enum dflt)d;
      break;
    }
    default: return -1;
    }
  }
  return r;
}

static const response* configure(struct milter_session* ms)
{
  if (ms->configured) return 0;
  ms->configured = 1;
  const char* v = session_getenv("MILTERS");
  enum dflt dflt = (enum dflt)pick(session_getenv("MILTER_DEFAULT_ACTION"), dflt_names, 3, D_TEMPFAIL);
  ms->quarantine_mode = (enum quarantine)pick(session_getenv("MILTER_QUARANTINE"), quarantine_names, 4, Q_HEADER);
  unsigned connect_ms = seconds_ms("MILTER_CONNECT_TIMEOUT", 30);
  unsigned command_ms = seconds_ms("MILTER_COMMAND_TIMEOUT", 30);
  unsigned content_ms = seconds_ms("MILTER_CONTENT_TIMEOUT", 300);
  static const struct env_number header_max = { 1048576, 1, 0x7fffffffUL, 0 };
  static const struct env_number max_packet = { 1048576, MW_BODY_CHUNK + 16, 0x7fffffffUL, 0 };
  ms->header_max = env_setting("MILTER_HEADER_MAX", &header_max);
  ms->max_packet = env_setting("MILTER_MAX_PACKET", &max_packet);
  if (!v || !*v) return 0;
  if (!str_copys(&ms->list, v)) return &resp_oom;
  unsigned count = 0, pos = 0;
  struct mw_item it;
  int r;
  while ((r = mw_list_next(ms->list.s, ms->list.len, &pos, &it)) == 1) count++;
  ms->m = calloc(count + 1, sizeof *ms->m);
  if (!ms->m) return &resp_oom;
  pos = 0;
  while (ms->n < count && mw_list_next(ms->list.s, ms->list.len, &pos, &it) == 1) {
    struct milter* m = &ms->m[ms->n++];
    m->fd = -1;
    m->dflt = dflt;
    m->connect_ms = connect_ms;
    m->command_ms = command_ms;
    m->content_ms = content_ms;
    char* text = (char*)it.spec;
    int ok = mw_spec_parse(it.spec, it.speclen, &m->spec) == 0 && milter_options(m, &it) == 0;
    text[it.speclen] = 0;           /* the address ends the item: a separator or the options follow */
    m->text = text;
    if (!ok) {
      warn2("milter: event=config error=bad-milter-entry milter=", m->text);
      m->state = M_OFF;
      ms->sticky = m->dflt == D_ACCEPT ? 0 : m->dflt == D_REJECT ? &resp_cmd_reject : &resp_tempfail;
    }
  }
  if (r < 0) {
    warn1("milter: event=config error=unclosed-brace");
    ms->sticky = dflt == D_ACCEPT ? 0 : dflt == D_REJECT ? &resp_cmd_reject : &resp_tempfail;
  }
  return 0;
}

/* ---- replies ---- */

static const response* sticky(struct milter_session* ms, const response* r)
{
  if (!r) return 0;
  ms->sticky_text.len = 0;
  if (!str_copys(&ms->sticky_text, r->message ? r->message : "")) return &resp_oom;
  ms->sticky_resp.number = r->number;
  ms->sticky_resp.message = ms->sticky_text.s;
  ms->sticky = &ms->sticky_resp;
  return ms->sticky;
}

/* A milter that is down or broke the protocol: close it and apply
 * $MILTER_DEFAULT_ACTION.  Returns the reply (NULL for accept). */
static const response* fail(struct milter_session* ms, struct milter* m, const char* what)
{
  logf_("milter: event=failure milter=%s during=%s error=%s default_action=%s", m->text, what,
        errno ? strerror(errno) : "protocol", dflt_names[m->dflt]);
  if (m->fd >= 0) close(m->fd);
  m->fd = -1;
  m->state = M_OFF;
  m->in_tx = 0;
  switch (m->dflt) {
  case D_ACCEPT: return 0;
  case D_REJECT: return sticky(ms, &resp_cmd_reject);
  case D_TEMPFAIL: break;
  }
  return sticky(ms, &resp_tempfail);
}

/* ---- I/O ---- */

static int send_out(struct milter_session* ms, struct milter* m, unsigned ms_)
{
  int r = nc_send(m->fd, ms->out.s, ms->out.len, ms_);
  ms->out.len = 0;
  return r;
}

static int recv_exact(int fd, char* b, size_t len, unsigned ms_)
{
  while (len > 0) {
    ssize_t n = recv(fd, b, len, 0);
    if (n > 0) { b += n; len -= (size_t)n; continue; }
    if (n == 0) { errno = ECONNRESET; return -1; }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
    if (nc_wait(fd, POLLIN, ms_) != 1) { if (!errno) errno = ETIMEDOUT; return -1; }
  }
  return 0;
}

/* One packet: its payload into ms->in; returns its command byte, or -1. */
static int recv_packet(struct milter_session* ms, struct milter* m, unsigned ms_)
{
  unsigned char h[5];
  if (recv_exact(m->fd, (char*)h, 5, ms_) < 0) return -1;
  unsigned long len = (unsigned long)h[0] << 24 | (unsigned long)h[1] << 16 | (unsigned long)h[2] << 8 | h[3];
  if (len == 0 || len > ms->max_packet) { errno = EPROTO; return -1; }
  if (!str_ready(&ms->in, (unsigned)len)) return -1;
  ms->in.len = (unsigned)len - 1;
  if (ms->in.len && recv_exact(m->fd, ms->in.s, ms->in.len, ms_) < 0) return -1;
  ms->in.s[ms->in.len] = 0;
  return h[4];
}

/* Says QUIT (one second at most) and closes. */
static void quit(struct milter_session* ms, struct milter* m, enum mstate next)
{
  if (m->fd >= 0) {
    ms->out.len = 0;
    if (mw_packet(&ms->out, SMFIC_QUIT, 0, 0)) (void)send_out(ms, m, 1000);
    close(m->fd);
  }
  m->fd = -1;
  m->state = next;
}

/* ---- macros ---- */

static int set_val(struct milter_session* ms, const char* v) { return v && *v && str_copys(&ms->val, v); }

static int mv_j(struct milter_session* ms)
{
  const char* v = getprotoenv("LOCALHOST");
  if (v) return set_val(ms, v);
  char host[256];
  if (gethostname(host, sizeof host - 1) < 0) return 0;
  host[sizeof host - 1] = 0;
  return set_val(ms, host);
}

static int mv_client_name(struct milter_session* ms)
{
  const char* v = getprotoenv("REMOTEHOST");
  return set_val(ms, v ? v : getprotoenv("REMOTEIP") ? "unknown" : 0);
}

static int mv_underscore(struct milter_session* ms)
{
  const char* ip = getprotoenv("REMOTEIP");
  const char* host = getprotoenv("REMOTEHOST");
  if (!ip) return 0;
  return str_copys(&ms->val, host ? host : "unknown") && str_cat3s(&ms->val, " [", ip, "]");
}

static int mv_daemon_name(struct milter_session* ms)
{
  const char* v = session_getenv("MILTER_DAEMON_NAME");
  return set_val(ms, v ? v : "mailfront");
}

static int mv_v(struct milter_session* ms) { return set_val(ms, "mailfront"); }
static int mv_daemon_addr(struct milter_session* ms) { return set_val(ms, getprotoenv("LOCALIP")); }
static int mv_daemon_port(struct milter_session* ms) { return set_val(ms, getprotoenv("LOCALPORT")); }
static int mv_client_addr(struct milter_session* ms) { return set_val(ms, getprotoenv("REMOTEIP")); }
static int mv_client_port(struct milter_session* ms) { return set_val(ms, getprotoenv("REMOTEPORT")); }

static int tls_on(void) { return session_getnum("tls_state", 0) != 0; }
static int mv_tls_version(struct milter_session* ms) { return tls_on() && set_val(ms, session_getstr("tls_protocol")); }
static int mv_cipher(struct milter_session* ms) { return tls_on() && set_val(ms, session_getstr("tls_cipher")); }

static int authed(void) { return session_getnum("authenticated", 0) != 0; }
static int mv_auth_authen(struct milter_session* ms) { return authed() && set_val(ms, session_getstr("auth_user")); }
/* Only when the authenticating module recorded the mechanism. */
static int mv_auth_type(struct milter_session* ms) { return authed() && set_val(ms, session_getstr("auth_mech")); }

static int mv_i(struct milter_session* ms) { return ms->qid[0] && set_val(ms, ms->qid); }
static int mv_mail_addr(struct milter_session* ms) { return ms->tx && str_copy(&ms->val, &ms->sender); }
static int mv_rcpt_addr(struct milter_session* ms) { return str_copy(&ms->val, &ms->cur_rcpt); }

static const struct { const char* name; int (*get)(struct milter_session*); } macro_table[] = {
  { "j", mv_j }, { "_", mv_underscore }, { "v", mv_v }, { "i", mv_i },
  { "daemon_name", mv_daemon_name }, { "daemon_addr", mv_daemon_addr }, { "daemon_port", mv_daemon_port },
  { "client_addr", mv_client_addr }, { "client_port", mv_client_port }, { "client_name", mv_client_name },
  { "tls_version", mv_tls_version }, { "cipher", mv_cipher },
  { "auth_type", mv_auth_type }, { "auth_authen", mv_auth_authen },
  { "mail_addr", mv_mail_addr }, { "rcpt_addr", mv_rcpt_addr },
};

/* Appends the SMFIC_MACRO packet of a stage to ms->out (none if empty). */
static int add_macros(struct milter_session* ms, const struct milter* m, int stage, char cmd)
{
  if (stage < 0) return 1;
  const char* list = m->neg.has_symlist[stage] ? m->neg.symlist[stage].s : default_macros[stage];
  ms->tmp.len = 0;
  if (!str_catc(&ms->tmp, cmd)) return 0;
  unsigned first = ms->tmp.len;
  while (list && *list) {
    while (*list == ' ' || *list == ',') list++;
    size_t n = strcspn(list, " ,");
    if (n == 0) break;
    const char* name = list;
    size_t nl = n;
    list += n;
    if (nl > 2 && name[0] == '{' && name[nl - 1] == '}') { name++; nl -= 2; }
    for (size_t k = 0; k < sizeof macro_table / sizeof macro_table[0]; k++) {
      if (strlen(macro_table[k].name) != nl || strncmp(macro_table[k].name, name, nl) != 0) continue;
      ms->val.len = 0;
      if (!macro_table[k].get(ms)) break;
      int braces = nl > 1;
      if ((braces && !str_catc(&ms->tmp, '{')) || !str_catb(&ms->tmp, name, (unsigned)nl)
          || (braces && !str_catc(&ms->tmp, '}')) || !str_catc(&ms->tmp, 0)
          || !mw_cat0(&ms->tmp, ms->val.s, ms->val.len))
        return 0;
      break;
    }
  }
  if (ms->tmp.len == first) return 1;
  return mw_packet(&ms->out, SMFIC_MACRO, ms->tmp.s, ms->tmp.len);
}

/* ---- one step with one milter ---- */

static int apply_mod(struct milter_session* ms, struct milter* m, int cmd);

/* The answer to a replycode: a 4xx or 5xx reply with its text. */
static enum answer replycode(struct milter_session* ms)
{
  unsigned number;
  if (mw_replycode(ms->in.s, ms->in.len, &number, &ms->reply_text) < 0) return A_FAIL;
  ms->reply.number = number;
  ms->reply.message = ms->reply_text.s;
  return A_REPLY;
}

/* Sends step st (its macros first) with payload data and waits for the
 * answer unless the milter declined the step or asked for no reply. */
static enum answer step(struct milter_session* ms, struct milter* m, enum step st, const char* data, unsigned len)
{
  const struct step_info* si = &steps[st];
  if (m->neg.protocol & si->no) return A_CONTINUE;
  if (st == S_DATA && m->neg.version < 4) return A_CONTINUE;
  unsigned t = si->content ? m->content_ms : m->command_ms;
  ms->out.len = 0;
  if (!add_macros(ms, m, si->macros, si->cmd) || !mw_packet(&ms->out, si->cmd, data, len)) return A_FAIL;
  errno = 0;
  if (send_out(ms, m, t) < 0) return A_FAIL;
  if (m->neg.protocol & si->nr) return A_CONTINUE;
  for (;;) {
    errno = 0;
    int cmd = recv_packet(ms, m, t);
    switch (cmd) {
    case SMFIR_CONTINUE: return A_CONTINUE;
    case SMFIR_ACCEPT: return A_ACCEPT;
    case SMFIR_REJECT: return A_REJECT;
    case SMFIR_TEMPFAIL: return A_TEMPFAIL;
    case SMFIR_DISCARD: return A_DISCARD;
    case SMFIR_SHUTDOWN: return A_TEMPFAIL;
    case SMFIR_CONN_FAIL: return A_TEMPFAIL;
    case SMFIR_REPLYCODE: return replycode(ms);
    case SMFIR_PROGRESS: continue;
    case SMFIR_SKIP:
      if (st == S_BODY && (m->neg.protocol & SMFIP_SKIP)) return A_SKIP;
      return A_FAIL;
    case -1: return A_FAIL;
    default:
      if (st != S_EOM || apply_mod(ms, m, cmd) < 0) return A_FAIL;
      continue;
    }
  }
}

/* ---- connection ---- */

static int connect_milter(struct milter* m)
{
  if (m->spec.family == MW_UNIX) return nc_connect_un(m->spec.host.s, m->connect_ms);
  struct addrinfo hints, *res = 0;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = m->spec.family == MW_INET6 ? AF_INET6 : AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  char port[8];
  snprintf(port, sizeof port, "%u", m->spec.port);
  if (getaddrinfo(m->spec.host.s, port, &hints, &res) != 0 || !res) { errno = EHOSTUNREACH; return -1; }
  int fd = -1;
  for (struct addrinfo* ai = res; ai && fd < 0; ai = ai->ai_next)
    fd = nc_connect_sa(ai->ai_family, ai->ai_addr, ai->ai_addrlen, m->connect_ms);
  freeaddrinfo(res);
  return fd;
}

/* The client as the connect step describes it. */
static int connect_payload(str* p)
{
  const char* ip = getprotoenv("REMOTEIP");
  const char* host = getprotoenv("REMOTEHOST");
  p->len = 0;
  if (host) { if (!mw_cat0(p, host, (unsigned)strlen(host))) return 0; }
  else if (ip) { if (!str_cat3s(p, "[", ip, "]") || !str_catc(p, 0)) return 0; }
  else if (!mw_cat0(p, "localhost", 9)) return 0;
  if (!ip) return str_catc(p, 'U');
  static const struct env_number port_spec = { 0, 0, 65535, 1 };
  const char* pv = getprotoenv("REMOTEPORT");
  unsigned long port = env_number_parse(pv, &port_spec);
  char pb[2] = { (char)(port >> 8), (char)port };
  return str_catc(p, strchr(ip, ':') ? '6' : '4') && str_catb(p, pb, 2) && mw_cat0(p, ip, (unsigned)strlen(ip));
}

/* Connects, negotiates and runs the connect step of every milter that is
 * not connected yet.  Returns a session-wide reply or NULL. */
static const response* open_all(struct milter_session* ms)
{
  const response* r = configure(ms);
  if (r) return r;
  for (unsigned i = 0; i < ms->n && !ms->sticky; i++) {
    struct milter* m = &ms->m[i];
    if (m->state != M_CLOSED) continue;
    errno = 0;
    m->fd = connect_milter(m);
    if (m->fd < 0) { r = fail(ms, m, "connect"); continue; }
    unsigned char neg[12];
    const unsigned v[3] = { MW_VERSION, MW_ACTIONS, MW_PROTOCOL };
    for (int k = 0; k < 3; k++)
      for (int b = 0; b < 4; b++) neg[k * 4 + b] = (unsigned char)(v[k] >> (24 - 8 * b));
    ms->out.len = 0;
    if (!mw_packet(&ms->out, SMFIC_OPTNEG, (const char*)neg, 12) || send_out(ms, m, m->command_ms) < 0
        || recv_packet(ms, m, m->command_ms) != SMFIC_OPTNEG || mw_optneg(ms->in.s, ms->in.len, &m->neg) < 0) {
      r = fail(ms, m, "negotiation");
      continue;
    }
    m->state = M_OPEN;
    logf_("milter: event=negotiated milter=%s version=%u actions=0x%x protocol=0x%x", m->text, m->neg.version,
          m->neg.actions, m->neg.protocol);
    str p = { 0, 0, 0 };
    enum answer a = connect_payload(&p) ? step(ms, m, S_CONNECT, p.s, p.len) : A_FAIL;
    str_free(&p);
    switch (a) {
    case A_CONTINUE: case A_SKIP: break;
    case A_ACCEPT: quit(ms, m, M_OFF); break;
    case A_DISCARD: ms->discard = 2; break;        /* every message of the session */
    case A_REJECT: r = sticky(ms, &resp_cmd_reject); break;
    case A_TEMPFAIL: r = sticky(ms, &resp_tempfail); break;
    case A_REPLY: r = sticky(ms, &ms->reply); break;
    case A_FAIL: r = fail(ms, m, "connect"); break;
    }
    if (a != A_CONTINUE && a != A_FAIL && a != A_SKIP)
      logf_("milter: event=connect milter=%s action=%s", m->text, answer_names[a]);
  }
  return ms->sticky ? ms->sticky : r;
}

static int active(const struct milter* m) { return m->state == M_OPEN && m->in_tx && !m->tx_off; }

/* What an answer means for the transaction: the reply to give, or NULL
 * to go on.  `reject` is the reply for a plain reject at this step. */
static const response* outcome(struct milter_session* ms, struct milter* m, enum step st, enum answer a, const response* reject)
{
  switch (a) {
  case A_CONTINUE: return 0;
  case A_SKIP: m->skip_body = 1; return 0;
  case A_ACCEPT: m->tx_off = 1; return 0;
  case A_DISCARD:
    logf_("milter: event=discard qid=%s milter=%s step=%s", ms->qid, m->text, steps[st].name);
    if (!ms->discard) ms->discard = 1;
    for (unsigned i = 0; i < ms->n; i++) ms->m[i].tx_off = 1;
    return 0;
  case A_REJECT: case A_TEMPFAIL: case A_REPLY: {
    const response* r = a == A_REJECT ? reject : a == A_TEMPFAIL ? &resp_tempfail : &ms->reply;
    logf_("milter: event=refused qid=%s milter=%s step=%s reply=%u", ms->qid, m->text, steps[st].name,
          r->number);
    return r;
  }
  case A_FAIL: {
    const response* r = fail(ms, m, steps[st].name);
    return r;
  }
  }
  return 0;
}

/* Runs a step with every active milter; the first refusal is returned. */
static const response* each(struct milter_session* ms, enum step st, const char* data, unsigned len, const response* reject)
{
  for (unsigned i = 0; i < ms->n; i++) {
    struct milter* m = &ms->m[i];
    if (!active(m)) continue;
    if (st == S_BODY && m->skip_body) continue;
    const response* r = outcome(ms, m, st, step(ms, m, st, data, len), reject);
    if (r) return r;
  }
  return 0;
}

/* ---- the message as it streams ---- */

static int flush_chunk(struct milter_session* ms)
{
  if (ms->chunk.len == 0) return 0;
  const response* r = each(ms, S_BODY, ms->chunk.s, ms->chunk.len, &resp_msg_reject);
  ms->chunk.len = 0;
  if (r) { ms->result = r; return -1; }
  return 0;
}

/* Body bytes with LF lines become CRLF lines in chunks of MW_BODY_CHUNK. */
static int cb_body(void* ctx, const char* b, unsigned len)
{
  struct milter_session* ms = ctx;
  if (!str_ready(&ms->chunk, MW_BODY_CHUNK + 2)) return -1;
  while (len > 0) {
    if (ms->chunk.len + 2 > MW_BODY_CHUNK && flush_chunk(ms) < 0) return -1;
    unsigned room = MW_BODY_CHUNK - 1 - ms->chunk.len;
    unsigned take = len < room ? len : room;
    const char* nl = memchr(b, '\n', take);
    if (nl) take = (unsigned)(nl - b);
    memcpy(ms->chunk.s + ms->chunk.len, b, take);
    ms->chunk.len += take;
    if (take) ms->last_cr = b[take - 1] == '\r';
    b += take;
    len -= take;
    if (nl) {
      if (!ms->last_cr) ms->chunk.s[ms->chunk.len++] = '\r';
      ms->chunk.s[ms->chunk.len++] = '\n';
      ms->last_cr = 0;
      b++;
      len--;
    }
  }
  return 0;
}

static int cb_header(void* ctx, const char* name, unsigned nl, const char* v, unsigned vl)
{
  struct milter_session* ms = ctx;
  while (vl > 0 && (v[vl - 1] == '\n' || v[vl - 1] == '\r')) vl--;
  for (unsigned i = 0; i < ms->n; i++) {
    struct milter* m = &ms->m[i];
    if (!active(m)) continue;
    /* As Sendmail and Postfix: one space (not a tab) after the colon is eaten. */
    unsigned skip = !(m->neg.protocol & SMFIP_HDR_LEADSPC) && vl > 0 && v[0] == ' ';
    str* p = &ms->hdr;
    p->len = 0;
    if (!mw_cat0(p, name, nl)) return -1;
    for (unsigned k = skip; k < vl; k++)
      if (!(v[k] == '\r' && k + 1 < vl && v[k + 1] == '\n') && !str_catc(p, v[k])) return -1;
    if (!str_catc(p, 0)) return -1;
    const response* r = outcome(ms, m, S_HEADER, step(ms, m, S_HEADER, p->s, p->len), &resp_msg_reject);
    if (r) { ms->result = r; return -1; }
  }
  return 0;
}

static int cb_eoh(void* ctx)
{
  struct milter_session* ms = ctx;
  const response* r = each(ms, S_EOH, 0, 0, &resp_msg_reject);
  if (r) { ms->result = r; return -1; }
  return 0;
}

/* The scanner's callbacks, with the session as their context. */
static struct mh_callbacks callbacks(struct milter_session* ms)
{
  struct mh_callbacks cb = { ms, cb_header, cb_eoh, cb_body };
  return cb;
}

static int feed(struct milter_session* ms, const char* b, unsigned long len)
{
  if (ms->result || !ms->scanning) return 0;
  if (!ms->base_known) {
    struct stat st;
    ms->base = ms->fd >= 0 && fstat(ms->fd, &st) == 0 ? st.st_size : 0;
    ms->base_known = 1;
  }
  struct mh_callbacks cb = callbacks(ms);
  if (mh_feed(&ms->scan, b, len, &cb) < 0 && !ms->result) ms->result = &resp_oom;
  return ms->result ? -1 : 0;
}

/* ---- modifications at end of data ---- */

static int load_headers(struct milter_session* ms)
{
  if (ms->hl_loaded) return 0;
  ms->hl_loaded = 1;
  return mh_list_load(&ms->hl, &ms->scan);
}

/* An address as the back end wants it: no angle brackets. */
static void bare(const char** a, unsigned* len)
{
  while (*len > 0 && (**a == ' ' || **a == '\t')) { (*a)++; (*len)--; }
  while (*len > 0 && ((*a)[*len - 1] == ' ' || (*a)[*len - 1] == '\t')) (*len)--;
  if (*len >= 2 && (*a)[0] == '<' && (*a)[*len - 1] == '>') { (*a)++; *len -= 2; }
}

static int del_rcpt(struct milter_session* ms, const char* a, unsigned len)
{
  str keep = { 0, 0, 0 };
  for (unsigned i = 0; i < ms->rcpts.len;) {
    unsigned n = (unsigned)strlen(ms->rcpts.s + i);
    if (!(n == len && strncasecmp(ms->rcpts.s + i, a, len) == 0) && !mw_cat0(&keep, ms->rcpts.s + i, n)) {
      str_free(&keep);
      return -1;
    }
    i += n + 1;
  }
  str_free(&ms->rcpts);
  ms->rcpts = keep;
  return 0;
}

static unsigned get_index(const char* p)
{
  const unsigned char* u = (const unsigned char*)p;
  return (unsigned)u[0] << 24 | (unsigned)u[1] << 16 | (unsigned)u[2] << 8 | u[3];
}

/* One modification packet (in ms->in) of milter m; -1 breaks the protocol. */
static int apply_mod(struct milter_session* ms, struct milter* m, int cmd)
{
  size_t k;
  for (k = 0; k < sizeof mod_actions / sizeof mod_actions[0]; k++)
    if (mod_actions[k].cmd == cmd) break;
  if (k == sizeof mod_actions / sizeof mod_actions[0] || !(m->neg.actions & mod_actions[k].action)) {
    errno = 0;
    return -1;
  }
  const char* s[2];
  unsigned l[2];
  const char* d = ms->in.s;
  unsigned dl = ms->in.len;
  int lead = (m->neg.protocol & SMFIP_HDR_LEADSPC) != 0;
  errno = 0;
  switch (cmd) {
  case SMFIR_ADDHEADER:
    if (mw_strings(d, dl, 2, s, l) < 0 || load_headers(ms) < 0) return -1;
    return mh_add(&ms->hl, s[0], l[0], s[1], l[1], lead);
  case SMFIR_INSHEADER:
  case SMFIR_CHGHEADER: {
    if (dl < 4 || mw_strings(d + 4, dl - 4, 2, s, l) < 0 || load_headers(ms) < 0) return -1;
    unsigned idx = get_index(d);
    if (cmd == SMFIR_INSHEADER) return mh_insert(&ms->hl, idx, s[0], l[0], s[1], l[1], lead);
    return mh_change(&ms->hl, idx, s[0], l[0], s[1], l[1], lead);
  }
  case SMFIR_REPLBODY:
    if (ms->body_owner != m) {
      if (ms->bodyfd >= 0) close(ms->bodyfd);
      ms->bodyfd = scratchfile();
      ms->body_cr = 0;
      ms->body_owner = m;
      if (ms->bodyfd < 0) return -1;
    }
    return mh_body_lf(ms->bodyfd, &ms->body_cr, d, dl);
  case SMFIR_CHGFROM:
    if (mw_strings(d, dl, 1, s, l) < 0 && mw_strings(d, dl, 2, s, l) < 0) return -1;
    bare(&s[0], &l[0]);
    ms->env_changed = 1;
    return str_copyb(&ms->sender, s[0], l[0]) ? 0 : -1;
  case SMFIR_ADDRCPT:
  case SMFIR_ADDRCPT_PAR:
    if (mw_strings(d, dl, 1, s, l) < 0 && mw_strings(d, dl, 2, s, l) < 0) return -1;
    bare(&s[0], &l[0]);
    if (l[0] == 0) return -1;
    ms->env_changed = 1;
    return mw_cat0(&ms->rcpts, s[0], l[0]) ? 0 : -1;
  case SMFIR_DELRCPT:
    if (mw_strings(d, dl, 1, s, l) < 0) return -1;
    bare(&s[0], &l[0]);
    ms->env_changed = 1;
    return del_rcpt(ms, s[0], l[0]);
  case SMFIR_QUARANTINE:
    if (mw_strings(d, dl, 1, s, l) < 0) return -1;
    ms->quarantined = 1;
    return str_copyb(&ms->quarantine, s[0], l[0]) ? 0 : -1;
  }
  return -1;
}

/* ---- discard ---- */

static const response* discard_end(int fd)
{
  (void)fd;
  return &resp_discarded;
}

/* Never written (switch_backend wants a non-const pointer): shared by every
 * session like the tables above. */
static struct plugin discard_backend = { .version = PLUGIN_VERSION, .message_end = discard_end };

static void start_discard(struct milter_session* ms)
{
  struct plugin* prev = switch_backend(&discard_backend);
  if (prev == &discard_backend) return;
  ms->saved_backend = prev;
  if (prev && prev->reset) prev->reset();
  logf_("milter: event=discarded qid=%s", ms->qid);
}

/* ---- hooks ---- */

static void new_qid(struct milter_session* ms)
{
  struct timeval tv;
  gettimeofday(&tv, 0);
  snprintf(ms->qid, sizeof ms->qid, "%lX%05lX%lX", (unsigned long)tv.tv_sec, (unsigned long)tv.tv_usec,
           ++ms->counter);
}

static const response* mf_reset(void)
{
  struct milter_session* ms = plugin_context(&plugin);
  if (!ms) return 0;
  if (ms->saved_backend) {
    switch_backend(ms->saved_backend);
    ms->saved_backend = 0;
  }
  for (unsigned i = 0; i < ms->n; i++) {
    struct milter* m = &ms->m[i];
    if (m->state == M_OPEN && m->in_tx) {
      ms->out.len = 0;
      if (!mw_packet(&ms->out, SMFIC_ABORT, 0, 0) || send_out(ms, m, m->command_ms) < 0) (void)fail(ms, m, "abort");
    }
    m->in_tx = m->tx_off = m->skip_body = 0;
  }
  ms->tx = ms->data_started = ms->late = 0;
  ms->qid[0] = 0;
  ms->sender.len = ms->rcpts.len = ms->cur_rcpt.len = 0;
  ms->fd = -1;
  ms->base_known = 0;
  ms->base = 0;
  if (ms->scanning) mh_scan_free(&ms->scan);
  ms->scanning = 0;
  ms->chunk.len = 0;
  ms->last_cr = 0;
  ms->result = 0;
  if (ms->discard == 1) ms->discard = 0;
  ms->quarantined = 0;
  ms->quarantine.len = 0;
  mh_list_free(&ms->hl);
  ms->hl.changed = 0;
  ms->hl_loaded = 0;
  if (ms->bodyfd >= 0) close(ms->bodyfd);
  ms->bodyfd = -1;
  ms->body_owner = 0;
  ms->env_changed = 0;
  /* Large packet buffers are not kept from one message to the next. */
  if (ms->in.size > 65536u + 64u) str_free(&ms->in);
  return 0;
}

static const response* mf_helo(str* host, str* caps)
{
  struct milter_session* ms = plugin_context(&plugin);
  if (!ms) return &resp_internal;
  (void)caps;
  const response* r = open_all(ms);
  if (r) return r;
  for (unsigned i = 0; i < ms->n; i++) {
    struct milter* m = &ms->m[i];
    if (m->state != M_OPEN) continue;
    str p = { 0, 0, 0 };
    enum answer a = mw_cat0(&p, host->s ? host->s : "", host->len) ? step(ms, m, S_HELO, p.s, p.len) : A_FAIL;
    str_free(&p);
    switch (a) {
    case A_ACCEPT: quit(ms, m, M_OFF); break;
    case A_DISCARD: ms->discard = 2; break;
    case A_REJECT: return sticky(ms, &resp_cmd_reject);
    case A_TEMPFAIL: return sticky(ms, &resp_tempfail);
    case A_REPLY: return sticky(ms, &ms->reply);
    case A_FAIL: if ((r = fail(ms, m, "helo"))) return r; break;
    case A_CONTINUE: case A_SKIP: break;
    }
  }
  return 0;
}

/* "<address>\0" and the ESMTP parameters, each NUL-terminated. */
static int envelope_payload(str* p, const str* addr, const str* params)
{
  p->len = 0;
  if (!str_catc(p, '<') || !str_catb(p, addr->s ? addr->s : "", addr->len) || !str_catc(p, '>')
      || !str_catc(p, 0))
    return 0;
  for (unsigned i = 0; params && i < params->len;) {
    unsigned n = (unsigned)strnlen(params->s + i, params->len - i);
    if (n && !mw_cat0(p, params->s + i, n)) return 0;
    i += n + 1;
  }
  return 1;
}

static const response* send_mail(struct milter_session* ms, const str* params)
{
  for (unsigned i = 0; i < ms->n; i++)
    if (ms->m[i].state == M_OPEN) { ms->m[i].in_tx = 1; ms->m[i].tx_off = ms->m[i].skip_body = 0; }
  str p = { 0, 0, 0 };
  const response* r = envelope_payload(&p, &ms->sender, params) ? each(ms, S_MAIL, p.s, p.len, &resp_cmd_reject)
                                                               : &resp_oom;
  str_free(&p);
  return r;
}

static const response* send_rcpt(struct milter_session* ms, const str* addr, const str* params)
{
  str p = { 0, 0, 0 };
  if (!str_copy(&ms->cur_rcpt, addr)) return &resp_oom;
  const response* r = envelope_payload(&p, addr, params) ? each(ms, S_RCPT, p.s, p.len, &resp_cmd_reject)
                                                         : &resp_oom;
  str_free(&p);
  return r;
}

static const response* mf_sender(str* addr, str* params)
{
  struct milter_session* ms = plugin_context(&plugin);
  if (!ms) return &resp_internal;
  const response* r = open_all(ms);
  if (r) return r;
  if (ms->n == 0) return 0;
  new_qid(ms);
  ms->tx = 1;
  if (!str_copy(&ms->sender, addr)) return &resp_oom;
  ms->rcpts.len = 0;
  if (ms->data_started) { ms->late = 1; return 0; }      /* QMQP/QMTP: all at the end */
  r = send_mail(ms, params);
  if (r) ms->tx = 0;
  return r;
}

static const response* mf_recipient(str* addr, str* params)
{
  struct milter_session* ms = plugin_context(&plugin);
  if (!ms) return &resp_internal;
  if (ms->sticky) return ms->sticky;
  if (ms->n == 0 || !ms->tx) return 0;
  if (!ms->late) {
    const response* r = send_rcpt(ms, addr, params);
    if (r) return r;
  }
  return mw_cat0(&ms->rcpts, addr->s ? addr->s : "", addr->len) ? 0 : &resp_oom;
}

static void start_scan(struct milter_session* ms, int fd)
{
  ms->fd = fd;
  mh_scan_init(&ms->scan, ms->header_max);
  ms->scanning = 1;
}

static const response* mf_data_start(int fd)
{
  struct milter_session* ms = plugin_context(&plugin);
  if (!ms) return &resp_internal;
  const response* r = open_all(ms);
  if (r) return r;
  if (ms->n == 0) return 0;
  ms->data_started = 1;
  ms->fd = fd;
  if (!ms->tx) return 0;                                 /* envelope comes later */
  r = each(ms, S_DATA, 0, 0, &resp_msg_reject);
  if (r) return r;
  start_scan(ms, fd);
  return 0;
}

static const response* mf_data_block(const char* bytes, unsigned long len)
{
  struct milter_session* ms = plugin_context(&plugin);
  if (!ms) return &resp_internal;
  if (ms->n == 0 || ms->late || !ms->tx) return 0;
  if (ms->sticky) return ms->sticky;
  if (feed(ms, bytes, len) < 0) return ms->result;
  return 0;
}

/* QMQP/QMTP: the whole transaction from the message file. */
static const response* late_transaction(struct milter_session* ms, int fd)
{
  const response* r = send_mail(ms, 0);
  for (unsigned i = 0; !r && i < ms->rcpts.len;) {
    str a = { ms->rcpts.s + i, (unsigned)strlen(ms->rcpts.s + i), 0 };
    r = send_rcpt(ms, &a, 0);
    i += a.len + 1;
  }
  if (!r) r = each(ms, S_DATA, 0, 0, &resp_msg_reject);
  if (r) return r;
  start_scan(ms, fd);
  ms->base = 0;
  ms->base_known = 1;
  char* buf = malloc(65536);
  if (!buf) return &resp_oom;
  off_t at = 0;
  for (;;) {
    ssize_t n = pread(fd, buf, 65536, at);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) { r = &resp_internal; break; }
    if (n == 0 || feed(ms, buf, (unsigned long)n) < 0) break;
    at += n;
  }
  free(buf);
  return r ? r : ms->result;
}

/* Writes the edited message over fd. */
static const response* rewrite(struct milter_session* ms, int fd)
{
  int out = scratchfile();
  if (out < 0) return &resp_internal;
  int ok = mh_write(out, fd, ms->base, &ms->scan, &ms->hl, ms->bodyfd) == 0 && lseek(out, 0, SEEK_SET) == 0
    && dup2(out, fd) >= 0 && lseek(fd, 0, SEEK_SET) == 0;
  close(out);
  return ok ? 0 : &resp_internal;
}

static const response* mf_message_end(int fd)
{
  struct milter_session* ms = plugin_context(&plugin);
  if (!ms) return &resp_internal;
  if (ms->sticky) return ms->sticky;
  if (ms->n == 0 || !ms->tx) return 0;
  const response* r = 0;
  if (ms->late) {
    if ((r = open_all(ms))) return r;
    if ((r = late_transaction(ms, fd))) return r;
  }
  if (!ms->scanning) return 0;
  if (!ms->base_known) {                 /* no data block: the file is all prefix */
    struct stat st;
    ms->base = fstat(fd, &st) == 0 ? st.st_size : 0;
    ms->base_known = 1;
  }
  struct mh_callbacks cb = callbacks(ms);
  if (!ms->result && mh_finish(&ms->scan, &cb) < 0 && !ms->result) ms->result = &resp_oom;
  if (!ms->result) flush_chunk(ms);
  if (ms->result) return ms->result;
  if (ms->sticky) return ms->sticky;
  if (ms->hl_loaded == 0 && load_headers(ms) < 0) return &resp_oom;
  for (unsigned i = 0; i < ms->n && !ms->discard; i++) {
    struct milter* m = &ms->m[i];
    if (!active(m)) continue;
    enum answer a = step(ms, m, S_EOM, 0, 0);
    if (ms->bodyfd >= 0 && ms->body_owner == m && mh_body_lf_end(ms->bodyfd, &ms->body_cr) < 0) a = A_FAIL;
    if (a != A_FAIL) m->in_tx = 0;
    r = outcome(ms, m, S_EOM, a, &resp_msg_reject);
    if (r) return r;
  }
  if (ms->sticky) return ms->sticky;
  if (ms->quarantined) {
    logf_("milter: event=quarantine qid=%s mapping=%s", ms->qid, quarantine_names[ms->quarantine_mode]);
    switch (ms->quarantine_mode) {
    case Q_REJECT: return &resp_msg_reject;
    case Q_TEMPFAIL: return &resp_tempfail;
    case Q_DISCARD: ms->discard = ms->discard ? ms->discard : 1; break;
    case Q_HEADER:
      if (mh_insert(&ms->hl, 0, "X-Quarantine", 12, ms->quarantine.s ? ms->quarantine.s : "", ms->quarantine.len, 0) < 0)
        return &resp_oom;
      break;
    }
  }
  if (ms->discard || (ms->env_changed && ms->rcpts.len == 0)) {
    start_discard(ms);
    return 0;
  }
  int content = ms->hl.changed || ms->bodyfd >= 0;
  if (content && (r = rewrite(ms, fd))) return r;
  if (content || ms->env_changed) {
    logf_("milter: event=modified qid=%s headers=%d body=%d envelope=%d", ms->qid, ms->hl.changed,
          ms->bodyfd >= 0, ms->env_changed);
    return backend_resubmit(&ms->sender, &ms->rcpts);
  }
  return 0;
}

/* ---- the session ---- */

static const response* mf_session_open(void** ctx)
{
  struct milter_session* ms = calloc(1, sizeof *ms);
  *ctx = ms;
  if (!ms) return &resp_oom;
  ms->fd = -1;
  ms->bodyfd = -1;
  return 0;
}

/* After the final reset: QUIT to every connected milter (bounded), then
 * every fd and every buffer of the session is released. */
static void mf_session_close(void* ctx)
{
  struct milter_session* ms = ctx;
  if (!ms) return;
  if (ms->saved_backend) switch_backend(ms->saved_backend);
  for (unsigned i = 0; i < ms->n; i++) {
    struct milter* m = &ms->m[i];
    if (m->state == M_OPEN) quit(ms, m, M_OFF);
    else if (m->fd >= 0) close(m->fd);
    str_free(&m->spec.host);
    mw_optneg_free(&m->neg);
  }
  free(ms->m);
  if (ms->scanning) mh_scan_free(&ms->scan);
  mh_list_free(&ms->hl);
  if (ms->bodyfd >= 0) close(ms->bodyfd);
  str* const owned[] = { &ms->list, &ms->sticky_text, &ms->reply_text, &ms->out, &ms->in, &ms->tmp, &ms->val,
                         &ms->hdr, &ms->sender, &ms->rcpts, &ms->cur_rcpt, &ms->chunk, &ms->quarantine };
  for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++) str_free(owned[i]);
  free(ms);
}

struct plugin plugin = {
  .version = PLUGIN_VERSION_4,
  .flags = FLAG_NEED_FILE,
  .reset = mf_reset,
  .helo = mf_helo,
  .sender = mf_sender,
  .recipient = mf_recipient,
  .data_start = mf_data_start,
  .data_block = mf_data_block,
  .message_end = mf_message_end,
  .session_open = mf_session_open,
  .session_close = mf_session_close,
};

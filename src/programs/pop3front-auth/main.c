/* main.c -- pop3front-auth: POP3 authorization state (RFC 1939 USER/PASS,
 * RFC 5034 AUTH, RFC 2449 CAPA) checked through CVM; on success switch to
 * the user and exec the mailbox server.  Usage:
 *   pop3front-auth CVM PROGRAM [ARGS...]
 * Documented for administrators in man/pop3front-auth.8.scd.
 *
 * One struct auth_session holds the connection: the client streams (fd
 * 0/1 as an ibuf/obuf pair, so a TLS transport can be installed later),
 * deadlines, the remembered USER name, counters, the SASL configuration
 * and the CVM reply of a successful login.  Commands go through
 * commands[]; handlers reply and return; `state` says whether the session
 * goes on, ends (QUIT, EOF, limits) or authenticated.  Only main() exits:
 * after an authentication it runs the exec step (authfront_handoff,
 * src/auth/authfront.h, shared with imapfront-auth).
 *
 * Limits: command and SASL lines at most $MAX_LINE_LENGTH bytes (default
 * 4096, CR LF included; longer lines are read to their end and answered
 * `-ERR Line too long`); every read/write waits at most $AUTH_TIMEOUT (else
 * $TIMEOUT, default 1200) seconds; the whole session ends after
 * $AUTH_SESSION_TIMEOUT (else $SESSION_TIMEOUT, default 86400) seconds;
 * each CVM call is bounded by $CVM_TIMEOUT (default 30 s) and the session
 * deadline.
 *
 * Beyond the reference (README policy): a final line without LF is
 * processed intact; AUTH initial responses are not logged (the reference
 * logs the credentials); credentials with a NUL byte or longer than a CVM
 * credential can be (255 bytes) are refused as `-ERR Authentication
 * failed` without asking the CVM; when run as root the supplementary
 * groups are reduced to the user's group before setgid/setuid (the
 * reference keeps the caller's).
 *
 * TLS (beyond the original): with $TLS_CERTFILE (src/tls/tls.h, docs/tls.md
 * "POP3 and IMAP") CAPA lists STLS and STLS (RFC 2595 4) answers `+OK
 * Begin TLS negotiation`, drops input pipelined after it (CVE-2011-0411),
 * handshakes and forgets USER; CAPA no longer lists STLS.  Without TLS
 * configured STLS is an unknown command (`-ERR Unimplemented`, as the
 * reference); inside TLS it is `-ERR Command not permitted when TLS
 * active`; a failed handshake ends the session with status 1.  A login
 * inside TLS cannot exec the server directly (TLS state does not survive
 * exec): authfront_handoff drops to the user, forks the exec path onto a
 * socketpair and relays it (src/tls/tlsrelay.h) with the $TIMEOUT idle
 * limit and the $SESSION_TIMEOUT deadline; the exit status is the
 * server's.  $AUTH_REQUIRES_TLS (set, even empty) and TLS not active
 * (also when TLS is not configured: fails closed): USER, PASS and AUTH
 * answer `-ERR Authentication requires TLS (use STLS)` and CAPA lists
 * neither USER nor SASL. */
#include "auth/check.h"
#include "command.h"
#include "auth/authfront.h"
#include "lib/progenv.h"
#include "lib/clock.h"
#include "auth/cvm.h"
#include "lib/log.h"
#include "auth/sasl.h"
#include "tls/tls.h"
#include "tls/tlsrelay.h"
#include <mailfront/iobuf.h>
#include <mailfront/str.h>
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_CREDENTIAL 255              /* one CVM credential */

enum session_state { RUNNING, ENDED, AUTHENTICATED };

struct auth_session
{
  struct authfront af;          /* streams, TLS, SASL, limits, the login */
  const char* cvm;              /* argv[1] */
  unsigned long max_usercmd, usercmds;
  str line;                     /* current input line */
  str user;                     /* name given by USER */
  int have_user;
  str scratch;                  /* log and reply text */
  int env_exported;             /* SASL already exported the CVM variables */
  int hide_lines;               /* an AUTH failed: until a known command,
                                   lines may be the client's credentials
                                   and are not logged */
  enum session_state state;
  int status;                   /* exit status once ENDED */
};

static const char OK[] = "+OK ";
static const char ERR_SYNTAX[] = "-ERR Syntax error";
static const char ERR_UNIMPL[] = "-ERR Unimplemented";
static const char ERR_INTERNAL[] = "-ERR Internal error";
static const char ERR_TIMEOUT[] = "-ERR Connection timed out";
static const char ERR_TOOLONG[] = "-ERR Line too long";
static const char ERR_AUTHFAIL[] = "-ERR Authentication failed";
static const char ERR_NEEDTLS[] = "-ERR Authentication requires TLS (use STLS)";

static int session_expired(const struct auth_session* s) { return authfront_expired(&s->af); }
static unsigned cvm_deadline(const struct auth_session* s) { return authfront_cvm_deadline(&s->af); }

/* ---- replies ---------------------------------------------------------- */

static void send_line(struct auth_session* s, const char* text, size_t len, int log)
{
  obuf_write(&s->af.out, text, len);
  obuf_write(&s->af.out, "\r\n", 2);
  if (log) log_bytes(0, "", text, len);
}

static void reply(struct auth_session* s, const char* text) { send_line(s, text, strlen(text), 1); }

static void end_session(struct auth_session* s, int status)
{
  s->state = ENDED;
  s->status = status;
}

/* A failed PASS or AUTH: count it; at $MAXAUTHFAIL end the session. */
static void count_failure(struct auth_session* s)
{
  if (authfront_failed(&s->af)) end_session(s, 0);
}

/* ---- commands --------------------------------------------------------- */

typedef void handler(struct auth_session* s, const char* arg, size_t len);

/* STLS may be used: TLS configured and not yet started. */
static int tls_offered(const struct auth_session* s) { return s->af.tls && !tls_active(s->af.tls); }

/* $AUTH_REQUIRES_TLS: no credentials outside TLS (fails closed when TLS
 * is not configured). */
static int login_blocked(const struct auth_session* s) { return s->af.auth_requires_tls && !tls_active(s->af.tls); }

static void cmd_capa(struct auth_session* s, const char* arg, size_t len)
{
  static const char* const caps[] = { "PIPELINING", "TOP", "UIDL", "USER" };
  (void)arg; (void)len;
  str* t = &s->scratch;
  int blocked = login_blocked(s);
  if (sasl_enabled(&s->af.sasl) && !blocked) {
    if (!str_copys(t, "SASL ")) { reply(s, ERR_INTERNAL); return; }
    str mechs = {0, 0, 0};
    int ok = sasl_mechanisms(&s->af.sasl, &mechs) && str_cat(t, &mechs);
    str_free(&mechs);
    if (!ok) { reply(s, ERR_INTERNAL); return; }
  }
  else
    t->len = 0;
  reply(s, OK);
  if (t->len) send_line(s, t->s, t->len, 0);
  for (size_t i = 0; i < sizeof caps / sizeof *caps; i++)
    if (!blocked || strcmp(caps[i], "USER") != 0) send_line(s, caps[i], strlen(caps[i]), 0);
  if (tls_offered(s)) send_line(s, "STLS", 4, 0);
  reply(s, ".");
}

static void cmd_user(struct auth_session* s, const char* arg, size_t len)
{
  if (login_blocked(s)) { reply(s, ERR_NEEDTLS); return; }
  s->usercmds++;
  if (s->max_usercmd > 0 && s->usercmds > s->max_usercmd) {
    reply(s, "-ERR Too many USER commands issued");
    end_session(s, 0);
    return;
  }
  if (len > STR_MAX || !str_copyb(&s->user, arg, (unsigned)len)) { reply(s, ERR_INTERNAL); return; }
  s->have_user = 1;
  reply(s, OK);
}

static void cmd_pass(struct auth_session* s, const char* arg, size_t len)
{
  if (login_blocked(s)) { reply(s, ERR_NEEDTLS); return; }
  if (!s->have_user) { reply(s, "-ERR Send USER first"); return; }
  s->have_user = 0;
  int r = CVME_PERMFAIL;
  str pass = {0, 0, 0};
  if (pop3auth_credential_ok(s->user.s, s->user.len, MAX_CREDENTIAL)
      && pop3auth_credential_ok(arg, len, MAX_CREDENTIAL)) {
    if (!str_copyb(&pass, arg, (unsigned)len)) r = CVME_GENERAL;
    else r = cvm_authenticate_password(s->cvm, s->user.s ? s->user.s : "", s->af.domain, pass.s ? pass.s : "",
                                       1, cvm_deadline(s), &s->af.reply);
  }
  if (pass.s) memset(pass.s, 0, pass.len);
  str_free(&pass);
  if (r == CVME_OK) { s->state = AUTHENTICATED; return; }
  reply(s, r == CVME_PERMFAIL ? ERR_AUTHFAIL : ERR_INTERNAL);
  count_failure(s);
}

static void log_str(const str* t) { log_bytes(0, "", t->s, t->len); }

/* One SASL exchange: `+ CHALLENGE` lines and client lines until a result. */
static int sasl_exchange(struct auth_session* s, struct sasl_state* st, const char* arg, size_t len)
{
  int r = sasl_start(st, arg, len);
  while (r == SASL_CHALLENGE) {
    obuf_write(&s->af.out, "+ ", 2);
    obuf_write(&s->af.out, st->challenge.s, st->challenge.len);
    obuf_write(&s->af.out, "\r\n", 2);
    int toolong;
    int g = ibuf_getline(&s->af.in, &s->line, s->af.max_line, &toolong);
    if (g == 0) return SASL_EOF;
    if (g < 0) return SASL_TEMP_FAIL;
    if (toolong) { st->reason = "bad response"; return SASL_RESP_BAD; }
    size_t l = pop3auth_chomp(s->line.s, s->line.len);
    r = sasl_response(st, s->line.s, l);
  }
  return r;
}

static void cmd_auth(struct auth_session* s, const char* arg, size_t len)
{
  if (login_blocked(s)) { reply(s, ERR_NEEDTLS); s->hide_lines = len > 0; return; }
  if (len == 0) {                       /* list the mechanisms */
    str mechs = {0, 0, 0};
    if (!sasl_mechanisms(&s->af.sasl, &mechs)) { reply(s, ERR_INTERNAL); return; }
    reply(s, OK);
    for (unsigned i = 0; i < mechs.len;) {
      unsigned j = i;
      while (j < mechs.len && mechs.s[j] != ' ') j++;
      if (j > i) send_line(s, mechs.s + i, j - i, 0);
      i = j + 1;
    }
    str_free(&mechs);
    reply(s, ".");
    return;
  }
  struct sasl_state st;
  s->af.sasl.timeout_ms = cvm_deadline(s);
  sasl_state_init(&st, &s->af.sasl);
  int r = sasl_exchange(s, &st, arg, len);
  str* t = &s->scratch;
  if (sasl_log_reason(&st, t)) log_str(t);
  if (sasl_log_line(&st, r, t)) log_str(t);
  if (r == SASL_SUCCESS) {
    /* sasl exported the CVM variables; keep the facts for the exec step */
    cvm_reply_free(&s->af.reply);
    s->af.reply = st.reply;
    memset(&st.reply, 0, sizeof st.reply);
    s->env_exported = 1;
    s->state = AUTHENTICATED;
  }
  else if (r == SASL_TEMP_FAIL && (s->af.in.timedout || s->af.in.error)) {
    /* the connection cannot go on: a read timeout ends the session */
    if (s->af.in.timedout && !session_expired(s)) reply(s, ERR_TIMEOUT);
    end_session(s, 0);
  }
  else {
    /* "-ERR TEXT" on the wire; only TEXT is logged (as the reference) */
    const char* text = sasl_text(r);
    obuf_write(&s->af.out, "-ERR ", 5);
    send_line(s, text, strlen(text), 1);
    s->hide_lines = 1;
    if (r == SASL_EOF) end_session(s, 0);
    else count_failure(s);
  }
  sasl_state_free(&st);
}

static void cmd_quit(struct auth_session* s, const char* arg, size_t len)
{
  (void)arg; (void)len;
  reply(s, OK);
  end_session(s, 0);
}

/* RFC 2595 4: go ahead, handshake, forget what the client said before. */
static void cmd_stls(struct auth_session* s, const char* arg, size_t len)
{
  (void)arg; (void)len;
  if (!tls_offered(s)) { reply(s, "-ERR Command not permitted when TLS active"); return; }
  reply(s, "+OK Begin TLS negotiation");
  str err = {0, 0, 0};
  unsigned long dropped = 0;
  log_parts(0, "Starting TLS handshake", 0, 0, 0);
  int r = tls_start(s->af.tls, &s->af.in, &s->af.out, &dropped, &err);
  if (dropped) log_fmt(0, "STLS: discarded %lu bytes pipelined before the handshake", dropped);
  if (r < 0) {
    log_parts(0, err.s ? err.s : "TLS handshake failed", 0, 0, 0);
    end_session(s, 1);
  }
  else if (tls_params(s->af.tls, &err) == 0)
    log_parts(0, "TLS handshake: ", err.s, 0, 0);
  str_free(&err);
  s->have_user = 0;
  if (s->user.s) memset(s->user.s, 0, s->user.len);
  s->user.len = 0;
}

static int tls_configured(const struct auth_session* s) { return s->af.tls != 0; }

enum argmode { TAKES_NONE, TAKES_OPTIONAL, TAKES_REQUIRED };

static const struct command
{
  const char* name;
  enum argmode arg;
  handler* fn;
  int (*exists)(const struct auth_session* s);   /* NULL: always */
} commands[] = {
  { "AUTH", TAKES_OPTIONAL, cmd_auth, 0 },
  { "CAPA", TAKES_NONE, cmd_capa, 0 },
  { "PASS", TAKES_REQUIRED, cmd_pass, 0 },
  { "QUIT", TAKES_NONE, cmd_quit, 0 },
  { "STLS", TAKES_NONE, cmd_stls, tls_configured },
  { "USER", TAKES_REQUIRED, cmd_user, 0 },
};

/* Log the command line as received, without secrets: PASS's argument,
 * AUTH's initial response and an AUTH "mechanism" that is no registered
 * mechanism name (a client sending `AUTH <base64>`) are replaced. */
static void log_command(const struct auth_session* s, const struct pop3_cmdline* c,
                        const char* line, size_t len)
{
  if (s->hide_lines) {
    log_parts(0, "[line hidden after a failed AUTH]", 0, 0, 0);
    return;
  }
  size_t mlen = pop3_verb_is(c, "AUTH") ? pop3auth_mech_len(c->arg, c->arglen) : 0;
  if (pop3_verb_is(c, "PASS"))
    log_parts(0, "PASS XXXXXXXX", 0, 0, 0);
  else if (mlen > 0 && !sasl_mech_loggable(c->arg, mlen))
    log_parts(0, "AUTH XXXXXXXX", 0, 0, 0);
  else if (pop3_verb_is(c, "AUTH") && mlen < c->arglen) {
    size_t keep = (size_t)(c->arg - line) + mlen;
    str t = {0, 0, 0};
    if (str_copyb(&t, line, (unsigned)keep) && str_cats(&t, " XXXXXXXX")) log_bytes(0, "", t.s, t.len);
    str_free(&t);
  }
  else
    log_bytes(0, "", line, len);
}

static void dispatch(struct auth_session* s, const char* line, size_t len)
{
  struct pop3_cmdline c;
  pop3_split(line, len, &c);
  const struct command* cmd = 0;
  for (size_t i = 0; i < sizeof commands / sizeof *commands && !cmd; i++)
    if (pop3_verb_is(&c, commands[i].name) && (!commands[i].exists || commands[i].exists(s)))
      cmd = &commands[i];
  if (cmd) s->hide_lines = 0;
  log_command(s, &c, line, len);
  if (cmd) {
    if ((cmd->arg == TAKES_NONE && c.arglen > 0) || (cmd->arg == TAKES_REQUIRED && c.arglen == 0))
      reply(s, ERR_SYNTAX);
    else
      cmd->fn(s, c.arg, c.arglen);
    return;
  }
  reply(s, ERR_UNIMPL);
}

/* ---- session ---------------------------------------------------------- */

static int session_init(struct auth_session* s, char** argv)
{
  memset(s, 0, sizeof *s);
  s->cvm = argv[1];
  s->max_usercmd = mf_env_number("MAXUSERCMD", ~0UL / 10);
  return authfront_open(&s->af, argv + 2);
}

static void session_free(struct auth_session* s, int status)
{
  authfront_close(&s->af, status);
  str_free(&s->line);
  str_free(&s->user);
  str_free(&s->scratch);
}

static void session_run(struct auth_session* s)
{
  while (s->state == RUNNING && !s->af.out.error && !s->af.out.timedout) {
    int toolong;
    int r = ibuf_getline(&s->af.in, &s->line, s->af.max_line, &toolong);
    if (r == 0) { end_session(s, 0); return; }
    if (r < 0) {
      if (s->af.in.timedout && !session_expired(s)) reply(s, ERR_TIMEOUT);
      end_session(s, 0);
      return;
    }
    size_t len = pop3auth_chomp(s->line.s, s->line.len);
    if (toolong) {
      reply(s, ERR_TOOLONG);
      continue;
    }
    dispatch(s, s->line.s, len);
    memset(s->line.s, 0, s->line.len);  /* no password left in memory */
  }
  if (s->state == RUNNING)              /* output failed */
    end_session(s, s->af.out.timedout && session_expired(s) ? 0 : 1);
}

static void ops_reply(void* ctx, const char* text) { reply(ctx, text); }

/* The exec step's replies (auth/authfront.h). */
static const struct authfront_ops exec_ops = {
  .reply = ops_reply, .environment = 0,
  .no_user = ERR_INTERNAL, .no_env = ERR_INTERNAL,
  .no_exec = "-ERR Could not execute second stage", .internal = ERR_INTERNAL,
};

int main(int argc, char** argv)
{
  struct auth_session s;
  log_program("pop3front-auth");
  if (argc > 1 && strcmp(argv[1], "--check") == 0) return pop3front_auth_check(argc - 1, argv + 1);
  if (argc < 3) {
    static const char usage[] = "usage: pop3front-auth cvm program [args...]\n";
    ssize_t w = write(2, usage, sizeof usage - 1);
    (void)w;
    return 0;
  }
  signal(SIGPIPE, SIG_IGN);
  if (session_init(&s, argv) < 0) {
    log_parts(LOG_FATAL, "Out of memory", 0, 0, 0);
    session_free(&s, 111);
    return 111;
  }
  int status = 0;
  if (!sasl_config_init(&s.af.sasl))
    reply(&s, "-ERR Could not initialize SASL AUTH");
  else {
    reply(&s, OK);
    session_run(&s);
    if (s.state == AUTHENTICATED) status = authfront_handoff(&s.af, s.env_exported, &exec_ops, &s);
    else status = s.status;
  }
  session_free(&s, status);
  return status;
}

/* main.c -- imapfront-auth: the IMAP not-authenticated state (RFC 3501
 * CAPABILITY, NOOP, LOGOUT, LOGIN, AUTHENTICATE with RFC 4959 initial
 * response) checked through CVM; on success switch to the user and exec
 * the IMAP server in pre-authenticated mode.  Usage:
 *   imapfront-auth PROGRAM [ARGS...]
 * Documented for administrators in man/imapfront-auth.8.scd.
 *
 * One struct imap_session holds the connection: the client streams (fd 0/1
 * as an ibuf/obuf pair, ready for a TLS transport), deadlines, the command
 * being parsed (parse.h), counters, the SASL configuration and the CVM
 * reply of a successful login.  Commands go through commands[]; handlers
 * reply and return; `state` says whether the session goes on, ends or
 * authenticated.  Only main() exits; after an authentication it runs the
 * exec step (authfront_handoff, src/auth/authfront.h, shared with
 * pop3front-auth).
 *
 * Limits: each input line at most $MAX_LINE_LENGTH bytes (default 4096,
 * CR LF included; longer lines are read to their end and answered
 * `TAG BAD Line too long`), each literal at most $MAX_LITERAL_LENGTH bytes
 * (default 4096; a larger {N} is answered `TAG BAD Literal too large`
 * without "+ OK", so the client sends nothing; a larger {N+} cannot be
 * skipped safely and ends the session after that reply); reads/writes
 * wait at most $AUTH_TIMEOUT (else $TIMEOUT, default 1200) seconds; the
 * session ends after $AUTH_SESSION_TIMEOUT (else $SESSION_TIMEOUT, default
 * 86400) seconds; each CVM call is bounded by $CVM_TIMEOUT (default 30 s)
 * and the session deadline.
 *
 * Beyond the reference (README policy): a final line without LF is
 * processed intact; LOGOUT sends `* BYE Logging out` (RFC 3501 7.1.5; the
 * reference's `* Logging out` is not an IMAP response); non-synchronising
 * literals {N+} (RFC 7888) are accepted (the reference calls them an
 * invalid integer and then runs the literal's bytes as a command);
 * credentials with a NUL byte or longer than a CVM credential (255 bytes)
 * fail as `NO LOGIN failed` without asking the CVM; as root the
 * supplementary groups are reduced to the user's group before
 * setgid/setuid.
 *
 * TLS (beyond the original): with $TLS_CERTFILE (src/tls/tls.h, docs/tls.md
 * "POP3 and IMAP") CAPABILITY lists STARTTLS and STARTTLS (RFC 3501 6.2.1,
 * RFC 2595 3.1) answers `TAG OK Begin TLS negotiation now`, drops input
 * pipelined after it (CVE-2011-0411) and handshakes; the client asks for
 * the capabilities again, which no longer list STARTTLS.  Without TLS
 * configured STARTTLS is an unknown command (`TAG BAD Unimplemented
 * command`, as the reference); inside TLS it is `TAG BAD TLS already
 * active`; a failed handshake ends the session with status 1.  A login
 * inside TLS cannot exec the server directly: authfront_handoff drops to the
 * user, forks the normal exec path onto a socketpair and relays it
 * (src/tls/tlsrelay.h) with the $TIMEOUT idle limit and $SESSION_TIMEOUT;
 * the exit status is the server's.  $AUTH_REQUIRES_TLS (set, even
 * empty) and TLS not active (also when TLS is not configured: fails
 * closed): CAPABILITY lists LOGINDISABLED, LOGIN and AUTHENTICATE answer
 * `TAG NO [PRIVACYREQUIRED] Authentication requires TLS (use STARTTLS)`
 * (RFC 3501 6.2.3, RFC 5530). */
#include "auth/check.h"
#include "parse.h"
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
#include <assert.h>
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_MAX_LITERAL 4096
#define MAX_CREDENTIAL 255              /* one CVM credential */

enum session_state { RUNNING, ENDED, AUTHENTICATED };

struct imap_session
{
  struct authfront af;          /* streams, TLS, SASL, limits, the login */
  const char* login_cvm;        /* $CVM_SASL_PLAIN */
  unsigned long max_literal;
  struct imap_command cmd;      /* the command being parsed / run */
  str line;                     /* current input line */
  str literal;                  /* literal bytes being read */
  str scratch;                  /* reply and log text */
  int hide_tags;                /* an AUTHENTICATE failed: until a known
                                   command, lines may be the client's
                                   credentials, their tags are not logged */
  enum session_state state;
  int status;                   /* exit status once ENDED */
};

/* $NAME as a C integer (strtol, any base-10 prefix), 0 when unset. */
static int env_nonzero(const char* name)
{
  const char* v = getenv(name);
  return v && strtol(v, 0, 10) != 0;
}

static int session_expired(const struct imap_session* s) { return authfront_expired(&s->af); }
static unsigned cvm_deadline(const struct imap_session* s) { return authfront_cvm_deadline(&s->af); }

static void end_session(struct imap_session* s, int status)
{
  s->state = ENDED;
  s->status = status;
}

/* ---- replies ---------------------------------------------------------- */

/* "TAG TEXT" (TAG = the command's tag, or "*" when tag == 0), logged
 * (with the tag hidden while s->hide_tags). */
static void reply_tagged(struct imap_session* s, const str* tag, const char* a, const char* b)
{
  assert(s != 0);   /* every caller passes its session (clang analyzer) */
  str* t = &s->scratch;
  int ok = tag ? str_copy(t, tag) : str_copys(t, "*");
  unsigned taglen = t->len;
  ok = ok && str_catc(t, ' ') && str_cats(t, a) && (!b || str_cats(t, b));
  if (!ok) { log_parts(LOG_FATAL, "Out of memory", 0, 0, 0); end_session(s, 111); return; }
  if (tag && s->hide_tags)
    log_bytes(0, "[hidden]", t->s + taglen, t->len - taglen);
  else
    log_bytes(0, "", t->s, t->len);
  obuf_write(&s->af.out, t->s, t->len);
  obuf_write(&s->af.out, "\r\n", 2);
}

static void reply(struct imap_session* s, const char* text) { reply_tagged(s, &s->cmd.tag, text, 0); }
static void untagged(struct imap_session* s, const char* text) { reply_tagged(s, 0, text, 0); }

/* Read timeout, EOF or error on input: end the session (status 0). */
static void input_ended(struct imap_session* s, int r)
{
  if (r < 0 && s->af.in.timedout && !session_expired(s)) untagged(s, "NO Connection timed out");
  end_session(s, 0);
}

static void count_failure(struct imap_session* s)
{
  if (authfront_failed(&s->af)) end_session(s, 0);
}

/* 1 when the argument can be sent as one CVM credential. */
static int credential_ok(const str* a)
{
  return a->len <= MAX_CREDENTIAL && (a->len == 0 || memchr(a->s, 0, a->len) == 0);
}

/* ---- commands --------------------------------------------------------- */

typedef void handler(struct imap_session* s);

static const char NO_NEEDTLS[] = "NO [PRIVACYREQUIRED] Authentication requires TLS (use STARTTLS)";

/* STARTTLS may be used: TLS configured and not yet started. */
static int tls_offered(const struct imap_session* s) { return s->af.tls && !tls_active(s->af.tls); }

/* $AUTH_REQUIRES_TLS: no credentials outside TLS (fails closed when TLS
 * is not configured). */
static int login_blocked(const struct imap_session* s) { return s->af.auth_requires_tls && !tls_active(s->af.tls); }

static void cmd_capability(struct imap_session* s)
{
  str* t = &s->scratch;
  const char* extra = getenv("IMAP_CAPABILITY");
  if (!extra) extra = getenv("CAPABILITY");
  if (!extra) extra = "";
  if (strncasecmp(extra, "IMAP4rev1", 9) == 0) extra += 9;
  while (*extra == ' ' || (*extra >= '\t' && *extra <= '\r')) extra++;
  const char* outbox = getenv("OUTBOX");
  int ok = str_copys(t, "* CAPABILITY IMAP4rev1");
  if (*extra) ok = ok && str_cat2s(t, " ", extra);
  if (env_nonzero("IMAP_ACL")) ok = ok && str_cats(t, " ACL ACL2=UNION");
  if (outbox && *outbox) ok = ok && str_cat2s(t, " XCOURIEROUTBOX=INBOX", outbox);
  if (env_nonzero("IMAP_MOVE_EXPUNGE_TO_TRASH")) ok = ok && str_cats(t, " XMAGICTRASH");
  if (tls_offered(s)) ok = ok && str_cats(t, " STARTTLS");
  if (login_blocked(s)) ok = ok && str_cats(t, " LOGINDISABLED");
  if (!ok) { reply(s, "NO Internal error"); return; }
  log_bytes(0, "", t->s, t->len);
  obuf_write(&s->af.out, t->s, t->len);
  obuf_write(&s->af.out, "\r\n", 2);
  reply(s, "OK CAPABILITY completed");
}

static void cmd_noop(struct imap_session* s) { reply(s, "OK NOOP completed"); }

static void cmd_logout(struct imap_session* s)
{
  untagged(s, "BYE Logging out");
  reply(s, "OK LOGOUT completed");
  end_session(s, 0);
}

static void cmd_login(struct imap_session* s)
{
  struct imap_command* c = &s->cmd;
  if (c->nargs != 2) { reply(s, "BAD LOGIN command requires exactly two arguments"); return; }
  if (login_blocked(s)) { reply(s, NO_NEEDTLS); return; }
  int r = CVME_PERMFAIL;
  if (credential_ok(&c->args[0]) && credential_ok(&c->args[1])
      && str_catb(&c->args[0], "", 0) && str_catb(&c->args[1], "", 0))   /* NUL-terminated */
    r = cvm_authenticate_password(s->login_cvm, c->args[0].s ? c->args[0].s : "", s->af.domain,
                                  c->args[1].s ? c->args[1].s : "", 1, cvm_deadline(s), &s->af.reply);
  if (c->args[1].s) memset(c->args[1].s, 0, c->args[1].len);
  if (r == CVME_OK) { s->state = AUTHENTICATED; return; }
  if (r != CVME_PERMFAIL) log_fmt(LOG_ERR, "CVM failed with code %d", r);
  reply(s, "NO LOGIN failed");
  count_failure(s);
}

/* One SASL exchange: `+ CHALLENGE` lines and client lines until a result. */
static int sasl_exchange(struct imap_session* s, struct sasl_state* st, const str* arg)
{
  int r = sasl_start(st, arg->s, arg->len);
  while (r == SASL_CHALLENGE) {
    obuf_write(&s->af.out, "+ ", 2);
    obuf_write(&s->af.out, st->challenge.s, st->challenge.len);
    obuf_write(&s->af.out, "\r\n", 2);
    int toolong;
    int g = ibuf_getline(&s->af.in, &s->line, s->af.max_line, &toolong);
    if (g == 0) return SASL_EOF;
    if (g < 0) return SASL_TEMP_FAIL;
    if (toolong) { st->reason = "bad response"; return SASL_RESP_BAD; }
    r = sasl_response(st, s->line.s, imap_chomp(s->line.s, s->line.len));
  }
  return r;
}

static void cmd_authenticate(struct imap_session* s)
{
  struct imap_command* c = &s->cmd;
  if (c->nargs < 1 || c->nargs > 2) {
    reply(s, "BAD AUTHENTICATE command requires only one or two arguments");
    s->hide_tags = 1;
    return;
  }
  if (login_blocked(s)) { reply(s, NO_NEEDTLS); s->hide_tags = 1; return; }
  /* "MECH[ INITIAL]", the form the SASL engine takes */
  str arg = {0, 0, 0};
  if (!str_copy(&arg, &c->args[0]) || (c->nargs == 2 && (!str_catc(&arg, ' ') || !str_cat(&arg, &c->args[1])))) {
    str_free(&arg);
    reply(s, "NO Internal error");
    return;
  }
  struct sasl_state st;
  s->af.sasl.timeout_ms = cvm_deadline(s);
  sasl_state_init(&st, &s->af.sasl);
  int r = sasl_exchange(s, &st, &arg);
  if (arg.s) memset(arg.s, 0, arg.len);
  str_free(&arg);
  str* t = &s->scratch;
  if (sasl_log_reason(&st, t)) log_bytes(0, "", t->s, t->len);
  if (sasl_log_line(&st, r, t)) log_bytes(0, "", t->s, t->len);
  if (r == SASL_SUCCESS) {
    cvm_reply_free(&s->af.reply);
    s->af.reply = st.reply;
    memset(&st.reply, 0, sizeof st.reply);
    s->state = AUTHENTICATED;
  }
  else if (r == SASL_EOF || (r == SASL_TEMP_FAIL && (s->af.in.timedout || s->af.in.error)))
    input_ended(s, r == SASL_EOF ? 0 : -1);
  else {
    reply_tagged(s, &c->tag, "NO AUTHENTICATE failed: ", sasl_text(r));
    count_failure(s);
    s->hide_tags = 1;
  }
  sasl_state_free(&st);
}

/* RFC 3501 6.2.1: go ahead, handshake; the client re-asks CAPABILITY. */
static void cmd_starttls(struct imap_session* s)
{
  if (!tls_offered(s)) { reply(s, "BAD TLS already active"); return; }
  reply(s, "OK Begin TLS negotiation now");
  str err = {0, 0, 0};
  unsigned long dropped = 0;
  log_parts(0, "Starting TLS handshake", 0, 0, 0);
  int r = tls_start(s->af.tls, &s->af.in, &s->af.out, &dropped, &err);
  if (dropped) log_fmt(0, "STARTTLS: discarded %lu bytes pipelined before the handshake", dropped);
  if (r < 0) {
    log_parts(0, err.s ? err.s : "TLS handshake failed", 0, 0, 0);
    end_session(s, 1);
  }
  else if (tls_params(s->af.tls, &err) == 0)
    log_parts(0, "TLS handshake: ", err.s, 0, 0);
  str_free(&err);
}

static int tls_configured(const struct imap_session* s) { return s->af.tls != 0; }

enum argmode { TAKES_NONE, TAKES_ARGS };

static const struct command
{
  const char* name;
  enum argmode arg;
  handler* fn;
  int (*exists)(const struct imap_session* s);   /* NULL: always */
} commands[] = {
  { "AUTHENTICATE", TAKES_ARGS, cmd_authenticate, 0 },
  { "CAPABILITY", TAKES_NONE, cmd_capability, 0 },
  { "LOGIN", TAKES_ARGS, cmd_login, 0 },
  { "LOGOUT", TAKES_NONE, cmd_logout, 0 },
  { "NOOP", TAKES_NONE, cmd_noop, 0 },
  { "STARTTLS", TAKES_NONE, cmd_starttls, tls_configured },
};

static void dispatch(struct imap_session* s)
{
  struct imap_command* c = &s->cmd;
  for (size_t i = 0; i < sizeof commands / sizeof *commands; i++) {
    const struct command* cmd = &commands[i];
    if (str_case_diffs(&c->name, cmd->name) != 0 || c->name.len != strlen(cmd->name)) continue;
    if (cmd->exists && !cmd->exists(s)) continue;
    s->hide_tags = 0;
    if (cmd->arg == TAKES_NONE && c->nargs > 0) reply(s, "BAD Syntax error: command requires no arguments");
    else if (cmd->arg == TAKES_ARGS && c->nargs == 0) reply(s, "BAD Syntax error: command requires arguments");
    else cmd->fn(s);
    return;
  }
  reply(s, "BAD Unimplemented command");
}

/* ---- reading one command ---------------------------------------------- */

/* Read one input line: 1 ok (CR LF stripped into *len), 0 the line was
 * too long (answered), -1 end of input (session ended). */
static int read_line(struct imap_session* s, size_t* len)
{
  int toolong;
  int r = ibuf_getline(&s->af.in, &s->line, s->af.max_line, &toolong);
  if (r <= 0) { input_ended(s, r); return -1; }
  *len = imap_chomp(s->line.s, s->line.len);
  if (toolong) {
    /* reply to the tag if the kept part has one */
    struct imap_command* c = &s->cmd;
    if (!c->in_args) {
      imap_command_reset(c);
      imap_parse_line(c, s->line.s, *len);
    }
    reply_tagged(s, c->has_tag ? &c->tag : 0, "BAD Line too long", 0);
    return 0;
  }
  return 1;
}

/* Read the literal announced by the parser into the command. */
static int read_literal(struct imap_session* s)
{
  struct imap_command* c = &s->cmd;
  if (c->literal_len > s->max_literal) {
    reply(s, "BAD Literal too large");
    if (c->literal_plus) end_session(s, 0);   /* its bytes are already coming */
    return -1;
  }
  if (!c->literal_plus) {               /* continuation request */
    log_parts(0, "+ OK", 0, 0, 0);
    obuf_write(&s->af.out, "+ OK\r\n", 6);
  }
  unsigned n = (unsigned)c->literal_len;
  if (!str_ready(&s->literal, n)) { reply(s, "NO Internal error"); end_session(s, 111); return -1; }
  int r = n ? ibuf_read(&s->af.in, s->literal.s, n) : 1;
  if (r <= 0) { input_ended(s, r); return -1; }
  if (!imap_add_literal(c, s->literal.s, n)) { reply(s, "NO Internal error"); end_session(s, 111); return -1; }
  memset(s->literal.s, 0, n);
  return 0;
}

/* Read and parse one whole command (continuation lines after literals). */
static int read_command(struct imap_session* s)
{
  struct imap_command* c = &s->cmd;
  imap_command_reset(c);
  for (;;) {
    size_t len;
    int r = read_line(s, &len);
    if (r <= 0) return -1;
    switch (imap_parse_line(c, s->line.s, len)) {
    case IMAP_PARSE_DONE:
      return 0;
    case IMAP_PARSE_LITERAL:
      if (read_literal(s) < 0) return -1;
      break;
    case IMAP_PARSE_ERROR:
      reply_tagged(s, c->has_tag ? &c->tag : 0, c->error, 0);
      return -1;
    case IMAP_PARSE_NOMEM:
      log_parts(LOG_FATAL, "Out of memory", 0, 0, 0);
      end_session(s, 111);
      return -1;
    }
  }
}

/* ---- session ---------------------------------------------------------- */

static int session_init(struct imap_session* s, char** argv)
{
  const struct env_number literal = { DEFAULT_MAX_LITERAL, 1, 1UL << 30, 0 };
  memset(s, 0, sizeof *s);
  s->login_cvm = getenv("CVM_SASL_PLAIN");
  s->max_literal = env_number("MAX_LITERAL_LENGTH", &literal);
  return authfront_open(&s->af, argv + 1);
}

static void session_free(struct imap_session* s, int status)
{
  authfront_close(&s->af, status);
  imap_command_free(&s->cmd);
  str_free(&s->line);
  str_free(&s->literal);
  str_free(&s->scratch);
}

static void session_run(struct imap_session* s)
{
  while (s->state == RUNNING && !s->af.out.error && !s->af.out.timedout) {
    if (read_command(s) == 0) dispatch(s);
    if (s->line.s) memset(s->line.s, 0, s->line.len);   /* no password left in memory */
  }
  if (s->state == RUNNING)              /* output failed */
    end_session(s, s->af.out.timedout && session_expired(s) ? 0 : 1);
}

/* Dovecot mode: "maildir:" or "mbox:" + the path with every ':' doubled. */
static int dovecot_mailbox(const str* path, str* out)
{
  struct stat st;
  int isdir = path->s && stat(path->s, &st) == 0 && S_ISDIR(st.st_mode);
  unsigned n = path->s ? path->len : 0;   /* an empty str may have no buffer */
  if (!str_copys(out, isdir ? "maildir:" : "mbox:")) return 0;
  for (unsigned i = 0; i < n; i++)
    if (!str_catc(out, path->s[i]) || (path->s[i] == ':' && !str_catc(out, ':'))) return 0;
  return 1;
}

/* The environment beyond the CVM variables (authfront sets those). */
static int set_environment(void* ctx)
{
  struct imap_session* s = ctx;
  const struct cvm_reply* r = &s->af.reply;
  const char* setup = getenv("SETUP_ENV");
  if (setup && strcmp(setup, "dovecot") == 0 && CVM_HAS(r, CVM_FACT_MAILBOX)) {
    str mb = {0, 0, 0};
    int ok = dovecot_mailbox(&r->mailbox, &mb)
      && setenv("DOVECONF_ENV", "1", 1) == 0
      && setenv("MAIL", mb.s, 1) == 0 && setenv("MAILBOX", mb.s, 1) == 0 && setenv("MAILDIR", mb.s, 1) == 0;
    str_free(&mb);
    if (!ok) return -1;
  }
  str tag = {0, 0, 0};
  int ok = str_copy(&tag, &s->cmd.tag) && str_catb(&tag, "", 0)
    && setenv("IMAPLOGINTAG", tag.s ? tag.s : "", 1) == 0
    && setenv("AUTHENTICATED", r->username.s ? r->username.s : "", 1) == 0;
  str_free(&tag);
  return ok ? 0 : -1;
}

static void ops_reply(void* ctx, const char* text) { reply(ctx, text); }

/* The exec step's replies and environment (auth/authfront.h). */
static const struct authfront_ops exec_ops = {
  .reply = ops_reply, .environment = set_environment,
  .no_user = "NO Internal error: could not set UID/GID",
  .no_env = "NO Internal error: could not set environment",
  .no_exec = "NO Could not execute second stage", .internal = "NO Internal error",
};

/* Start-up failure: one untagged line on the wire (and in the log). */
static int startup_fail(const char* text)
{
  log_parts(0, "* ", text, 0, 0);
  obuf out;
  if (obuf_init(&out, 1, 256) == 0) {
    obuf_puts(&out, "* ");
    obuf_puts(&out, text);
    obuf_puts(&out, "\r\n");
    obuf_flush(&out);
    obuf_close(&out);
  }
  return 0;
}

int main(int argc, char** argv)
{
  struct imap_session s;
  log_program("imapfront-auth");
  if (argc > 1 && strcmp(argv[1], "--check") == 0) return imapfront_auth_check(argc - 1, argv + 1);
  if (argc < 2) return startup_fail("NO Usage: imapfront-auth imapd [args ...]");
  if (!getenv("CVM_SASL_PLAIN")) return startup_fail("NO $CVM_SASL_PLAIN is not set");
  signal(SIGPIPE, SIG_IGN);
  if (session_init(&s, argv) < 0) {
    log_parts(LOG_FATAL, "Out of memory", 0, 0, 0);
    session_free(&s, 111);
    return 111;
  }
  int status = 0;
  if (!sasl_config_init(&s.af.sasl))
    untagged(&s, "NO Could not initialize SASL AUTH");
  else {
    untagged(&s, "OK imapfront ready.");
    session_run(&s);
    if (s.state == AUTHENTICATED) status = authfront_handoff(&s.af, 0, &exec_ops, &s);
    else status = s.status;
  }
  session_free(&s, status);
  return status;
}

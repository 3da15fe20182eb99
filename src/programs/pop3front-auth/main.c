/* main.c -- pop3front-auth: POP3 authorization state (RFC 1939 USER/PASS,
 * RFC 5034 AUTH, RFC 2449 CAPA) checked through CVM; on success switch to
 * the user and exec the mailbox server.  Usage:
 *   pop3front-auth CVM PROGRAM [ARGS...]
 * User documentation: man/pop3front-auth.8.scd; log lines: docs/logging.md.
 *
 * This file is the protocol: the command table, the replies and the texts.
 * The session's life, line reading, the SASL challenge loop, STLS, failure
 * counting and the exec step are authfront's (src/auth/authfront.h, shared
 * with imapfront-auth); replies and command logging are POP3's
 * (src/pop3/pop3reply.h, shared with pop3front-maildir).  One struct
 * auth_session holds the connection; handlers reply and return; only
 * main() exits.
 *
 * Behaviour (as the original 2.12 unless said): the greeting is `+OK `;
 * USER NAME answers `+OK ` (at most $MAXUSERCMD USER commands, then `-ERR
 * Too many USER commands issued` ends the session); PASS without USER is
 * `-ERR Send USER first`; a refused login is `-ERR Authentication failed`
 * (a CVM that fails temporarily: `-ERR Internal error`); AUTH without an
 * argument lists the mechanisms; a failed AUTH answers `-ERR TEXT` with
 * the SASL engine's text; at $MAXAUTHFAIL failures the session ends; CAPA
 * lists `SASL MECHS` when mechanisms are configured, then PIPELINING, TOP,
 * UIDL, USER; unknown commands are `-ERR Unimplemented`, a wrong argument
 * count `-ERR Syntax error`; EOF ends the session with status 0.
 *
 * Limits: command and SASL lines at most $MAX_LINE_LENGTH bytes (default
 * 4096, CR LF included; longer lines are read to their end and answered
 * `-ERR Line too long`); every read/write waits at most $AUTH_TIMEOUT (else
 * $TIMEOUT, default 1200) seconds (then `-ERR Connection timed out`); the
 * whole session ends after $AUTH_SESSION_TIMEOUT (else $SESSION_TIMEOUT,
 * default 86400) seconds; each CVM call is bounded by $CVM_TIMEOUT
 * (default 30 s) and the session deadline.
 *
 * Beyond the original: a final line without LF is processed intact; AUTH
 * initial responses are not logged (the original logs the credentials);
 * credentials with a NUL byte or longer than a CVM credential can be (255
 * bytes) are refused as `-ERR Authentication failed` without asking the
 * CVM; when run as root the supplementary groups are reduced to the
 * user's group before setgid/setuid (the original keeps the caller's).
 *
 * TLS (beyond the original): with $TLS_CERTFILE (src/tls/tls.h, docs/tls.md
 * "POP3 and IMAP") CAPA lists STLS and STLS (RFC 2595 4) answers `+OK
 * Begin TLS negotiation`, drops input pipelined after it (CVE-2011-0411),
 * handshakes and forgets USER; CAPA no longer lists STLS.  Without TLS
 * configured STLS is an unknown command (`-ERR Unimplemented`, as the
 * original); inside TLS it is `-ERR Command not permitted when TLS
 * active`; a failed handshake ends the session with status 1.  A login
 * inside TLS runs the server behind the TLS relay (src/tls/tlsrelay.h);
 * the exit status is the server's.  $AUTH_REQUIRES_TLS (set, even empty)
 * and TLS not active (also when TLS is not configured: fails closed):
 * USER, PASS and AUTH answer `-ERR Authentication requires TLS (use
 * STLS)` and CAPA lists neither USER nor SASL. */
#include "auth/check.h"
#include "auth/authfront.h"
#include "auth/cvm.h"
#include "auth/sasl.h"
#include "lib/log.h"
#include "lib/progenv.h"
#include "pop3/pop3cmd.h"
#include "pop3/pop3reply.h"
#include <mailfront/iobuf.h>
#include <mailfront/str.h>
#include <string.h>
#include <unistd.h>

struct auth_session
{
  struct authfront af;          /* streams, TLS, SASL, limits, the login */
  const char* cvm;              /* argv[1] */
  unsigned long max_usercmd, usercmds;
  str line;                     /* current input line */
  str user;                     /* name given by USER */
  int have_user;
  str scratch;                  /* reply text */
};

static const char ERR_AUTHFAIL[] = "-ERR Authentication failed";
static const char ERR_NEEDTLS[] = "-ERR Authentication requires TLS (use STLS)";

static void reply(struct auth_session* s, const char* text) { pop3_reply(&s->af.out, text); }
static void line(struct auth_session* s, const char* text, size_t len) { pop3_line(&s->af.out, text, len); }

/* ---- commands --------------------------------------------------------- */

typedef void handler(struct auth_session* s, const char* arg, size_t len);

static void cmd_capa(struct auth_session* s, const char* arg, size_t len)
{
  (void)arg; (void)len;
  str* t = &s->scratch;
  int blocked = authfront_login_blocked(&s->af);
  int sasl = sasl_enabled(&s->af.sasl) && !blocked;
  if (sasl) {
    str mechs = {0, 0, 0};
    int ok = str_copys(t, "SASL ") && sasl_mechanisms(&s->af.sasl, &mechs) && str_cat(t, &mechs) && str_catb(t, "", 0);
    str_free(&mechs);
    if (!ok) { reply(s, POP3_ERR_INTERNAL); return; }
  }
  pop3_capa(&s->af.out, sasl ? t->s : 0, !blocked, authfront_tls_offered(&s->af));
}

static void cmd_user(struct auth_session* s, const char* arg, size_t len)
{
  if (authfront_login_blocked(&s->af)) { reply(s, ERR_NEEDTLS); return; }
  s->usercmds++;
  if (s->max_usercmd > 0 && s->usercmds > s->max_usercmd) {
    reply(s, "-ERR Too many USER commands issued");
    authfront_end(&s->af, 0);
    return;
  }
  if (len > STR_MAX || !str_copyb(&s->user, arg, (unsigned)len)) { reply(s, POP3_ERR_INTERNAL); return; }
  s->have_user = 1;
  reply(s, POP3_OK);
}

static void cmd_pass(struct auth_session* s, const char* arg, size_t len)
{
  if (authfront_login_blocked(&s->af)) { reply(s, ERR_NEEDTLS); return; }
  if (!s->have_user) { reply(s, "-ERR Send USER first"); return; }
  s->have_user = 0;
  int r = CVME_PERMFAIL;
  str pass = {0, 0, 0};
  if (authfront_credential_ok(s->user.s, s->user.len) && authfront_credential_ok(arg, len)) {
    if (!str_copyb(&pass, arg, (unsigned)len)) r = CVME_GENERAL;
    else r = cvm_authenticate_password(s->cvm, s->user.s ? s->user.s : "", s->af.domain, pass.s ? pass.s : "",
                                       1, authfront_cvm_deadline(&s->af), &s->af.reply);
  }
  if (pass.s) memset(pass.s, 0, pass.len);
  str_free(&pass);
  if (r == CVME_OK) { authfront_authenticated(&s->af); return; }
  reply(s, r == CVME_PERMFAIL ? ERR_AUTHFAIL : POP3_ERR_INTERNAL);
  authfront_failed(&s->af);
}

static void cmd_auth(struct auth_session* s, const char* arg, size_t len)
{
  if (authfront_login_blocked(&s->af)) { reply(s, ERR_NEEDTLS); s->af.hide_input = len > 0; return; }
  if (len > 0) { authfront_sasl(&s->af, &s->line, arg, len); return; }
  str mechs = {0, 0, 0};                /* no argument: list the mechanisms */
  if (!sasl_mechanisms(&s->af.sasl, &mechs)) { reply(s, POP3_ERR_INTERNAL); return; }
  reply(s, POP3_OK);
  for (unsigned i = 0; i < mechs.len;) {
    unsigned j = i;
    while (j < mechs.len && mechs.s[j] != ' ') j++;
    if (j > i) line(s, mechs.s + i, j - i);
    i = j + 1;
  }
  str_free(&mechs);
  reply(s, ".");
}

static void cmd_quit(struct auth_session* s, const char* arg, size_t len)
{
  (void)arg; (void)len;
  reply(s, POP3_OK);
  authfront_end(&s->af, 0);
}

/* RFC 2595 4: go ahead, handshake, forget what the client said before. */
static void cmd_stls(struct auth_session* s, const char* arg, size_t len)
{
  (void)arg; (void)len;
  if (!authfront_tls_offered(&s->af)) { reply(s, "-ERR Command not permitted when TLS active"); return; }
  reply(s, "+OK Begin TLS negotiation");
  authfront_starttls(&s->af, "STLS");
  s->have_user = 0;
  if (s->user.s) memset(s->user.s, 0, s->user.len);
  s->user.len = 0;
}

static const struct command
{
  const char* name;
  enum pop3_argmode arg;
  handler* fn;
  int (*exists)(const struct authfront* af);    /* NULL: always */
} commands[] = {
  { "AUTH", POP3_TAKES_OPTIONAL, cmd_auth, 0 },
  { "CAPA", POP3_TAKES_NONE, cmd_capa, 0 },
  { "PASS", POP3_TAKES_REQUIRED, cmd_pass, 0 },
  { "QUIT", POP3_TAKES_NONE, cmd_quit, 0 },
  { "STLS", POP3_TAKES_NONE, cmd_stls, authfront_tls_configured },
  { "USER", POP3_TAKES_REQUIRED, cmd_user, 0 },
};

static const struct command* find(const struct auth_session* s, const struct pop3_cmdline* c)
{
  for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
    if (pop3_verb_is(c, commands[i].name) && (!commands[i].exists || commands[i].exists(&s->af)))
      return &commands[i];
  return 0;
}

static void dispatch(struct auth_session* s, const char* text, size_t len)
{
  struct pop3_cmdline c;
  pop3_split(text, len, &c);
  const struct command* cmd = find(s, &c);
  if (cmd) s->af.hide_input = 0;
  pop3_log_command(&c, text, len, s->af.hide_input);
  if (!cmd) reply(s, POP3_ERR_UNIMPL);
  else if (!pop3_arg_fits(cmd->arg, &c)) reply(s, POP3_ERR_SYNTAX);
  else cmd->fn(s, c.arg, c.arglen);
}

/* ---- session ---------------------------------------------------------- */

static void step(void* ctx)
{
  struct auth_session* s = ctx;
  size_t len;
  int toolong;
  if (authfront_getline(&s->af, &s->line, &len, &toolong) < 0) return;
  if (toolong) reply(s, POP3_ERR_TOOLONG);
  else dispatch(s, s->line.s, len);
  memset(s->line.s, 0, s->line.len);    /* no password left in memory */
}

static void proto_reply(void* ctx, const char* text) { reply(ctx, text); }
static void proto_sasl_failed(void* ctx, const char* text) { pop3_sasl_failed(&((struct auth_session*)ctx)->af.out, text); }

static const struct authfront_proto pop3 = {
  .reply = proto_reply, .notice = proto_reply, .sasl_failed = proto_sasl_failed, .step = step,
  .environment = 0, .eof_replies = 1,
  .greeting = POP3_OK, .no_sasl = "-ERR Could not initialize SASL AUTH", .timed_out = POP3_ERR_TIMEOUT,
  .no_user = POP3_ERR_INTERNAL, .no_env = POP3_ERR_INTERNAL,
  .no_exec = "-ERR Could not execute second stage", .internal = POP3_ERR_INTERNAL,
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
  memset(&s, 0, sizeof s);
  s.cvm = argv[1];
  s.max_usercmd = mf_env_number("MAXUSERCMD", ~0UL / 10);
  int status = authfront_run(&s.af, argv + 2, &pop3, &s);
  str_free(&s.line);
  str_free(&s.user);
  str_free(&s.scratch);
  return status;
}

/* main.c -- imapfront-auth: the IMAP not-authenticated state (RFC 3501
 * CAPABILITY, NOOP, LOGOUT, LOGIN, AUTHENTICATE with RFC 4959 initial
 * response) checked through CVM; on success switch to the user and exec
 * the IMAP server in pre-authenticated mode.  Usage:
 *   imapfront-auth PROGRAM [ARGS...]
 * User documentation: man/imapfront-auth.8.scd; log lines: docs/logging.md.
 *
 * This file is the protocol: the command table, reading a command with
 * its literals (parse.h), the tagged replies, the log lines and the
 * server's environment.  The session's life, line reading, the SASL
 * challenge loop, STARTTLS, failure counting and the exec step are
 * authfront's (src/auth/authfront.h, shared with pop3front-auth).  One
 * struct imap_session holds the connection; handlers reply and return;
 * only main() exits.
 *
 * Behaviour (as the original 2.12 unless said): every reply is `TAG TEXT`
 * (TAG the command's tag, or `*`); the greeting is `* OK imapfront
 * ready.`; without PROGRAM `* NO Usage: imapfront-auth imapd [args ...]`,
 * without $CVM_SASL_PLAIN `* NO $CVM_SASL_PLAIN is not set` (exit 0);
 * LOGIN USER PASS checks through the CVM $CVM_SASL_PLAIN (a refusal is
 * `TAG NO LOGIN failed`, a wrong argument count `TAG BAD LOGIN command
 * requires exactly two arguments`); AUTHENTICATE MECH [INITIAL] runs the
 * SASL exchange (`+ CHALLENGE` lines; a failure is `TAG NO AUTHENTICATE
 * failed: TEXT`); at $MAXAUTHFAIL failures the session ends; unknown
 * commands are `TAG BAD Unimplemented command`.  After a login the server
 * gets $IMAPLOGINTAG (the login's tag) and $AUTHENTICATED (the user name)
 * besides the CVM variables, and with $SETUP_ENV=dovecot also
 * $DOVECONF_ENV=1 and $MAIL, $MAILBOX, $MAILDIR (`maildir:` or `mbox:` and
 * the mailbox path with every `:` doubled); it answers the login itself.
 * CAPABILITY lists IMAP4rev1, then $IMAP_CAPABILITY (else $CAPABILITY),
 * `ACL ACL2=UNION` when $IMAP_ACL is a non-zero number,
 * `XCOURIEROUTBOX=INBOX$OUTBOX` when $OUTBOX is set, XMAGICTRASH when
 * $IMAP_MOVE_EXPUNGE_TO_TRASH is a non-zero number.
 *
 * Limits: each input line at most $MAX_LINE_LENGTH bytes (default 4096,
 * CR LF included; longer lines are read to their end and answered
 * `TAG BAD Line too long`), each literal at most $MAX_LITERAL_LENGTH bytes
 * (default 4096; a larger {N} is answered `TAG BAD Literal too large`
 * without "+ OK", so the client sends nothing; a larger {N+} cannot be
 * skipped safely and ends the session after that reply); reads/writes
 * wait at most $AUTH_TIMEOUT (else $TIMEOUT, default 1200) seconds (then
 * `* NO Connection timed out`); the session ends after
 * $AUTH_SESSION_TIMEOUT (else $SESSION_TIMEOUT, default 86400) seconds;
 * each CVM call is bounded by $CVM_TIMEOUT (default 30 s) and the session
 * deadline.
 *
 * Beyond the original: a final line without LF is processed intact;
 * LOGOUT sends `* BYE Logging out` (RFC 3501 7.1.5; the original's `*
 * Logging out` is not an IMAP response); non-synchronising literals {N+}
 * (RFC 7888) are accepted (the original calls them an invalid integer and
 * then runs the literal's bytes as a command); credentials with a NUL
 * byte or longer than a CVM credential (255 bytes) fail as `NO LOGIN
 * failed` without asking the CVM; as root the supplementary groups are
 * reduced to the user's group before setgid/setuid.
 *
 * TLS (beyond the original): with $TLS_CERTFILE (src/tls/tls.h, docs/tls.md
 * "POP3 and IMAP") CAPABILITY lists STARTTLS and STARTTLS (RFC 3501 6.2.1,
 * RFC 2595 3.1) answers `TAG OK Begin TLS negotiation now`, drops input
 * pipelined after it (CVE-2011-0411) and handshakes; the client asks for
 * the capabilities again, which no longer list STARTTLS.  Without TLS
 * configured STARTTLS is an unknown command (`TAG BAD Unimplemented
 * command`, as the original); inside TLS it is `TAG BAD TLS already
 * active`; a failed handshake ends the session with status 1.  A login
 * inside TLS runs the server behind the TLS relay (src/tls/tlsrelay.h); the
 * exit status is the server's.  $AUTH_REQUIRES_TLS (set, even empty) and
 * TLS not active (also when TLS is not configured: fails closed):
 * CAPABILITY lists LOGINDISABLED, LOGIN and AUTHENTICATE answer `TAG NO
 * [PRIVACYREQUIRED] Authentication requires TLS (use STARTTLS)` (RFC 3501
 * 6.2.3, RFC 5530). */
#include "auth/check.h"
#include "parse.h"
#include "auth/authfront.h"
#include "auth/cvm.h"
#include "auth/sasl.h"
#include "lib/log.h"
#include "lib/progenv.h"
#include <mailfront/iobuf.h>
#include <mailfront/str.h>
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define DEFAULT_MAX_LITERAL 4096

struct imap_session
{
  struct authfront af;          /* streams, TLS, SASL, limits, the login */
  const char* login_cvm;        /* $CVM_SASL_PLAIN */
  unsigned long max_literal;
  struct imap_command cmd;      /* the command being parsed / run */
  str line;                     /* current input line */
  str literal;                  /* literal bytes being read */
  str scratch;                  /* reply text */
};

/* $NAME as a C integer (strtol, any base-10 prefix), 0 when unset. */
static int env_nonzero(const char* name)
{
  const char* v = getenv(name);
  return v && strtol(v, 0, 10) != 0;
}

/* ---- log lines -------------------------------------------------------- */

/* The tag in a log line: the command's tag is shown as "[hidden]" after a
 * failed AUTHENTICATE (af.hide_input) until a known command arrives: the
 * client's next lines may be its credentials, parsed as a tag. */
#define HIDDEN SASL_LOG_HIDDEN

/* A response line "TAG TEXT" (taglen bytes of tag; hide: log the tag as
 * "[hidden]"): classic the line (the original's); kv event=reply tag=TAG
 * result=WORD (the status word, lower case: ok, no, bad, bye,
 * capability) text=REST. */
static void log_response(const char* line, size_t len, size_t taglen, int hide)
{
  if (log_get_format() != LOG_KV) {
    if (hide) log_bytes(0, HIDDEN, line + taglen, len - taglen);
    else log_bytes(0, "", line, len);
    return;
  }
  const char* text = line + taglen + (taglen < len);
  size_t tlen = len - (size_t)(text - line);
  size_t w = 0;
  while (w < tlen && text[w] != ' ') w++;
  str word = {0, 0, 0};
  if (!str_copyb(&word, text, (unsigned)w)) return;
  for (unsigned i = 0; i < word.len; i++)
    if (word.s[i] >= 'A' && word.s[i] <= 'Z') word.s[i] = (char)(word.s[i] - 'A' + 'a');
  size_t rest = w < tlen ? w + 1 : tlen;
  struct log_field f[3] = { { "tag", hide ? HIDDEN : line, hide ? -1 : (long)taglen },
                            { "result", word.s ? word.s : "", (long)word.len },
                            { "text", text + rest, (long)(tlen - rest) } };
  log_event("reply", f, tlen > rest ? 3 : 2);
  str_free(&word);
}

/* How a command's arguments appear in its kv command event. */
enum arglog { ARGS_NONE, ARGS_USER, ARGS_MECH };

/* A command (kv only: the original logs no IMAP command): event=command
 * tag=TAG command=NAME, with arg= the user name of LOGIN (never the
 * password) or the mechanism of AUTHENTICATE (never the initial
 * response; "[hidden]" when it is no mechanism name). */
static void log_command(const struct imap_session* s, const char* name, enum arglog how)
{
  const struct imap_command* c = &s->cmd;
  int hide = s->af.hide_input;
  if (log_get_format() != LOG_KV) return;
  str upper = {0, 0, 0};
  if (!name && !hide && str_copy(&upper, &c->name))
    for (unsigned i = 0; i < upper.len; i++)
      if (upper.s[i] >= 'a' && upper.s[i] <= 'z') upper.s[i] = (char)(upper.s[i] - 'a' + 'A');
  if (!name) name = hide ? HIDDEN : upper.s ? upper.s : "";
  struct log_field f[3] = { { "tag", hide ? HIDDEN : c->tag.s, hide ? -1 : (long)c->tag.len },
                            { "command", name, name == upper.s ? (long)upper.len : -1 }, { "arg", 0, 0 } };
  if (how != ARGS_NONE && c->nargs > 0) {
    int shown = how == ARGS_USER || sasl_mech_loggable(c->args[0].s, c->args[0].len);
    f[2].val = shown ? c->args[0].s : HIDDEN;
    f[2].len = shown ? (long)c->args[0].len : -1;
  }
  log_event("command", f, f[2].val ? 3 : 2);
  str_free(&upper);
}

/* ---- replies ---------------------------------------------------------- */

/* "TAG TEXT" to the client and the log; tag 0: "*".  The command's tag is
 * logged as "[hidden]" while af.hide_input. */
static void reply_tagged(struct imap_session* s, const str* tag, const char* a, const char* b)
{
  assert(s != 0);   /* every caller passes its session (clang analyzer) */
  str* t = &s->scratch;
  int ok = tag ? str_copy(t, tag) : str_copys(t, "*");
  unsigned taglen = t->len;
  ok = ok && str_catc(t, ' ') && str_cats(t, a) && (!b || str_cats(t, b));
  if (!ok) { log_parts(LOG_FATAL, "Out of memory", 0, 0, 0); authfront_end(&s->af, 111); return; }
  log_response(t->s, t->len, taglen, tag && s->af.hide_input);
  obuf_write(&s->af.out, t->s, t->len);
  obuf_write(&s->af.out, "\r\n", 2);
}

static void reply(struct imap_session* s, const char* text) { reply_tagged(s, &s->cmd.tag, text, 0); }
static void untagged(struct imap_session* s, const char* text) { reply_tagged(s, 0, text, 0); }

/* ---- commands --------------------------------------------------------- */

typedef void handler(struct imap_session* s);

static const char NO_NEEDTLS[] = "NO [PRIVACYREQUIRED] Authentication requires TLS (use STARTTLS)";

static void cmd_capability(struct imap_session* s)
{
  str t = {0, 0, 0};
  const char* extra = getenv("IMAP_CAPABILITY");
  if (!extra) extra = getenv("CAPABILITY");
  if (!extra) extra = "";
  if (strncasecmp(extra, "IMAP4rev1", 9) == 0) extra += 9;
  while (*extra == ' ' || (*extra >= '\t' && *extra <= '\r')) extra++;
  const char* outbox = getenv("OUTBOX");
  int ok = str_copys(&t, "CAPABILITY IMAP4rev1");
  if (*extra) ok = ok && str_cat2s(&t, " ", extra);
  if (env_nonzero("IMAP_ACL")) ok = ok && str_cats(&t, " ACL ACL2=UNION");
  if (outbox && *outbox) ok = ok && str_cat2s(&t, " XCOURIEROUTBOX=INBOX", outbox);
  if (env_nonzero("IMAP_MOVE_EXPUNGE_TO_TRASH")) ok = ok && str_cats(&t, " XMAGICTRASH");
  if (authfront_tls_offered(&s->af)) ok = ok && str_cats(&t, " STARTTLS");
  if (authfront_login_blocked(&s->af)) ok = ok && str_cats(&t, " LOGINDISABLED");
  if (!ok) reply(s, "NO Internal error");
  else {
    untagged(s, t.s);
    reply(s, "OK CAPABILITY completed");
  }
  str_free(&t);
}

static void cmd_noop(struct imap_session* s) { reply(s, "OK NOOP completed"); }

static void cmd_logout(struct imap_session* s)
{
  untagged(s, "BYE Logging out");
  reply(s, "OK LOGOUT completed");
  authfront_end(&s->af, 0);
}

static void cmd_login(struct imap_session* s)
{
  struct imap_command* c = &s->cmd;
  if (c->nargs != 2) { reply(s, "BAD LOGIN command requires exactly two arguments"); return; }
  if (authfront_login_blocked(&s->af)) { reply(s, NO_NEEDTLS); return; }
  int r = CVME_PERMFAIL;
  if (authfront_credential_ok(c->args[0].s, c->args[0].len) && authfront_credential_ok(c->args[1].s, c->args[1].len)
      && str_catb(&c->args[0], "", 0) && str_catb(&c->args[1], "", 0))   /* NUL-terminated */
    r = cvm_authenticate_password(s->login_cvm, c->args[0].s ? c->args[0].s : "", s->af.domain,
                                  c->args[1].s ? c->args[1].s : "", 1, authfront_cvm_deadline(&s->af), &s->af.reply);
  if (c->args[1].s) memset(c->args[1].s, 0, c->args[1].len);
  if (r == CVME_OK) { authfront_authenticated(&s->af); return; }
  if (r != CVME_PERMFAIL) log_fmt(LOG_ERR, "CVM failed with code %d", r);
  reply(s, "NO LOGIN failed");
  authfront_failed(&s->af);
}

static void cmd_authenticate(struct imap_session* s)
{
  struct imap_command* c = &s->cmd;
  if (c->nargs < 1 || c->nargs > 2) {
    reply(s, "BAD AUTHENTICATE command requires only one or two arguments");
    s->af.hide_input = 1;
    return;
  }
  if (authfront_login_blocked(&s->af)) { reply(s, NO_NEEDTLS); s->af.hide_input = 1; return; }
  /* "MECH[ INITIAL]", the form the SASL engine takes */
  str arg = {0, 0, 0};
  if (!str_copy(&arg, &c->args[0]) || (c->nargs == 2 && (!str_catc(&arg, ' ') || !str_cat(&arg, &c->args[1]))))
    reply(s, "NO Internal error");
  else
    authfront_sasl(&s->af, &s->line, arg.s, arg.len);
  if (arg.s) memset(arg.s, 0, arg.len);
  str_free(&arg);
}

/* RFC 3501 6.2.1: go ahead, handshake; the client re-asks CAPABILITY. */
static void cmd_starttls(struct imap_session* s)
{
  if (!authfront_tls_offered(&s->af)) { reply(s, "BAD TLS already active"); return; }
  reply(s, "OK Begin TLS negotiation now");
  authfront_starttls(&s->af, "STARTTLS");
}

enum argmode { TAKES_NONE, TAKES_ARGS };

static const struct command
{
  const char* name;
  enum argmode arg;
  enum arglog log;
  handler* fn;
  int (*exists)(const struct authfront* af);    /* NULL: always */
} commands[] = {
  { "AUTHENTICATE", TAKES_ARGS, ARGS_MECH, cmd_authenticate, 0 },
  { "CAPABILITY", TAKES_NONE, ARGS_NONE, cmd_capability, 0 },
  { "LOGIN", TAKES_ARGS, ARGS_USER, cmd_login, 0 },
  { "LOGOUT", TAKES_NONE, ARGS_NONE, cmd_logout, 0 },
  { "NOOP", TAKES_NONE, ARGS_NONE, cmd_noop, 0 },
  { "STARTTLS", TAKES_NONE, ARGS_NONE, cmd_starttls, authfront_tls_configured },
};

static const struct command* find(const struct imap_session* s)
{
  const struct imap_command* c = &s->cmd;
  for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
    if (str_case_diffs(&c->name, commands[i].name) == 0 && c->name.len == strlen(commands[i].name)
        && (!commands[i].exists || commands[i].exists(&s->af)))
      return &commands[i];
  return 0;
}

static void dispatch(struct imap_session* s)
{
  const struct command* cmd = find(s);
  if (cmd) s->af.hide_input = 0;
  log_command(s, cmd ? cmd->name : 0, cmd ? cmd->log : ARGS_NONE);
  if (!cmd) reply(s, "BAD Unimplemented command");
  else if (cmd->arg == TAKES_NONE && s->cmd.nargs > 0) reply(s, "BAD Syntax error: command requires no arguments");
  else if (cmd->arg == TAKES_ARGS && s->cmd.nargs == 0) reply(s, "BAD Syntax error: command requires arguments");
  else cmd->fn(s);
}

/* ---- reading one command ---------------------------------------------- */

/* Read one input line: 1 ok (line end stripped into *len), 0 the line was
 * too long (answered), -1 end of input (session ended). */
static int read_line(struct imap_session* s, size_t* len)
{
  int toolong;
  if (authfront_getline(&s->af, &s->line, len, &toolong) < 0) return -1;
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
    if (c->literal_plus) authfront_end(&s->af, 0);   /* its bytes are already coming */
    return -1;
  }
  if (!c->literal_plus) {               /* continuation request */
    log_response("+ OK", 4, 1, 0);
    obuf_write(&s->af.out, "+ OK\r\n", 6);
  }
  unsigned n = (unsigned)c->literal_len;
  if (!str_ready(&s->literal, n)) { reply(s, "NO Internal error"); authfront_end(&s->af, 111); return -1; }
  int r = n ? ibuf_read(&s->af.in, s->literal.s, n) : 1;
  if (r <= 0) { authfront_input_ended(&s->af, r); return -1; }
  if (!imap_add_literal(c, s->literal.s, n)) { reply(s, "NO Internal error"); authfront_end(&s->af, 111); return -1; }
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
      authfront_end(&s->af, 111);
      return -1;
    }
  }
}

static void step(void* ctx)
{
  struct imap_session* s = ctx;
  if (read_command(s) == 0) dispatch(s);
  if (s->line.s) memset(s->line.s, 0, s->line.len);   /* no password left in memory */
}

/* ---- the server's environment ----------------------------------------- */

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

/* ---- session ---------------------------------------------------------- */

static void proto_reply(void* ctx, const char* text) { reply(ctx, text); }
static void proto_notice(void* ctx, const char* text) { untagged(ctx, text); }
static void proto_sasl_failed(void* ctx, const char* text)
{
  struct imap_session* s = ctx;
  reply_tagged(s, &s->cmd.tag, "NO AUTHENTICATE failed: ", text);
}

static const struct authfront_proto imap = {
  .reply = proto_reply, .notice = proto_notice, .sasl_failed = proto_sasl_failed, .step = step,
  .environment = set_environment, .eof_replies = 0,
  .greeting = "OK imapfront ready.", .no_sasl = "NO Could not initialize SASL AUTH",
  .timed_out = "NO Connection timed out",
  .no_user = "NO Internal error: could not set UID/GID",
  .no_env = "NO Internal error: could not set environment",
  .no_exec = "NO Could not execute second stage", .internal = "NO Internal error",
};

/* Start-up failure: one untagged line on the wire (and in the log). */
static int startup_fail(const char* text)
{
  str line = {0, 0, 0};
  if (str_cat2s(&line, "* ", text)) log_response(line.s, line.len, 1, 0);
  str_free(&line);
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
  const struct env_number literal = { DEFAULT_MAX_LITERAL, 1, 1UL << 30, 0 };
  struct imap_session s;
  log_program("imapfront-auth");
  if (argc > 1 && strcmp(argv[1], "--check") == 0) return imapfront_auth_check(argc - 1, argv + 1);
  if (argc < 2) return startup_fail("NO Usage: imapfront-auth imapd [args ...]");
  if (!getenv("CVM_SASL_PLAIN")) return startup_fail("NO $CVM_SASL_PLAIN is not set");
  memset(&s, 0, sizeof s);
  s.login_cvm = getenv("CVM_SASL_PLAIN");
  s.max_literal = env_number("MAX_LITERAL_LENGTH", &literal);
  int status = authfront_run(&s.af, argv + 1, &imap, &s);
  imap_command_free(&s.cmd);
  str_free(&s.line);
  str_free(&s.literal);
  str_free(&s.scratch);
  return status;
}

/* smtp.c -- protocol-smtp.so: the SMTP state machine (protocols.md "SMTP").
 *
 * One `struct smtp` per connection is passed to every command handler.
 * Commands are dispatched by table: plugin/backend commands first, then
 * the built-ins.  Each handler returns 1 to go on or 0 to end the session
 * with s->status.  Replies go through the core's respond(), which logs
 * errors and flushes each complete reply.
 *
 * Beyond the original: command lines are bounded ($SMTP_MAXLINE, default
 * 4096 bytes: longer ones are read to their end and answered 500); a
 * session whose first line ends in CRLF is strict about the body's line
 * ends ($SMTP_BARE_NEWLINE = reject (default) or normalize), see body.c;
 * a HELO/EHLO argument with a control byte is refused (501) and so is an
 * empty recipient (554, before any plugin); AUTH's arguments, and the
 * lines after an AUTH refused as unknown, are never logged in clear.
 *
 * Built-in STARTTLS (RFC 3207, protocols.md "Built-in STARTTLS"): set up in
 * protocol init from $TLS_* (tls/tls.h); $TLS_IMMEDIATE handshakes before
 * the greeting.  Beyond the original: a completed handshake (either way)
 * forgets the HELO/EHLO domain, the transaction and any authentication
 * (forget_client), and bytes pipelined
 * after the STARTTLS line are discarded, never executed (CVE-2011-0411). */
#include "smtp.h"
#include "lib/log.h"
#include "lib/progenv.h"
#include "tls/tls.h"
#include <stdlib.h>
#include <string.h>
#include <strings.h>

extern struct protocol protocol;

static RESPONSE(mail_first, 503, "5.5.1 You must send MAIL FROM: first");
static RESPONSE(rcpt_first, 503, "5.5.1 You must send RCPT TO: first");
static RESPONSE(bad_addr, 501, "5.5.2 Syntax error in address parameter.");
static RESPONSE(go_ahead, 354, "End your message with a period on a line by itself.");
static RESPONSE(ok, 250, "2.3.0 OK");
static RESPONSE(vrfy, 252, "2.5.2 Send some mail, I'll try my best.");
static RESPONSE(help, 214, "2.0.0 Help not available.");
static RESPONSE(quit, 221, "2.0.0 Good bye.");
static RESPONSE(notimpl, 500, "5.5.1 Not implemented.");
static RESPONSE(too_many, 503, "5.5.0 Too many unimplemented commands.\n5.5.0 Closing connection.");
static RESPONSE(no_params, 501, "5.5.2 Syntax error, no parameters allowed.");
static RESPONSE(needs_param, 501, "5.5.2 Syntax error, command requires a parameter.");
static RESPONSE(too_long, 500, "5.5.2 Line too long.");
static RESPONSE(nul_byte, 500, "5.5.2 Syntax error, NUL byte in command.");
static RESPONSE(tls_ready, 220, "2.0.0 Ready to start TLS");
static RESPONSE(helo_ctl, 501, "5.5.2 Syntax error, control character in the domain.");
static RESPONSE(empty_rcpt, 554, "5.1.2 Recipient address may not be empty");
static RESPONSE(bare_newline, 550, "5.6.0 Message refused: bare CR or LF in the body (RFC 5321 section 2.3.8).");

struct smtp
{
  ibuf* in;
  const struct command* plugin_cmds;
  const char* localhost;
  str line;                  /* current command line (line end stripped) */
  str addr, params, caps, text;
  int saw_mail, saw_rcpt;
  int lines_seen, strict, normalize;
  unsigned long maxnotimpl, notimpl, maxline;
  int status;                /* exit status when a handler returns 0 */
  struct tls* tls;           /* built-in TLS, NULL when not offered */
  int after_auth;            /* the last known command was AUTH (refused,
                                failed or not): the client's next unknown
                                lines may be its credentials */
};

struct builtin
{
  const char* name;
  int (*fn)(struct smtp* s, str* arg);
  int counts_as_unknown;     /* STARTTLS without TLS: 500 but not counted */
};

/* Send r, or dflt when r is NULL; a text-less acceptance takes dflt's text. */
static int reply(struct smtp* s, const response* r, const response* dflt)
{
  response tmp;
  if (!r) r = dflt;
  else if (!r->message && dflt && (r->number & RESPONSE_MASK) < 400) {
    tmp.number = r->number;
    tmp.message = dflt->message;
    r = &tmp;
  }
  if (respond(r)) return 1;
  s->status = 1;
  return 0;
}

/* The TLS session prepared by protocol init, handed to mainloop's struct
 * smtp (init has no session argument): the only file-scope state. */
static struct tls* prepared_tls;

/* Offer STARTTLS: configured, not yet used, and no other TLS layer
 * (starttls-ucspi) completed. */
static int tls_available(const struct smtp* s)
{
  unsigned long st;
  return s->tls && !tls_active(s->tls) && !session_hasnum("tls_state", &st);
}

static int is_error(const response* r) { return r && (r->number & RESPONSE_MASK) >= 400; }

/* ---- built-in commands ---- */

/* The reset and helo steps of HELO/EHLO.  Returns 1 to go on (*helo_r =
 * the helo step's non-error response, if any), else the handler result
 * after an error reply. */
static int do_helo_common(struct smtp* s, str* arg, str* caps, const response** helo_r)
{
  /* A control byte (bare CR, TAB, ESC, DEL...) would reach the Received
   * header through helo_domain: refused before any plugin sees it. */
  for (unsigned i = 0; i < arg->len; i++)
    if ((unsigned char)arg->s[i] < 0x20 || (unsigned char)arg->s[i] == 0x7f)
      return reply(s, &resp_helo_ctl, 0) ? -1 : 0;
  const response* r = handle_reset();
  s->saw_mail = s->saw_rcpt = 0;
  if (is_error(r)) return reply(s, r, 0) ? -1 : 0;
  r = handle_helo(arg, caps);
  if (is_error(r)) return reply(s, r, 0) ? -1 : 0;
  *helo_r = r;
  return 1;
}

/* HELO: `250 LOCALHOST`, unless the helo step answered (a back end's
 * acceptance), which is sent instead (protocols.md). */
static int cmd_helo(struct smtp* s, str* arg)
{
  str unused = {0, 0, 0};
  const response* r = 0;
  int k = do_helo_common(s, arg, &unused, &r);
  str_free(&unused);
  if (k <= 0) return k < 0;
  response hr = { 250, s->localhost };
  return reply(s, r ? r : &hr, &hr);
}

/* Does the capability list (lines ending in LF) contain the line cap? */
static int caps_has(const str* caps, const char* cap)
{
  size_t n = strlen(cap);
  for (unsigned long i = 0; i < caps->len; ) {
    const char* nl = memchr(caps->s + i, '\n', caps->len - i);
    unsigned long end = nl ? (unsigned long)(nl - caps->s) : caps->len;
    if (end - i == n && strncasecmp(caps->s + i, cap, n) == 0) return 1;
    i = end + 1;
  }
  return 0;
}

static int cmd_ehlo(struct smtp* s, str* arg)
{
  protocol.name = "ESMTP";
  s->caps.len = 0;
  if (!str_copys(&s->caps, "")) return reply(s, &resp_oom, 0);
  const response* unused = 0;     /* EHLO sends its capabilities */
  int k = do_helo_common(s, arg, &s->caps, &unused);
  if (k <= 0) return k < 0;
  s->text.len = 0;
  if (!str_cat2s(&s->text, s->localhost, "\n") || !str_cat(&s->text, &s->caps)
      || !str_cats(&s->text, "8BITMIME\nENHANCEDSTATUSCODES\nPIPELINING")
      || (tls_available(s) && !caps_has(&s->caps, "STARTTLS") && !str_cats(&s->text, "\nSTARTTLS")))
    return reply(s, &resp_oom, 0);
  response r = { 250, s->text.s };
  return reply(s, &r, 0);
}

static int cmd_mail(struct smtp* s, str* arg)
{
  const response* r;
  log_cmd("MAIL ", arg->s, arg->len);
  r = handle_reset();
  if (is_error(r)) { reply(s, r, 0); s->status = 0; return 0; }
  s->saw_mail = s->saw_rcpt = 0;
  if (smtp_parse_address(arg->s, arg->len, &s->addr, &s->params) < 0) return reply(s, &resp_bad_addr, 0);
  r = handle_sender(&s->addr, &s->params);
  if (!is_error(r)) s->saw_mail = 1;
  return reply(s, r, &resp_accepted_sender);
}

static int cmd_rcpt(struct smtp* s, str* arg)
{
  log_cmd("RCPT ", arg->s, arg->len);
  if (!s->saw_mail) return reply(s, &resp_mail_first, 0);
  if (smtp_parse_address(arg->s, arg->len, &s->addr, &s->params) < 0) return reply(s, &resp_bad_addr, 0);
  /* RFC 5321 has no null forward-path; an empty recipient would also be
   * ambiguous in NUL-separated envelopes (queuedir). */
  if (s->addr.len == 0) return reply(s, &resp_empty_rcpt, 0);
  const response* r = handle_recipient(&s->addr, &s->params);
  if (!is_error(r)) s->saw_rcpt = 1;
  return reply(s, r, &resp_accepted_recip);
}

static void emit_data(void* ctx, const char* b, unsigned len) { (void)ctx; handle_data_bytes(b, len); }

/* Read the body from the input buffer through the decoder.
 * Returns 1 at the end-of-data line, 0 at EOF, -1 on a read error. */
static int read_body(struct smtp* s, struct smtp_body* b)
{
  for (;;) {
    int r = ibuf_fill(s->in);
    if (r <= 0) return r;
    unsigned long used;
    int end = smtp_body_feed(b, s->in->buf + s->in->head, s->in->tail - s->in->head, &used);
    s->in->head += used;
    if (end) { smtp_body_flush(b); return 1; }
  }
}

static int cmd_data(struct smtp* s, str* arg)
{
  (void)arg;
  if (!s->saw_mail) return reply(s, &resp_mail_first, 0);
  if (!s->saw_rcpt) return reply(s, &resp_rcpt_first, 0);
  const response* r = handle_data_start();
  if (is_error(r)) return reply(s, r, 0);
  if (!reply(s, &resp_go_ahead, 0)) return 0;
  struct smtp_body body;
  smtp_body_start(&body, s->strict, s->normalize, emit_data, s);
  int k = read_body(s, &body);
  s->saw_mail = s->saw_rcpt = 0;
  if (k <= 0) {
    handle_reset();
    if (session_expired()) { s->status = 0; return 0; }
    msg1(s->in->timedout ? "Timed out" : "Connection dropped");
    s->status = 1;
    return 0;
  }
  if (body.bare && !body.normalize) {
    handle_reset();
    return reply(s, &resp_bare_newline, 0);
  }
  r = handle_message_end();
  return reply(s, r, &resp_accepted_message);
}

static int cmd_rset(struct smtp* s, str* arg)
{
  (void)arg;
  const response* r = handle_reset();
  if (is_error(r)) { reply(s, r, 0); s->status = 0; return 0; }
  s->saw_mail = s->saw_rcpt = 0;
  return reply(s, &resp_ok, 0);
}

static int cmd_noop(struct smtp* s, str* arg) { (void)arg; return reply(s, &resp_ok, 0); }
static int cmd_vrfy(struct smtp* s, str* arg) { (void)arg; return reply(s, &resp_vrfy, 0); }
static int cmd_help(struct smtp* s, str* arg) { (void)arg; return reply(s, &resp_help, 0); }
static int cmd_quit(struct smtp* s, str* arg)
{
  (void)arg;
  reply(s, &resp_quit, 0);
  if (tls_active(s->tls)) tls_close(s->tls);   /* close_notify after the 221 */
  s->status = 0;
  return 0;
}
/* RFC 3207 4.2: after a TLS handshake, forget what the client said
 * before: the transaction, the HELO/EHLO domain and any authentication. */
static void forget_client(void)
{
  static const char* const strs[] = {
    "helo_domain", "auth_user", "auth_realname", "auth_domain", "auth_mailbox",
  };
  static const char* const nums[] = { "authenticated", "auth_uid", "auth_gid" };
  handle_reset();
  for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) session_delstr(strs[i]);
  for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) session_delnum(nums[i]);
}

/* Handshake on the session's streams and record the results: log lines,
 * tls_state and the tls_* strings.  0 ok, -1 failed (logged). */
static int tls_handshake(struct tls* tls)
{
  str err = {0, 0, 0}, params = {0, 0, 0};
  unsigned long dropped = 0;
  msg1("Starting TLS handshake");
  int r = tls_start(tls, session_input(), session_output(), &dropped, &err);
  if (dropped) log_fmt(0, "STARTTLS: discarded %lu bytes pipelined before the handshake", dropped);
  if (r < 0) {
    msg1(err.s ? err.s : "TLS handshake failed");
    str_free(&err);
    return -1;
  }
  struct tls_info i;
  tls_get_info(tls, &i);
  if (tls_params(tls, &params) == 0) {
    msg2("TLS handshake: ", params.s);
    session_setstr("tls_params", params.s);
  }
  session_setstr("tls_protocol", i.protocol);
  session_setstr("tls_keyex", i.keyex);
  session_setstr("tls_cipher", i.cipher);
  session_setstr("tls_mac", i.mac);
  session_setnum("tls_state", 1);
  forget_client();
  str_free(&err);
  str_free(&params);
  return 0;
}

static int cmd_starttls(struct smtp* s, str* arg)
{
  (void)arg;                       /* the argument is ignored (2.22) */
  if (!tls_available(s)) return reply(s, &resp_notimpl, 0);
  if (!reply(s, &resp_tls_ready, 0)) return 0;
  if (tls_handshake(s->tls) < 0) { s->status = 1; return 0; }
  s->saw_mail = s->saw_rcpt = 0;
  return 1;
}

static const struct builtin builtins[] = {
  { "HELO", cmd_helo, 0 },
  { "EHLO", cmd_ehlo, 0 },
  { "MAIL", cmd_mail, 0 },
  { "RCPT", cmd_rcpt, 0 },
  { "DATA", cmd_data, 0 },
  { "RSET", cmd_rset, 0 },
  { "NOOP", cmd_noop, 0 },
  { "VRFY", cmd_vrfy, 0 },
  { "HELP", cmd_help, 0 },
  { "QUIT", cmd_quit, 0 },
  { "STARTTLS", cmd_starttls, 0 },
};

/* ---- dispatch ---- */

static int word_is(const char* word, unsigned long wlen, const char* name)
{
  return strlen(name) == wlen && strncasecmp(word, name, wlen) == 0;
}

static int run_plugin_cmd(struct smtp* s, const struct command* c, str* arg)
{
  if (arg->len == 0) {
    if (!c->fn_noparam) return reply(s, &resp_no_params, 0);
    if (c->fn_noparam()) return 1;
  } else {
    if (!c->fn_hasparam) return reply(s, &resp_needs_param, 0);
    if (c->fn_hasparam(arg)) return 1;
  }
  s->status = 1;
  return 0;
}

/* Log an unknown command line.  AUTH carries credentials (an initial
 * response, or a base64 word where the mechanism belongs): its arguments
 * are never logged, and the lines that follow a refused AUTH (the client's
 * continuation lines) are logged masked until a known command arrives;
 * so are those after an AUTH run by a plugin (a failed exchange leaves a
 * client that was not in step sending its credentials as commands). */
static void log_unknown(struct smtp* s, const char* word, unsigned long wlen, const str* arg)
{
  if (word_is(word, wlen, "AUTH")) {
    s->after_auth = 1;
    msg1(arg->len ? "AUTH [arguments hidden]" : "AUTH");
    return;
  }
  if (s->after_auth) {
    msg1("[line hidden after AUTH]");
    return;
  }
  str l = {0, 0, 0};
  str_catb(&l, word, (unsigned)wlen);
  str_catc(&l, ' ');
  str_cat(&l, arg);
  log_cmd("", l.s ? l.s : "", l.len);
  str_free(&l);
}

static int unknown(struct smtp* s, const char* word, unsigned long wlen, str* arg)
{
  log_unknown(s, word, wlen, arg);
  s->notimpl++;
  if (s->maxnotimpl > 0 && s->notimpl > s->maxnotimpl) {
    reply(s, &resp_too_many, 0);
    s->status = 1;
    return 0;
  }
  return reply(s, &resp_notimpl, 0);
}

static int dispatch(struct smtp* s)
{
  const char* line = s->line.s;
  unsigned long len = s->line.len;
  unsigned long w = 0;
  while (w < len && line[w] != ' ' && line[w] != '\t') w++;
  unsigned long a = w;
  while (a < len && (line[a] == ' ' || line[a] == '\t')) a++;
  str arg = {0, 0, 0};
  if (!str_copyb(&arg, line + a, (unsigned)(len - a))) return reply(s, &resp_oom, 0);
  int k = -1;
  for (const struct command* c = s->plugin_cmds; c && c->name && k < 0; c++) {
    if (!word_is(line, w, c->name)) continue;
    if (c->fn_enabled && !c->fn_enabled()) continue;
    s->notimpl = 0;
    s->after_auth = word_is(line, w, "AUTH");
    unsigned long st;
    int had_tls = session_hasnum("tls_state", &st);
    k = run_plugin_cmd(s, c, &arg);
    /* A plugin switched to TLS (starttls-ucspi): the transaction is
     * forgotten here too (RFC 3207 4.2). */
    if (!had_tls && session_hasnum("tls_state", &st)) {
      s->saw_mail = s->saw_rcpt = 0;
      forget_client();
    }
  }
  for (size_t i = 0; k < 0 && i < sizeof builtins / sizeof builtins[0]; i++)
    if (word_is(line, w, builtins[i].name)) {
      s->notimpl = s->after_auth = 0;
      k = builtins[i].fn(s, &arg);
    }
  if (k < 0) k = unknown(s, line, w, &arg);
  str_free(&arg);
  return k;
}

/* Read one command line.  1: a line in s->line; 0: end the session. */
static int read_command(struct smtp* s)
{
  int toolong;
  for (;;) {
    int r = ibuf_getline(s->in, &s->line, s->maxline, &toolong);
    if (r <= 0) { s->status = 0; return 0; }  /* EOF, timeout: silently */
    int had_lf = s->line.len > 0 && s->line.s[s->line.len - 1] == '\n';
    int had_crlf = had_lf && s->line.len > 1 && s->line.s[s->line.len - 2] == '\r';
    if (toolong) {
      if (!reply(s, &resp_too_long, 0)) return 0;
      continue;
    }
    if (s->lines_seen++ == 0) s->strict = had_crlf;
    if (had_lf) s->line.len--;
    if (had_crlf) s->line.len--;
    s->line.s[s->line.len] = 0;
    if (memchr(s->line.s, 0, s->line.len)) {
      if (!reply(s, &resp_nul_byte, 0)) return 0;
      continue;
    }
    return 1;
  }
}

/* $MAXNOTIMPL (0: no limit) and $SMTP_MAXLINE (at least 512; 0: the
 * default) by the one rule of lib/progenv.h (read like the original). */
static const struct env_number maxnotimpl_spec = { 0, 0, ~0UL, 1 };
static const struct env_number maxline_spec = { 4096, 512, 1UL << 30, 0 };

static int smtp_mainloop(const struct command* cmds)
{
  struct smtp s;
  memset(&s, 0, sizeof s);
  s.in = session_input();
  s.plugin_cmds = cmds;
  s.tls = prepared_tls;
  s.localhost = getprotoenv("LOCALHOST");
  if (!s.localhost) s.localhost = UNKNOWN;
  s.maxnotimpl = env_number("MAXNOTIMPL", &maxnotimpl_spec);
  s.maxline = env_number("SMTP_MAXLINE", &maxline_spec);
  const char* bare = getenv("SMTP_BARE_NEWLINE");
  s.normalize = bare && (strcasecmp(bare, "normalize") == 0 || strcasecmp(bare, "normalise") == 0);

  const char* greeting = getenv("SMTPGREETING");
  str g = {0, 0, 0};
  if (greeting) str_copys(&g, greeting);
  else str_cat2s(&g, s.localhost, " mailfront");
  str_cats(&g, " ESMTP");
  response gr = { 220, g.s };
  int go = g.s && respond(&gr);
  str_free(&g);
  if (go)
    while (read_command(&s) && dispatch(&s)) {}
  str_free(&s.line);
  str_free(&s.addr);
  str_free(&s.params);
  str_free(&s.caps);
  str_free(&s.text);
  return s.status;
}

static int smtp_respond_line(unsigned number, int final, const char* msg, unsigned long len)
{
  obuf* out = session_output();
  char code[5];
  code[0] = (char)('0' + number / 100 % 10);
  code[1] = (char)('0' + number / 10 % 10);
  code[2] = (char)('0' + number % 10);
  code[3] = final ? ' ' : '-';
  return obuf_write(out, code, 4) == 0 && obuf_write(out, msg, len) == 0 && obuf_write(out, "\r\n", 2) == 0;
}

/* Protocol init: prepare TLS (problems are logged and TLS is not offered);
 * $TLS_IMMEDIATE (SMTPS): handshake now, failure ends with exit 1. */
static int smtp_init(void)
{
  str err = {0, 0, 0};
  prepared_tls = tls_prepare(session_getenv, &err);
  if (!prepared_tls && err.len) msg1(err.s);
  str_free(&err);
  if (prepared_tls && session_getenv("TLS_IMMEDIATE") && tls_handshake(prepared_tls) < 0) return 1;
  return 0;
}

struct protocol protocol = {
  .version = PROTOCOL_VERSION,
  .name = "SMTP",
  .respond_line = smtp_respond_line,
  .init = smtp_init,
  .mainloop = smtp_mainloop,
};

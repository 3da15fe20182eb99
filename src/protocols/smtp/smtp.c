/* smtp.c -- protocol-smtp.so: the SMTP state machine (protocols.md "SMTP").
 *
 * One `struct smtp` per connection is passed to every command handler; it
 * holds the session's settings and one `struct smtp_txn`, the transaction,
 * whose `phase` says which commands may come next.  Commands are
 * dispatched by table: plugin/backend commands first, then the built-ins,
 * each with the set of phases it is allowed in; a command outside its
 * phases gets the phase's refusal (phase_refusal[]).  Each handler returns
 * 1 to go on or 0 after end_session() recorded the exit status.  Replies
 * go through the core's respond(), which logs errors and flushes each
 * complete reply.  No file-scope state: everything lives in struct smtp.
 *
 * Beyond the original: command lines are bounded ($SMTP_MAXLINE, default
 * 4096 bytes: longer ones are read to their end and answered 500); a
 * session whose first line ends in CRLF is strict about the body's line
 * ends ($SMTP_BARE_NEWLINE = reject (default) or normalize), see body.c;
 * a HELO/EHLO argument with a control byte is refused (501) and so is an
 * empty recipient (554, before any plugin); AUTH's arguments, and the
 * lines after an AUTH refused as unknown, are never logged in clear.
 *
 * ESMTP extensions (docs/esmtp.md): the built-in EHLO keywords come from
 * extensions[], each switched off by its variable set to 0 ($SMTP_CHUNKING
 * ...).  BDAT (RFC 3030) reads exactly n bytes whatever the reply and
 * streams them through the data hooks like DATA (body.c chunk mode: no
 * dots, no end line); a size it cannot parse ends the session.  SMTPUTF8
 * (RFC 6531): non-ASCII addresses must be valid UTF-8 and declared by MAIL
 * ... SMTPUTF8, which sets the session number `smtputf8` for the
 * transaction.  BODY=BINARYMIME is refused (no back end carries it).
 *
 * Built-in STARTTLS (RFC 3207, protocols.md "Built-in STARTTLS"): set up at
 * the start of the session from $TLS_* (tls/tls.h); $TLS_IMMEDIATE
 * handshakes before the greeting.  Beyond the original: a completed
 * handshake (either way) forgets the HELO/EHLO domain, the transaction and
 * any authentication (forget_client), and bytes pipelined after the
 * STARTTLS line are discarded, never executed (CVE-2011-0411). */
#include "smtp.h"
#include "lib/log.h"
#include "lib/progenv.h"
#include "tls/tls.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
static RESPONSE(bdat_open, 503, "5.5.1 A BDAT transfer is in progress: send BDAT with LAST, or RSET.");
static RESPONSE(bdat_syntax, 501, "5.5.4 Syntax error in BDAT size, closing connection.");
static RESPONSE(no_binarymime, 555, "5.5.4 BODY=BINARYMIME is not supported.");
static RESPONSE(no_smtputf8, 555, "5.5.4 SMTPUTF8 is not offered.");
static RESPONSE(smtputf8_value, 501, "5.5.4 SMTPUTF8 takes no value.");
static RESPONSE(utf8_needed, 553, "5.6.7 Non-ASCII address requires SMTPUTF8.");
static RESPONSE(bad_utf8_sender, 553, "5.1.7 Invalid UTF-8 in the sender address.");
static RESPONSE(bad_utf8_recip, 553, "5.1.3 Invalid UTF-8 in the recipient address.");

/* The phases of an SMTP conversation, as far as commands care. */
enum smtp_phase
{
  PH_IDLE,                   /* no transaction: MAIL may start one */
  PH_MAIL,                   /* a sender was accepted */
  PH_RCPT,                   /* and at least one recipient */
  PH_BDAT,                   /* BDAT chunks came, the LAST one not yet */
  PH_COUNT
};
#define IN(p) (1u << (p))
#define ANY_PHASE (IN(PH_COUNT) - 1)

/* The reply to a command that its phase does not allow. */
static const response* const phase_refusal[PH_COUNT] = {
  [PH_IDLE] = &resp_mail_first,
  [PH_MAIL] = &resp_rcpt_first,
  [PH_RCPT] = &resp_notimpl,         /* unused: every command allows it */
  [PH_BDAT] = &resp_bdat_open,
};

/* The ESMTP extensions built in, in EHLO order.  Each is offered unless
 * its variable is 0; STARTTLS also needs TLS configured (tls_available). */
enum smtp_ext { EXT_8BITMIME, EXT_ENHANCEDSTATUSCODES, EXT_PIPELINING, EXT_CHUNKING, EXT_SMTPUTF8, EXT_COUNT };
struct extension { const char* keyword; const char* variable; };
static const struct extension extensions[EXT_COUNT] = {
  [EXT_8BITMIME] = { "8BITMIME", "SMTP_8BITMIME" },
  [EXT_ENHANCEDSTATUSCODES] = { "ENHANCEDSTATUSCODES", "SMTP_ENHANCEDSTATUSCODES" },
  [EXT_PIPELINING] = { "PIPELINING", "SMTP_PIPELINING" },
  [EXT_CHUNKING] = { "CHUNKING", "SMTP_CHUNKING" },
  [EXT_SMTPUTF8] = { "SMTPUTF8", "SMTP_SMTPUTF8" },
};
#define EXT(e) (1u << (e))

/* One mail transaction (MAIL .. end of data). */
struct smtp_txn
{
  enum smtp_phase phase;
  int utf8;                  /* MAIL FROM declared SMTPUTF8 */
  struct smtp_body body;     /* BDAT: the decoder, across chunks */
};

struct smtp
{
  ibuf* in;
  const struct command* plugin_cmds;
  const char* localhost;
  str line;                  /* current command line (line end stripped) */
  str addr, params, caps, text;
  struct smtp_txn txn;
  unsigned ext;              /* EXT() bits of the extensions offered */
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
  unsigned phases;           /* IN(phase) bits where the command is allowed */
  unsigned needs;            /* EXT() bits: without them it is unknown */
  const char* log_prefix;    /* logged with the argument before anything else */
};

/* The one place a session ends: record the exit status, log the reason
 * (if any).  Returns 0, the handlers' "end the session". */
static int end_session(struct smtp* s, int status, const char* reason)
{
  if (reason) msg1(reason);
  s->status = status;
  return 0;
}

/* Forget the transaction (after RSET, HELO/EHLO, end of data, TLS). */
static void txn_forget(struct smtp* s)
{
  memset(&s->txn, 0, sizeof s->txn);
  s->txn.phase = PH_IDLE;
  session_delnum("smtputf8");
}

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
  return end_session(s, 1, 0);
}

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
  txn_forget(s);
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
  session_set_protocol_name("ESMTP");
  s->caps.len = 0;
  if (!str_copys(&s->caps, "")) return reply(s, &resp_oom, 0);
  const response* unused = 0;     /* EHLO sends its capabilities */
  int k = do_helo_common(s, arg, &s->caps, &unused);
  if (k <= 0) return k < 0;
  s->text.len = 0;
  int ok = str_cat2s(&s->text, s->localhost, "\n") && str_cat(&s->text, &s->caps);
  for (unsigned e = 0; e < EXT_COUNT; e++)
    if (s->ext & EXT(e)) ok = ok && str_cat2s(&s->text, extensions[e].keyword, "\n");
  if (tls_available(s) && !caps_has(&s->caps, "STARTTLS")) ok = ok && str_cats(&s->text, "STARTTLS\n");
  if (!ok) return reply(s, &resp_oom, 0);
  s->text.s[--s->text.len] = 0;     /* no LF after the last line */
  response r = { 250, s->text.s };
  return reply(s, &r, 0);
}

/* The MAIL parameters this module acts on (RFC 6531, RFC 3030): NULL to
 * go on (txn.utf8 set), or the refusal. */
static const response* mail_params(struct smtp* s)
{
  const char* v;
  if (smtp_param_find(&s->params, "SMTPUTF8", &v)) {
    if (!(s->ext & EXT(EXT_SMTPUTF8))) return &resp_no_smtputf8;
    if (v) return &resp_smtputf8_value;
    s->txn.utf8 = 1;
  }
  if (smtp_param_find(&s->params, "BODY", &v) && v && strcasecmp(v, "BINARYMIME") == 0)
    return &resp_no_binarymime;      /* no back end carries binary bodies */
  return 0;
}

/* Non-ASCII in an address: only valid UTF-8, only when declared. */
static const response* address_utf8(const struct smtp* s, const response* invalid)
{
  int k = smtp_utf8_check(s->addr.s, s->addr.len);
  if (k < 0) return invalid;
  if (k > 0 && !s->txn.utf8) return &resp_utf8_needed;
  return 0;
}

static int cmd_mail(struct smtp* s, str* arg)
{
  const response* r = handle_reset();
  if (is_error(r)) { reply(s, r, 0); return end_session(s, 0, 0); }
  txn_forget(s);
  if (smtp_parse_address(arg->s, arg->len, &s->addr, &s->params) < 0) return reply(s, &resp_bad_addr, 0);
  if ((r = mail_params(s)) != 0 || (r = address_utf8(s, &resp_bad_utf8_sender)) != 0) {
    txn_forget(s);
    return reply(s, r, 0);
  }
  if (s->txn.utf8) session_setnum("smtputf8", 1);
  r = handle_sender(&s->addr, &s->params);
  if (is_error(r)) txn_forget(s);
  else s->txn.phase = PH_MAIL;
  return reply(s, r, &resp_accepted_sender);
}

static int cmd_rcpt(struct smtp* s, str* arg)
{
  if (smtp_parse_address(arg->s, arg->len, &s->addr, &s->params) < 0) return reply(s, &resp_bad_addr, 0);
  /* RFC 5321 has no null forward-path; an empty recipient would also be
   * ambiguous in NUL-separated envelopes (queuedir). */
  if (s->addr.len == 0) return reply(s, &resp_empty_rcpt, 0);
  const response* r = address_utf8(s, &resp_bad_utf8_recip);
  if (r) return reply(s, r, 0);
  r = handle_recipient(&s->addr, &s->params);
  if (!is_error(r)) s->txn.phase = PH_RCPT;
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
    unsigned long avail, used;
    const char* bytes = ibuf_view(s->in, &avail);
    int end = smtp_body_feed(b, bytes, avail, &used);
    ibuf_consume(s->in, used);
    if (end) { smtp_body_flush(b); return 1; }
  }
}

/* The connection ended inside a message: nothing is delivered. */
static int lost_in_body(struct smtp* s)
{
  handle_reset();
  if (session_expired()) return end_session(s, 0, 0);
  return end_session(s, 1, s->in->timedout ? "Timed out" : "Connection dropped");
}

static int message_end(struct smtp* s, const struct smtp_body* body);

static int cmd_data(struct smtp* s, str* arg)
{
  (void)arg;
  const response* r = handle_data_start();
  if (is_error(r)) return reply(s, r, 0);
  if (!reply(s, &resp_go_ahead, 0)) return 0;
  struct smtp_body body;
  smtp_body_start(&body, s->strict, s->normalize, emit_data, s);
  int k = read_body(s, &body);
  if (k <= 0) return lost_in_body(s);
  return message_end(s, &body);
}

/* The end of a message (DATA's end line, BDAT LAST): refuse bare line
 * ends unless normalized, else the message_end step; then the transaction
 * is over whatever the answer. */
static int message_end(struct smtp* s, const struct smtp_body* body)
{
  const response* r;
  if (body->bare && !body->normalize) {
    handle_reset();
    r = &resp_bare_newline;
  } else r = handle_message_end();
  txn_forget(s);
  return reply(s, r, &resp_accepted_message);
}

/* Read exactly n bytes of a BDAT chunk, each run of buffered bytes to
 * feed (NULL: drop them).  1 ok, 0 EOF, -1 read error. */
static int read_chunk(struct smtp* s, unsigned long long n, struct smtp_body* feed)
{
  while (n > 0) {
    int r = ibuf_fill(s->in);
    if (r <= 0) return r;
    unsigned long avail, used;
    const char* bytes = ibuf_view(s->in, &avail);
    unsigned long take = n < avail ? (unsigned long)n : avail;
    if (feed) smtp_body_feed(feed, bytes, take, &used);
    ibuf_consume(s->in, take);
    n -= take;
  }
  return 1;
}

/* BDAT n [LAST] (RFC 3030).  The n bytes follow the command whatever the
 * reply, so they are always read: streamed through the data hooks in the
 * transaction, dropped otherwise.  A size that cannot be parsed leaves no
 * way to find the next command: the session ends. */
static int cmd_bdat(struct smtp* s, str* arg)
{
  unsigned long long n;
  int last;
  if (smtp_parse_bdat(arg->s, arg->len, &n, &last) < 0) {
    reply(s, &resp_bdat_syntax, 0);
    return end_session(s, 1, 0);
  }
  const response* refusal = 0;
  if (s->txn.phase != PH_RCPT && s->txn.phase != PH_BDAT) refusal = phase_refusal[s->txn.phase];
  else if (s->txn.phase == PH_RCPT) {
    refusal = handle_data_start();
    if (is_error(refusal)) txn_forget(s);    /* the core reset the transaction */
    else {
      refusal = 0;
      smtp_body_start_chunked(&s->txn.body, s->normalize, emit_data, s);
      s->txn.phase = PH_BDAT;
    }
  }
  int k = read_chunk(s, n, refusal ? 0 : &s->txn.body);
  if (k <= 0) return lost_in_body(s);
  if (refusal) return reply(s, refusal, 0);
  if (last) {
    smtp_body_finish(&s->txn.body);
    return message_end(s, &s->txn.body);
  }
  smtp_body_flush(&s->txn.body);
  const response* failed = handle_data_status();
  if (failed) { txn_forget(s); return reply(s, failed, 0); }
  char num[24];
  snprintf(num, sizeof num, "%llu", n);
  s->text.len = 0;
  if (!str_cat3s(&s->text, "2.0.0 ", num, " bytes received.")) return reply(s, &resp_oom, 0);
  response ok = { 250, s->text.s };
  return reply(s, &ok, 0);
}

static int cmd_rset(struct smtp* s, str* arg)
{
  (void)arg;
  const response* r = handle_reset();
  if (is_error(r)) { reply(s, r, 0); return end_session(s, 0, 0); }
  txn_forget(s);
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
  return end_session(s, 0, 0);
}
/* RFC 3207 4.2: after a TLS handshake, forget what the client said
 * before: the transaction, the HELO/EHLO domain and any authentication. */
static void forget_client(void)
{
  static const char* const strs[] = {
    "helo_domain", "auth_user", "auth_realname", "auth_domain", "auth_mailbox", "auth_mech",
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
  if (tls_handshake(s->tls) < 0) return end_session(s, 1, 0);
  txn_forget(s);
  return 1;
}

#define TXN (IN(PH_MAIL) | IN(PH_RCPT))
#define NOT_BDAT (ANY_PHASE & ~IN(PH_BDAT))
static const struct builtin builtins[] = {
  { "HELO", cmd_helo, ANY_PHASE, 0, 0 },
  { "EHLO", cmd_ehlo, ANY_PHASE, 0, 0 },
  { "MAIL", cmd_mail, NOT_BDAT, 0, "MAIL " },
  { "RCPT", cmd_rcpt, TXN, 0, "RCPT " },
  { "DATA", cmd_data, IN(PH_RCPT), 0, 0 },
  /* BDAT checks its phase itself, after reading the chunk that follows. */
  { "BDAT", cmd_bdat, ANY_PHASE, EXT(EXT_CHUNKING), 0 },
  { "RSET", cmd_rset, ANY_PHASE, 0, 0 },
  { "NOOP", cmd_noop, ANY_PHASE, 0, 0 },
  { "VRFY", cmd_vrfy, ANY_PHASE, 0, 0 },
  { "HELP", cmd_help, ANY_PHASE, 0, 0 },
  { "QUIT", cmd_quit, ANY_PHASE, 0, 0 },
  { "STARTTLS", cmd_starttls, ANY_PHASE, 0, 0 },
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
  return end_session(s, 1, 0);
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
    return end_session(s, 1, 0);
  }
  return reply(s, &resp_notimpl, 0);
}

/* A plugin or backend command; -1 when none matches. */
static int dispatch_plugin(struct smtp* s, const char* word, unsigned long w, str* arg)
{
  for (const struct command* c = s->plugin_cmds; c && c->name; c++) {
    if (!word_is(word, w, c->name)) continue;
    if (c->fn_enabled && !c->fn_enabled()) continue;
    s->notimpl = 0;
    s->after_auth = word_is(word, w, "AUTH");
    unsigned long st;
    int had_tls = session_hasnum("tls_state", &st);
    int k = run_plugin_cmd(s, c, arg);
    /* A plugin switched to TLS (starttls-ucspi): the transaction is
     * forgotten here too (RFC 3207 4.2). */
    if (!had_tls && session_hasnum("tls_state", &st)) {
      txn_forget(s);
      forget_client();
    }
    return k;
  }
  return -1;
}

/* A built-in command, refused when its phase does not allow it; -1 when
 * none matches. */
static int dispatch_builtin(struct smtp* s, const char* word, unsigned long w, str* arg)
{
  for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++) {
    const struct builtin* b = &builtins[i];
    if (!word_is(word, w, b->name) || (b->needs & ~s->ext)) continue;
    s->notimpl = s->after_auth = 0;
    if (b->log_prefix) log_cmd(b->log_prefix, arg->s, arg->len);
    if (!(b->phases & IN(s->txn.phase))) return reply(s, phase_refusal[s->txn.phase], 0);
    return b->fn(s, arg);
  }
  return -1;
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
  int k = dispatch_plugin(s, line, w, &arg);
  if (k < 0) k = dispatch_builtin(s, line, w, &arg);
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
    if (r <= 0) return end_session(s, 0, 0);  /* EOF, timeout: silently */
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

/* Prepare built-in TLS (problems are logged and TLS is not offered);
 * $TLS_IMMEDIATE (SMTPS): handshake now.  0 ok, -1 the handshake failed. */
static int smtp_tls_setup(struct smtp* s)
{
  str err = {0, 0, 0};
  s->tls = tls_prepare(session_getenv, &err);
  if (!s->tls && err.len) msg1(err.s);
  str_free(&err);
  if (s->tls && session_getenv("TLS_IMMEDIATE") && tls_handshake(s->tls) < 0) return -1;
  return 0;
}

static void smtp_settings(struct smtp* s, const struct command* cmds)
{
  memset(s, 0, sizeof *s);
  s->in = session_input();
  s->plugin_cmds = cmds;
  s->localhost = getprotoenv("LOCALHOST");
  if (!s->localhost) s->localhost = UNKNOWN;
  s->maxnotimpl = env_number("MAXNOTIMPL", &maxnotimpl_spec);
  s->maxline = env_number("SMTP_MAXLINE", &maxline_spec);
  const char* bare = getenv("SMTP_BARE_NEWLINE");
  s->normalize = bare && (strcasecmp(bare, "normalize") == 0 || strcasecmp(bare, "normalise") == 0);
  for (unsigned e = 0; e < EXT_COUNT; e++) {
    const char* v = getenv(extensions[e].variable);
    if (!v || strcmp(v, "0") != 0) s->ext |= EXT(e);
  }
  txn_forget(s);
}

static int greet(struct smtp* s)
{
  const char* greeting = getenv("SMTPGREETING");
  str g = {0, 0, 0};
  if (greeting) str_copys(&g, greeting);
  else str_cat2s(&g, s->localhost, " mailfront");
  str_cats(&g, " ESMTP");
  response gr = { 220, g.s };
  int go = g.s && respond(&gr);
  str_free(&g);
  return go;
}

static int smtp_mainloop(const struct command* cmds)
{
  struct smtp s;
  smtp_settings(&s, cmds);
  if (smtp_tls_setup(&s) < 0) return 1;
  if (greet(&s))
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

/* Version 4 without per-session hooks: the protocol keeps no state of its
 * own outside the session (safe for many sessions in one process). */
const struct protocol protocol = {
  .version = PROTOCOL_VERSION_4,
  .name = "SMTP",
  .respond_line = smtp_respond_line,
  .mainloop = smtp_mainloop,
};

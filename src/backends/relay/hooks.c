/* relay/hooks.c -- the back-end hooks shared by backend-smtp.so and
 * backend-lmtp.so (docs/relay.md): a before-queue relay.
 *
 * The downstream MAIL and RCPT run in step with the client's (the core
 * calls our sender/recipient hooks only after the plugins accepted, so a
 * next hop that accepts everything never makes us an open relay; we only
 * add its refusals).  The body streams to the next hop as it arrives
 * (DATA with dot-stuffing, or BDAT when the next hop offers CHUNKING);
 * when some module needs the message file, or the envelope comes after
 * the body (QMQP/QMTP), it is sent from that file at the end of data.
 * Our reply to the end of data is the next hop's final reply; for LMTP
 * the per-recipient replies are combined: all accepted -> the first
 * acceptance, all refused -> the (first temporary, else first) refusal, a
 * mix -> a temporary failure (each result is logged; the client's retry
 * may duplicate the message for the recipients that got it, which is
 * preferable to losing it for the others).  A lost connection, a timeout
 * or a malformed reply before the final reply is a temporary failure,
 * never an acceptance.  A reset during a transaction aborts it
 * downstream: RSET, or for DATA (which cannot be cancelled) closing the
 * connection before the final dot.  The connection is kept for the next
 * transaction of the session and closed with QUIT at exit.
 *
 * State: one struct relay (relay.h) per session, the back end's version-4
 * context: relay_session_open allocates it, relay_session_close QUITs an
 * idle connection and frees it; hooks reach it through relay_self().
 * Nothing is kept at file scope, so sessions run one after another in one
 * process share nothing. */
#include "backends/relay/relay.h"
#include "backends/relay/hooks.h"
#include "lib/fdio.h"
#include "lib/log.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RELAY_BDAT_CHUNK 65536UL
#define RELAY_FILE_BLOCK 65536UL

static RESPONSE(config, 451, "4.3.5 The relay back end is not configured.");
static RESPONSE(unavailable, 451, "4.4.1 The next hop is not available; try again later.");
static RESPONSE(lost, 451, "4.4.2 Lost the connection to the next hop; try again later.");
static RESPONSE(bad_addr, 501, "5.1.3 This address cannot be relayed.");
static RESPONSE(bad_param, 501, "5.5.4 Bad ESMTP parameter.");
static RESPONSE(no_utf8, 553, "5.6.7 The next hop does not support SMTPUTF8.");
static RESPONSE(no_txn, 451, "4.3.0 No transaction with the next hop; try again later.");
static RESPONSE(mixed, 451, "4.3.0 Delivered to some recipients but not all; try again later.");
static RESPONSE(spool, 451, "4.3.0 Cannot store the message temporarily.");

extern struct plugin backend;            /* smtp.c or lmtp.c */

struct relay* relay_self(void) { return plugin_context(&backend); }

const response* relay_session_open(void** ctx)
{
  struct relay* r = calloc(1, sizeof *r);
  *ctx = r;
  if (!r) return &resp_oom;
  r->fd = -1;
  r->spool_fd = -1;
  return 0;
}

/* The end of the session: QUIT an idle connection (best effort, bounded),
 * then free everything. */
void relay_session_close(void* ctx)
{
  struct relay* r = ctx;
  if (!r) return;
  relay_close(r, 1);
  if (r->spool_fd >= 0) close(r->spool_fd);
  relay_free(r);
  free(r);
}

static const char* verb_of(int xclient) { return xclient ? "XCLIENT" : "XFORWARD"; }
static int is_2xx(unsigned code) { return code >= 200 && code < 300; }

/* The connection failed (I/O error, timeout, malformed reply): log why,
 * close it (whatever the next hop holds is not acknowledged) and answer
 * with a temporary failure. */
static const response* lost_because(struct relay* r)
{
  log_parts(LOG_WARN, "relay: ", r->why.len ? r->why.s : "connection to the next hop failed", 0, 0);
  relay_close(r, 0);
  return &resp_lost;
}

/* The next hop's reply as ours; 421 (it closes) becomes 451 and we close. */
static const response* mapped(struct relay* r, struct relay_reply* rep)
{
  if (rep->code < 400) {                   /* e.g. a 354 where none belongs */
    log_fmt(LOG_WARN, "relay: unexpected reply %u from the next hop", rep->code);
    relay_close(r, 0);
    return &resp_lost;
  }
  if (rep->code == 421) {
    rep->resp.number = 451;
    relay_close(r, 0);
  }
  return &rep->resp;
}

static int copy_reply(struct relay_reply* dst, const struct relay_reply* src)
{
  dst->code = src->code;
  if (!str_copy(&dst->text, &src->text)) return -1;
  dst->resp.number = src->code == 421 ? 451 : src->code;
  dst->resp.message = dst->text.s;
  return 0;
}

/* ---- client identity: XFORWARD (per transaction) or XCLIENT ---- */

static const char* v_name(void) { return getprotoenv("REMOTEHOST"); }
static const char* v_addr(void) { return getprotoenv("REMOTEIP"); }
static const char* v_port(void) { return getprotoenv("REMOTEPORT"); }
static const char* v_helo(void) { return session_getstr("helo_domain"); }
static const char* v_source(void) { return "REMOTE"; }
static const char* v_login(void) { return session_getstr("auth_user"); }
/* Postfix knows SMTP and ESMTP only; QMQP/QMTP clients stay unnamed. */
static const char* v_proto(void)
{
  const char* p = session_protocol();
  return strcmp(p, "SMTP") == 0 || strcmp(p, "ESMTP") == 0 ? p : 0;
}

static const struct { const char* attr; const char* (*value)(void); int xforward, xclient; } ident[] = {
  { "NAME", v_name, 1, 1 }, { "ADDR", v_addr, 1, 1 }, { "PORT", v_port, 1, 1 },
  { "PROTO", v_proto, 1, 1 }, { "HELO", v_helo, 1, 1 }, { "SOURCE", v_source, 1, 0 },
  { "LOGIN", v_login, 0, 1 },
};

#define IDENT_LINE_MAX 400    /* Postfix accepts 512-byte command lines */

/* "VERB A=v B=v ..." for the offered attributes (xtext, [UNAVAILABLE] when
 * unknown), as lines separated by '\n'; XFORWARD may be split into several
 * commands, XCLIENT stays one. */
static int identity_cmds(struct relay* r, int xclient, str* out)
{
  const str* offered = xclient ? &r->caps.xclient : &r->caps.xforward;
  const char* verb = xclient ? "XCLIENT" : "XFORWARD";
  str item = {0, 0, 0};
  unsigned line_start = 0;
  int rc = -1;
  out->len = 0;
  if (!str_copys(out, verb)) goto done;
  for (size_t i = 0; i < sizeof ident / sizeof ident[0]; i++) {
    if (!(xclient ? ident[i].xclient : ident[i].xforward) || !relay_attr_offered(offered, ident[i].attr)) continue;
    const char* v = ident[i].value();
    item.len = 0;
    if (!str_cat3s(&item, " ", ident[i].attr, "=")) goto done;
    if (!v || !*v) { if (!str_cats(&item, "[UNAVAILABLE]")) goto done; }
    else if (relay_xtext(&item, v, strlen(v)) < 0) goto done;
    if (!xclient && out->len - line_start + item.len > IDENT_LINE_MAX && out->len - line_start > strlen(verb)) {
      if (!str_catc(out, '\n')) goto done;
      line_start = out->len;
      if (!str_cats(out, verb)) goto done;
    }
    if (!str_cat(out, &item)) goto done;
  }
  rc = out->len > strlen(verb) ? 0 : 1;    /* 1: nothing to say */
done:
  str_free(&item);
  return rc;
}

/* Send the identity commands before MAIL.  XFORWARD to a next hop with
 * PIPELINING is only queued: *pending counts the replies the caller reads
 * after MAIL's (xforward_replies).  A refusal is logged, not fatal.
 * XCLIENT starts a new SMTP session (a 220 greeting, then EHLO again, as
 * the client's HELO name) and is sent again only when it would change.
 * 0, or -1 when the connection broke. */
static int announce(struct relay* r, unsigned* pending)
{
  int xclient = !(r->caps.bits & CAP_XFORWARD) && (r->caps.bits & CAP_XCLIENT);
  int pipe = !xclient && (r->caps.bits & CAP_PIPELINING);
  *pending = 0;
  if (!r->xforward || !(r->caps.bits & (CAP_XFORWARD | CAP_XCLIENT))) return 0;
  int k = identity_cmds(r, xclient, &r->cmd);
  if (k < 0) return -1;
  if (k > 0 || (xclient && str_diffs(&r->xclient_sent, r->cmd.s ? r->cmd.s : "") == 0)) return 0;
  for (unsigned i = 0; r->cmd.s && i < r->cmd.len; ) {
    const char* nl = memchr(r->cmd.s + i, '\n', r->cmd.len - i);
    unsigned end = nl ? (unsigned)(nl - r->cmd.s) : r->cmd.len;
    if (relay_send(r, r->cmd.s + i, end - i) < 0) return -1;
    i = end + 1;
    if (pipe) { ++*pending; continue; }
    if (relay_reply(r, &r->aux) < 0) return -1;
    if (r->aux.code != (xclient ? 220 : 250)) {
      log_parts(LOG_WARN, "relay: next hop refused ", verb_of(xclient), ": ", r->aux.text.s);
      continue;
    }
    if (xclient) {
      if (!str_copy(&r->xclient_sent, &r->cmd)) return -1;
      return relay_rehello(r, v_helo());
    }
  }
  return 0;
}

/* The replies to pipelined XFORWARD commands; 0 or -1 (connection). */
static int xforward_replies(struct relay* r, unsigned pending)
{
  for (; pending > 0; pending--) {
    if (relay_reply(r, &r->aux) < 0) return -1;
    if (r->aux.code != 250) log_parts(LOG_WARN, "relay: next hop refused XFORWARD: ", r->aux.text.s, 0, 0);
  }
  return 0;
}

/* ---- hooks ---- */

static const response* init_common(int lmtp)
{
  struct relay* r = relay_self();
  if (!r) return &resp_internal;
  if (relay_config(r, lmtp) < 0) {
    log_parts(LOG_ERR, "relay: ", r->why.s ? r->why.s : "configuration error", 0, 0);
    return &resp_config;
  }
  return 0;
}



const response* relay_init_smtp(void) { return init_common(0); }
const response* relay_init_lmtp(void) { return init_common(1); }

static void end_spool(struct relay* r)
{
  if (r->spool_fd >= 0) close(r->spool_fd);
  r->spool_fd = -1;
}


const response* relay_reset(void)
{
  struct relay* r = relay_self();
  if (!r) return &resp_internal;
  end_spool(r);
  r->file_mode = 0;
  r->data_error = 0;
  if (r->st == RS_DATA && !r->bdat) {
    /* DATA cannot be cancelled: close before the final dot. */
    log_parts(0, "relay: transaction aborted, connection to ", r->peer.s, " closed", 0);
    relay_close(r, 0);
  } else if (r->st != RS_IDLE) {
    int ok = 1;
    for (; ok && r->bdat_pending > 0; r->bdat_pending--) ok = relay_reply(r, &r->aux) == 0;
    if (ok && (relay_send(r, "RSET", 4) < 0 || relay_reply(r, &r->aux) < 0 || r->aux.code != 250)) ok = 0;
    if (!ok) relay_close(r, 0);
  }
  r->st = RS_IDLE;
  r->txn = 0;
  r->nrcpt = 0;
  r->rcpts.len = 0;
  r->bdat = r->bdat_pending = 0;
  return 0;
}


const response* relay_sender(str* addr, str* params)
{
  struct relay* r = relay_self();
  if (!r) return &resp_internal;
  const char* refused;
  if (relay_address_ok(addr) < 0) return &resp_bad_addr;
  for (int attempt = 0; attempt < 2; attempt++) {
    int fresh = !relay_connected(r);
    if (fresh && relay_open(r) < 0) {
      log_parts(LOG_WARN, "relay: no next hop available: ", r->why.len ? r->why.s : "", 0, 0);
      return &resp_unavailable;
    }
    r->cmd.len = 0;
    if (!str_cats(&r->cmd, "MAIL FROM:<") || !str_catb(&r->cmd, addr->s ? addr->s : "", addr->len) || !str_catc(&r->cmd, '>'))
      return &resp_oom;
    int p = relay_params(&r->caps, 0, params, &r->cmd, &refused);
    if (p < 0) return &resp_bad_param;
    if (p > 0) return &resp_no_utf8;
    str mail = {0, 0, 0};
    if (!str_copy(&mail, &r->cmd)) return &resp_oom;
    unsigned pending;
    int k = announce(r, &pending);
    if (k == 0) k = relay_send(r, mail.s, mail.len) < 0 || xforward_replies(r, pending) < 0
                    || relay_reply(r, &r->reply) < 0 ? -1 : 0;
    str_free(&mail);
    if (k < 0 || (r->reply.code == 421 && !fresh)) {
      if (!fresh) {                 /* an idle connection the next hop dropped */
        relay_close(r, 0);
        continue;
      }
      return lost_because(r);
    }
    r->reused = 1;
    if (!is_2xx(r->reply.code)) return mapped(r, &r->reply);
    r->st = RS_MAIL;
    r->txn = 1;
    r->nrcpt = 0;
    r->rcpts.len = 0;
    return 0;
  }
  return &resp_unavailable;
}


const response* relay_recipient(str* addr, str* params)
{
  struct relay* r = relay_self();
  if (!r) return &resp_internal;
  const char* refused;
  if (r->st != RS_MAIL) return &resp_no_txn;
  if (relay_address_ok(addr) < 0) return &resp_bad_addr;
  r->cmd.len = 0;
  if (!str_cats(&r->cmd, "RCPT TO:<") || !str_catb(&r->cmd, addr->s ? addr->s : "", addr->len) || !str_catc(&r->cmd, '>'))
    return &resp_oom;
  int p = relay_params(&r->caps, 1, params, &r->cmd, &refused);
  if (p != 0) return &resp_bad_param;
  if (relay_send(r, r->cmd.s, r->cmd.len) < 0 || relay_reply(r, &r->reply) < 0) return lost_because(r);
  if (!is_2xx(r->reply.code)) return mapped(r, &r->reply);
  if (!str_catb(&r->rcpts, addr->s ? addr->s : "", addr->len) || !str_catc(&r->rcpts, 0)) return &resp_oom;
  r->nrcpt++;
  return 0;
}

/* Open the data phase downstream: DATA (354) or, with CHUNKING, nothing
 * yet (each BDAT carries its size). */
static const response* begin_data(struct relay* r)
{
  if (r->st != RS_MAIL || r->nrcpt == 0) return &resp_no_txn;
  r->bdat = r->chunking && (r->caps.bits & CAP_CHUNKING);
  r->bdat_pending = 0;
  r->bytes = 0;
  r->chunk.len = 0;
  relay_enc_start(&r->enc, !r->bdat);
  if (!r->bdat) {
    if (relay_send(r, "DATA", 4) < 0 || relay_reply(r, &r->reply) < 0) return lost_because(r);
    if (r->reply.code != 354) return mapped(r, &r->reply);
  }
  r->st = RS_DATA;
  return 0;
}

/* One BDAT chunk from r->chunk; keeps one reply outstanding so the next
 * hop never blocks on its replies while we write. */
static int send_chunk(struct relay* r, int last)
{
  char hdr[48];
  int n = snprintf(hdr, sizeof hdr, "BDAT %u%s", r->chunk.len, last ? " LAST" : "");
  if (relay_send(r, hdr, (unsigned long)n) < 0 || relay_write(r, r->chunk.s ? r->chunk.s : "", r->chunk.len) < 0) return -1;
  r->chunk.len = 0;
  r->bdat_pending++;
  if (last || r->bdat_pending < 2) return 0;
  r->bdat_pending--;
  if (relay_reply(r, &r->reply) < 0) return -1;
  if (r->reply.code != 250 && !r->data_error) {
    if (copy_reply(&r->first_fail, &r->reply) < 0) return -1;
    r->data_error = &r->first_fail.resp;
  }
  return 0;
}

/* Encode and send (DATA) or collect (BDAT) one block of the body. */
static int stream(struct relay* r, const char* b, unsigned long len)
{
  r->bytes += len;
  if (relay_enc_feed(&r->enc, b, len, &r->chunk) < 0) return -1;
  if (!r->bdat) {
    int k = relay_write(r, r->chunk.s, r->chunk.len);
    r->chunk.len = 0;
    return k;
  }
  return r->chunk.len >= RELAY_BDAT_CHUNK ? send_chunk(r, 0) : 0;
}


const response* relay_data_start(int fd)
{
  struct relay* r = relay_self();
  if (!r) return &resp_internal;
  r->data_error = 0;
  r->file_mode = 0;
  end_spool(r);
  if (!r->txn) {                           /* QMQP/QMTP: the envelope follows */
    r->spool_fd = scratchfile();
    return r->spool_fd < 0 ? &resp_spool : 0;
  }
  if (r->st != RS_MAIL) return &resp_no_txn;  /* the next hop went away */
  if (fd >= 0) { r->file_mode = 1; return 0; }
  return begin_data(r);
}


const response* relay_data_block(const char* bytes, unsigned long len)
{
  struct relay* r = relay_self();
  if (!r) return &resp_internal;
  if (r->spool_fd >= 0) {
    if (fd_write_all(r->spool_fd, bytes, len) < 0) { r->data_error = &resp_spool; end_spool(r); }
    return 0;
  }
  if (r->file_mode || r->data_error || r->st != RS_DATA) return 0;
  if (stream(r, bytes, len) < 0) r->data_error = lost_because(r);
  return 0;
}

/* The body from a file (the core's temporary file, or our spool). */
static const response* send_file(struct relay* r, int fd)
{
  const response* e = begin_data(r);
  if (e) return e;
  if (lseek(fd, 0, SEEK_SET) != 0) return &resp_internal;
  char* buf = malloc(RELAY_FILE_BLOCK);
  if (!buf) return &resp_oom;
  for (;;) {
    ssize_t n = read(fd, buf, RELAY_FILE_BLOCK);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) { free(buf); return &resp_internal; }
    if (n == 0) break;
    if (stream(r, buf, (unsigned long)n) < 0) { free(buf); return lost_because(r); }
    if (r->data_error) break;
  }
  free(buf);
  return 0;
}

static void log_result(struct relay* r, const char* rcpt, const struct relay_reply* rep)
{
  log_fmt(0, "relay: %s%s%s%s reply=%u %.300s", r->lmtp ? "lmtp" : "smtp", rcpt ? " rcpt=<" : "",
          rcpt ? rcpt : "", rcpt ? ">" : "", rep->code, rep->text.s ? rep->text.s : "");
}

/* LMTP: one reply per accepted recipient, combined (see the top). */
static const response* lmtp_results(struct relay* r)
{
  unsigned ok = 0, failed = 0, temp = 0;
  const char* rcpt = r->rcpts.s;
  for (unsigned i = 0; i < r->nrcpt; i++) {
    if (relay_reply(r, &r->reply) < 0) {
      if (ok) log_fmt(LOG_WARN, "relay: lmtp connection lost after %u of %u recipients were delivered", ok, r->nrcpt);
      return lost_because(r);
    }
    log_result(r, rcpt, &r->reply);
    rcpt += strlen(rcpt) + 1;
    if (is_2xx(r->reply.code)) {
      if (!ok++ && copy_reply(&r->first_ok, &r->reply) < 0) return &resp_oom;
    } else {
      int is_temp = r->reply.code < 500;
      if ((!failed || (is_temp && !temp)) && copy_reply(&r->first_fail, &r->reply) < 0) return &resp_oom;
      failed++;
      temp += is_temp;
    }
  }
  r->st = RS_IDLE;
  if (!failed) return &r->first_ok.resp;
  if (!ok) return &r->first_fail.resp;
  log_fmt(LOG_WARN, "relay: lmtp delivered to %u of %u recipients; asking the client to retry", ok, r->nrcpt);
  return &resp_mixed;
}


const response* relay_message_end(int fd)
{
  struct relay* r = relay_self();
  if (!r) return &resp_internal;
  if (r->data_error) return r->data_error;
  if (r->spool_fd >= 0 || r->file_mode) {
    const response* e = send_file(r, r->spool_fd >= 0 ? r->spool_fd : fd);
    end_spool(r);
    if (e) return e;
    if (r->data_error) return r->data_error;
  }
  if (r->st != RS_DATA) return &resp_no_txn;
  if (relay_enc_end(&r->enc, &r->chunk) < 0) return &resp_oom;
  if (r->bdat) {
    if (send_chunk(r, 1) < 0) return lost_because(r);
    for (; r->bdat_pending > 1; r->bdat_pending--) {
      if (relay_reply(r, &r->reply) < 0) return lost_because(r);
      if (r->reply.code != 250 && !r->data_error) {
        if (copy_reply(&r->first_fail, &r->reply) < 0) return &resp_oom;
        r->data_error = &r->first_fail.resp;
      }
    }
    r->bdat_pending = 0;
  } else {
    if (relay_write(r, r->chunk.s, r->chunk.len) < 0) return lost_because(r);
    r->chunk.len = 0;
  }
  if (r->lmtp) {
    const response* res = lmtp_results(r);
    return r->data_error && res->number < 400 ? r->data_error : res;
  }
  if (relay_reply(r, &r->reply) < 0) return lost_because(r);
  r->st = RS_IDLE;
  log_result(r, 0, &r->reply);
  if (!is_2xx(r->reply.code)) return mapped(r, &r->reply);
  return r->data_error ? r->data_error : &r->reply.resp;
}

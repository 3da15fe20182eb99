/* qmxp.c -- code shared by protocol-qmqp.so and protocol-qmtp.so
 * (protocols.md "QMQP", "QMTP", "QMQP/QMTP reply encoding"); linked into
 * both modules, declared in qmxp.h.  It provides:
 *   - the reply encoder (`LEN:CTEXT,`, C = K, Z or D), qmxp_respond_line,
 *     and the protocol's per-session context that assembles a reply
 *     (protocol ABI version 4: qmxp_session_open/qmxp_session_close);
 *   - the session loop, qmxp_run: the session limit, the address limit,
 *     the protocol's message function until it says stop;
 *   - the per-message state, struct qmxp, and the step helpers that apply
 *     the error carry-over rule: a step runs only while no error is kept,
 *     and the first error is the message's reply;
 *   - the streaming body reader: body bytes go from the input buffer to
 *     handle_data_bytes in blocks of at most QMXP_BLOCK bytes, so no
 *     message is ever held in memory;
 *   - the bounded address reader: a sender or recipient netstring longer
 *     than the limit ($QMQP_MAXADDR / $QMTP_MAXADDR, default
 *     QMXP_MAXADDR_DFLT bytes) is skipped, not stored, and refuses the
 *     message with a permanent reply; so is an address containing a NUL
 *     byte (it would forge envelope entries in NUL-separated queue formats)
 *     and an empty recipient (no null forward-path exists; in a
 *     NUL-separated envelope it would read as the list's end).
 *
 * Errors: parsers return 1 (ok), 0 (format error) or -1 (end of input,
 * read error or read timeout, which the protocols treat alike), -2 when
 * memory is exhausted.  Format errors of the protocol end the session
 * through qmxp_die: a `Z` reply with the spec's text, exit status 111.
 * Nothing here exits.
 *
 * Memory: struct qmxp owns its address and parameter strings (qmxp_run
 * frees them).  The reply being assembled lives in the per-session
 * context; no file-scope state. */
#include "protocols/qmxp.h"
#include "lib/log.h"
#include "lib/progenv.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static RESPONSE(qmxp_sender_long, 553, "5.1.7 Sender address too long.");
static RESPONSE(qmxp_recip_long, 553, "5.1.3 Recipient address too long.");
static RESPONSE(qmxp_sender_nul, 553, "5.1.7 Sender address contains a NUL byte.");
static RESPONSE(qmxp_recip_nul, 553, "5.1.3 Recipient address contains a NUL byte.");
static RESPONSE(qmxp_recip_empty, 554, "5.1.2 Recipient address may not be empty");

/* ---- reply encoding ---- */

/* The class letter of a reply number: K accepts, Z defers, D refuses. */
char qmxp_class(unsigned number)
{
  number &= RESPONSE_MASK;
  if (number >= 500) return 'D';
  if (number >= 400 || number < 200) return 'Z';
  return 'K';
}

/* Append the netstring `LEN:CTEXT,` to out.  Returns 1, or 0 when memory
 * is exhausted (out is then unchanged in length). */
int qmxp_encode(str* out, unsigned number, const char* text, unsigned long len)
{
  char head[32];
  unsigned old = out->len;
  if (len >= STR_MAX) return 0;
  int n = snprintf(head, sizeof head, "%lu:%c", len + 1, qmxp_class(number));
  if (!str_catb(out, head, (unsigned)n) || !str_catb(out, text, (unsigned)len) || !str_catc(out, ',')) {
    str_truncate(out, old);
    return 0;
  }
  return 1;
}

/* The reply being assembled: its lines so far, and the encoded netstring. */
struct qmxp_reply { str lines, wire; };

const response* qmxp_session_open(void** ctx)
{
  *ctx = calloc(1, sizeof(struct qmxp_reply));
  return *ctx ? 0 : &resp_oom;
}

void qmxp_session_close(void* ctx)
{
  struct qmxp_reply* r = ctx;
  if (!r) return;
  str_free(&r->lines);
  str_free(&r->wire);
  free(r);
}

/* protocol.respond_line: lines of one reply are joined with '\n' and sent
 * as a single netstring when the final line arrives. */
int qmxp_respond_line(unsigned number, int final, const char* msg, unsigned long len)
{
  struct qmxp_reply* rp = protocol_context();
  if (!rp) return 0;
  if (!final || rp->lines.len > 0) {
    if (len >= STR_MAX || !str_catb(&rp->lines, msg, (unsigned)len)
        || (!final && !str_catc(&rp->lines, '\n'))) {
      rp->lines.len = 0;
      return 0;
    }
    if (!final) return 1;
    msg = rp->lines.s;
    len = rp->lines.len;
  }
  rp->wire.len = 0;
  int ok = qmxp_encode(&rp->wire, number, msg, len)
    && obuf_write(session_output(), rp->wire.s, rp->wire.len) == 0;
  rp->lines.len = 0;
  if (rp->wire.size > 65536) str_free(&rp->wire);
  if (rp->lines.size > 65536) str_free(&rp->lines);
  return ok;
}

/* ---- the session ---- */

/* protocol.mainloop of both protocols: the session limit, the input, the
 * address limit from the variable `limitvar` (lib/progenv.h's rule; 0
 * means the default), then `message` until it returns 0.  Returns the
 * session's exit status. */
int qmxp_run(const char* limitvar, qmxp_message_fn message)
{
  static const struct env_number spec = { QMXP_MAXADDR_DFLT, 1, STR_MAX - 1, 0 };
  struct qmxp q;
  memset(&q, 0, sizeof q);
  session_set_timeout(QMXP_SESSION_SECONDS);
  q.in = session_input();
  (void)str_ready(&q.params, 0);
  q.maxaddr = env_number_parse(session_getenv(limitvar), &spec);
  while (message(&q)) {}
  str_free(&q.addr);
  str_free(&q.params);
  return q.status;
}

static int qmxp_is_error(const response* r) { return r && (r->number & RESPONSE_MASK) >= 400; }

/* Keep r as the message's error if it is the first one. */
void qmxp_keep(struct qmxp* q, const response* r)
{
  if (!q->err && qmxp_is_error(r)) q->err = r;
}

/* Send r; 0 (and status 1) when the client can no longer be written to. */
static int qmxp_reply(struct qmxp* q, const response* r)
{
  if (respond(r)) return 1;
  q->status = 1;
  return 0;
}

/* A protocol format error: `Z` + text, status 111.  When the session
 * limit has passed, the session ends silently with status 0 instead, as
 * the original's alarm does.  Always returns 0 (end the session). */
int qmxp_die(struct qmxp* q, const char* text)
{
  if (session_expired()) {
    q->status = 0;
    return 0;
  }
  response r = { 451, text };
  respond(&r);
  q->status = 111;
  return 0;
}

/* Out of memory: `Z` + the core's text, status 111.  Returns 0. */
int qmxp_oom(struct qmxp* q)
{
  respond(&resp_oom);
  q->status = 111;
  return 0;
}

/* The end of a message: the kept error, or the message-end step's
 * result (a text-less acceptance gets the default text).  1 when the
 * reply was sent, 0 when it could not be. */
int qmxp_finish(struct qmxp* q)
{
  const response* r = q->err;
  response tmp;
  if (!r) {
    r = handle_message_end();
    if (!r) r = &resp_accepted_message;
    else if (!r->message && !qmxp_is_error(r)) {
      tmp.number = r->number;
      tmp.message = resp_accepted_message.message;
      r = &tmp;
    }
  }
  return qmxp_reply(q, r);
}

/* ---- reading ---- */

/* Discard n bytes of input.  1, or -1 at end of input. */
int qmxp_skip(ibuf* in, unsigned long n)
{
  while (n > 0) {
    int r = ibuf_fill(in);
    if (r <= 0) return -1;
    unsigned long avail = ibuf_buffered(in);
    if (avail > n) avail = n;
    ibuf_consume(in, avail);
    n -= avail;
  }
  return 1;
}

/* Stream len body bytes to the data step (only while no error is kept),
 * straight from the input buffer in blocks of at most QMXP_BLOCK bytes.
 * 1, or -1 when the input ends first. */
int qmxp_body(struct qmxp* q, unsigned long len)
{
  ibuf* in = q->in;
  while (len > 0) {
    int r = ibuf_fill(in);
    if (r <= 0) return -1;
    unsigned long n;
    const char* p = ibuf_view(in, &n);
    if (n > len) n = len;
    if (n > QMXP_BLOCK) n = QMXP_BLOCK;
    if (!q->err) handle_data_bytes(p, (unsigned)n);
    ibuf_consume(in, n);
    len -= n;
  }
  return 1;
}

/* The n bytes of an address whose length was read: into q->addr, or
 * skipped with *toolong set when n is over the limit.  1 ok, -1 end of
 * input, -2 out of memory. */
int qmxp_take_address(struct qmxp* q, unsigned long n, int* toolong)
{
  *toolong = 0;
  q->addr.len = 0;
  if (n > q->maxaddr) {
    *toolong = 1;
    return qmxp_skip(q->in, n);
  }
  if (!str_ready(&q->addr, (unsigned)n)) return -2;
  if (ibuf_read(q->in, q->addr.s, n) <= 0) return -1;
  q->addr.len = (unsigned)n;
  q->addr.s[n] = 0;
  return 1;
}

/* Read one address netstring into q->addr (see qmxp_take_address).
 * 1 ok, 0 format error (bad length or terminator), -1 end of input, -2
 * out of memory. */
int qmxp_address(struct qmxp* q, int* toolong)
{
  unsigned long n;
  char c;
  *toolong = 0;
  q->addr.len = 0;
  int r = get_netstring_len(q->in, &n);
  if (r <= 0) return r;
  r = qmxp_take_address(q, n, toolong);
  if (r < 0) return r;
  r = ibuf_getc(q->in, &c);
  if (r <= 0) return -1;
  return c == ',';
}

/* Log `KIND <ADDR>` (bytes that would break the log line are masked). */
static void qmxp_log_address(struct qmxp* q, const char* kind)
{
  str line = {0, 0, 0};
  if (str_cat2s(&line, kind, " <") && str_cat(&line, &q->addr) && str_catc(&line, '>'))
    log_bytes(0, "", line.s, line.len);
  str_free(&line);
}

/* The sender or recipient step for the address in q->addr, unless an
 * error is already kept.  toolong/NUL addresses refuse the message. */
void qmxp_envelope(struct qmxp* q, int is_sender, int toolong)
{
  if (!toolong) qmxp_log_address(q, is_sender ? "sender" : "recipient");
  if (q->err) return;
  if (toolong)
    q->err = is_sender ? &resp_qmxp_sender_long : &resp_qmxp_recip_long;
  else if (memchr(q->addr.s ? q->addr.s : "", 0, q->addr.len))
    q->err = is_sender ? &resp_qmxp_sender_nul : &resp_qmxp_recip_nul;
  else if (!is_sender && q->addr.len == 0)
    q->err = &resp_qmxp_recip_empty;
  else
    qmxp_keep(q, is_sender ? handle_sender(&q->addr, &q->params)
                           : handle_recipient(&q->addr, &q->params));
}

/* The start of a message: no error kept yet, the reset step, then the
 * length of the message's first netstring (as get_netstring_len). */
int qmxp_begin(struct qmxp* q, unsigned long* len)
{
  q->err = 0;
  qmxp_keep(q, handle_reset());
  return get_netstring_len(q->in, len);
}

/* The data step, len body bytes streamed, the body's comma, then the
 * sender netstring and its step: the part both protocols share after the
 * body length.  1 to go on, 0 when the session ends (q->status set). */
int qmxp_body_and_sender(struct qmxp* q, unsigned long len)
{
  int toolong;
  char c;
  if (!q->err) qmxp_keep(q, handle_data_start());
  if (qmxp_body(q, len) < 0) return qmxp_die(q, "EOF while reading body");
  int r = ibuf_getc(q->in, &c);
  if (r <= 0) return qmxp_die(q, "EOF while reading comma");
  if (c != ',') return qmxp_die(q, "Invalid netstring terminator");
  r = qmxp_address(q, &toolong);
  if (r == -2) return qmxp_oom(q);
  if (r < 0) return qmxp_die(q, "EOF while reading sender address");
  if (r == 0) return qmxp_die(q, "Invalid sender netstring");
  qmxp_envelope(q, 1, toolong);
  return 1;
}

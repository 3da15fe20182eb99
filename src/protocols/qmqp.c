/* qmqp.c -- protocol-qmqp.so: the QMQP server (protocols.md "QMQP").
 *
 * One message per connection: netstring(netstring(body) netstring(sender)
 * netstring(recipient)...).  The steps run in the order reset, data_start,
 * data_block x n, sender, recipient x n, message_end, each only while no
 * earlier step failed; the first error is the reply (qmxp.c).  The body
 * is streamed (never held in memory); addresses are bounded by
 * $QMQP_MAXADDR (default 4096 bytes).  The wrapper's length is read but,
 * as in the original, not checked against its content.
 *
 * Exit status: 0 after the reply or at end of input before a message
 * starts; 111 after a format error (a `Z` reply with the spec's text);
 * 1 when the reply cannot be written. */
#include "protocols/qmxp.h"

/* Handle the one message of the connection; the status is in q->status.
 * Always 0: the session ends after it. */
static int qmqp_message(struct qmxp* q)
{
  unsigned long len;
  int toolong, r;
  char c;

  r = qmxp_begin(q, &len);
  if (r < 0) return 0;                     /* end of input: silently */
  if (r == 0) return qmxp_die(q, "Invalid wrapper netstring");

  r = get_netstring_len(q->in, &len);
  if (r < 0) return 0;
  if (r == 0) return qmxp_die(q, "Invalid message body netstring");
  if (len == 0) return qmxp_die(q, "Zero length message");
  if (!qmxp_body_and_sender(q, len)) return 0;

  /* Recipients until the wrapper's terminator (left unread). */
  for (;;) {
    r = ibuf_peek(q->in, &c);
    if (r <= 0) return qmxp_die(q, "EOF before end of recipient list");
    if (c == ',') break;
    r = qmxp_address(q, &toolong);
    if (r == -2) return qmxp_oom(q);
    if (r < 0) return qmxp_die(q, "EOF while reading recipient list");
    if (r == 0) return qmxp_die(q, "Invalid recipient netstring");
    qmxp_envelope(q, 0, toolong);
  }
  qmxp_finish(q);
  return 0;
}

static int qmqp_mainloop(const struct command* commands)
{
  (void)commands;
  return qmxp_run("QMQP_MAXADDR", qmqp_message);
}

struct protocol protocol = QMXP_PROTOCOL("QMQP", qmqp_mainloop);

/* qmtp.c -- protocol-qmtp.so: the QMTP server (protocols.md "QMTP").
 *
 * Messages follow each other until end of input at a message boundary.
 * Each is netstring(LF body) netstring(sender) netstring(netstring(rcpt)
 * ...), answered by exactly one `K`/`Z`/`D` netstring.  Step order and
 * error carry-over as in QMQP (qmxp.c); after the first refusal the
 * remaining recipients are skipped unparsed and unlogged.
 *
 * Streaming: the body goes to the data step as it arrives, and the
 * recipient list is parsed while it is read (addresses bounded by
 * $QMTP_MAXADDR, default 4096 bytes).  The original reads the whole list
 * first; to keep its replies, an error inside the list is only reported
 * after the list's own netstring was read to its end, so a truncated or
 * badly terminated list still gets the list's error text.  What can
 * differ: recipients before such a damaged end have already been logged
 * and offered to the recipient step (the message then fails anyway).
 *
 * Exit status: 0 at end of input between messages; 111 after a format
 * error (a `Z` reply); 1 when a reply cannot be written. */
#include "protocols/qmxp.h"
#include <limits.h>

/* Read one recipient netstring of the list, which has *left bytes left.
 * Returns 1 with the address in q->addr (*toolong set when it was
 * longer than the limit and skipped), 0 with *bad = the error text of a
 * malformed netstring, -1 at end of input, -2 out of memory. */
static int qmtp_recipient(struct qmxp* q, unsigned long* left, int* toolong, const char** bad)
{
  unsigned long n = 0;
  int digits = 0;
  char c;
  *toolong = 0;
  q->addr.len = 0;
  for (;;) {
    if (*left == 0) { *bad = "Netstring length too long"; return 0; }
    if (ibuf_getc(q->in, &c) <= 0) return -1;
    --*left;
    if (c == ':') break;
    if (c < '0' || c > '9') { *bad = "Invalid netstring length"; return 0; }
    unsigned long d = (unsigned long)(c - '0');
    n = n > (ULONG_MAX - d) / 10 ? ULONG_MAX : n * 10 + d;   /* saturate */
    digits = 1;
  }
  if (!digits) { *bad = "Invalid netstring length"; return 0; }
  if (n > *left) { *bad = "Netstring length too long"; return 0; }
  if (n == *left) { *bad = "Netstring missing comma"; return 0; }
  int r = qmxp_take_address(q, n, toolong);
  if (r < 0) return r;
  *left -= n;
  if (ibuf_getc(q->in, &c) <= 0) return -1;
  --*left;
  if (c != ',') { *bad = "Netstring missing comma"; return 0; }
  return 1;
}

/* Handle one message.  1: go on with the next; 0: the session ends with
 * q->status. */
static int qmtp_message(struct qmxp* q)
{
  unsigned long len;
  int toolong, r;
  char c;

  r = qmxp_begin(q, &len);
  if (r < 0) return 0;                     /* end of input between messages */
  if (r == 0) return qmxp_die(q, "Invalid message body netstring");
  if (len == 0) return qmxp_die(q, "Zero length message");
  r = ibuf_getc(q->in, &c);
  if (r <= 0) return qmxp_die(q, "EOF while reading body NL");
  if (c != '\n') return qmxp_die(q, "Cannot handle non-LF line terminator");
  if (!qmxp_body_and_sender(q, len - 1)) return 0;

  r = get_netstring_len(q->in, &len);
  if (r < 0) return qmxp_die(q, "EOF while reading recipient list");
  if (r == 0) return qmxp_die(q, "Invalid recipient netstring");
  const char* bad = 0;
  while (len > 0 && !q->err && !bad) {
    r = qmtp_recipient(q, &len, &toolong, &bad);
    if (r == -2) return qmxp_oom(q);
    if (r < 0) return qmxp_die(q, "EOF while reading recipient list");
    if (r > 0) qmxp_envelope(q, 0, toolong);
  }
  if (qmxp_skip(q->in, len) < 0) return qmxp_die(q, "EOF while reading recipient list");
  r = ibuf_getc(q->in, &c);
  if (r <= 0) return qmxp_die(q, "EOF while reading recipient list");
  if (c != ',') return qmxp_die(q, "Invalid recipient netstring");
  if (bad) return qmxp_die(q, bad);
  return qmxp_finish(q);
}

static int qmtp_mainloop(const struct command* commands)
{
  (void)commands;
  return qmxp_run("QMTP_MAXADDR", qmtp_message);
}

struct protocol protocol = QMXP_PROTOCOL("QMTP", qmtp_mainloop);

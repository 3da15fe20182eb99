/* relay/wire.h -- the pure, I/O-free parts of the relay back ends' client
 * side of SMTP/LMTP: reply lines, EHLO capabilities, the DATA encoder,
 * xtext, and the table that says which MAIL/RCPT parameters may go on.
 *
 * Everything here works on caller-owned buffers (str) and returns 0 / -1
 * (malformed input or out of memory); nothing logs, exits or allocates
 * beyond the str it is given.  Unit tests: tests/unit/relay_wire.c. */
#ifndef MF_RELAY_WIRE_H
#define MF_RELAY_WIRE_H

#include <mailfront/str.h>

/* Limits on what a next hop may send us (protect our memory). */
#define RELAY_LINE_MAX 2048        /* bytes in one reply line */
#define RELAY_REPLY_LINES 64       /* lines in one reply */

/* One line of a reply, "NNN-text" or "NNN text" or "NNN" (CRLF or LF
 * already removed or not: a trailing CR/LF is ignored).  Sets *code,
 * *last (0 for a continuation line) and the text.  0 ok, -1 malformed
 * (no three-digit code from 200 to 599, or a bad separator). */
int relay_reply_line(const char* line, unsigned long len, unsigned* code, int* last,
                     const char** text, unsigned long* tlen);

/* Append one reply line's text to out as a line of our own reply: control
 * bytes become '?', a missing enhanced status code gets one of the class
 * of code (X.0.0), lines after the first are joined with '\n'.  0 / -1. */
int relay_reply_append(str* out, unsigned code, const char* text, unsigned long tlen);

/* EHLO capabilities we use, as bits. */
enum relay_cap
{
  CAP_PIPELINING = 1 << 0, CAP_8BITMIME = 1 << 1, CAP_SIZE = 1 << 2,
  CAP_SMTPUTF8 = 1 << 3, CAP_CHUNKING = 1 << 4, CAP_STARTTLS = 1 << 5,
  CAP_AUTH = 1 << 6, CAP_XFORWARD = 1 << 7, CAP_XCLIENT = 1 << 8,
  CAP_DSN = 1 << 9, CAP_ENHANCED = 1 << 10
};
struct relay_caps
{
  unsigned bits;
  unsigned long size;              /* SIZE limit, 0 = none given */
  int auth_plain, auth_login;
  str xforward, xclient;           /* attribute names offered, space separated */
};
/* Record the capability of one EHLO reply text (after the code), e.g.
 * "SIZE 10240000" or "AUTH PLAIN LOGIN".  Unknown ones are ignored. */
int relay_caps_add(struct relay_caps* c, const char* text, unsigned long len);
void relay_caps_clear(struct relay_caps* c);
/* 1 when attribute name is in the offered list (case-insensitive). */
int relay_attr_offered(const str* list, const char* name);

/* The DATA encoder: our message bytes use LF line ends; the wire uses
 * CRLF, with a '.' doubled at the start of a line (dot) or not (BDAT). */
struct relay_enc { int bol; int dot; };
void relay_enc_start(struct relay_enc* e, int dot);
int relay_enc_feed(struct relay_enc* e, const char* in, unsigned long len, str* out);
/* The end: a CRLF if the message did not end with a line end, and for
 * DATA the ".\r\n" line. */
int relay_enc_end(struct relay_enc* e, str* out);

/* RFC 3461 xtext of s (for XFORWARD/XCLIENT values and AUTH=). */
int relay_xtext(str* out, const char* s, unsigned long len);

/* ESMTP parameters (NUL-separated KEY=VALUE items, as the core gives
 * them) to forward, as " KEY=VALUE" items appended to out, keeping only
 * those the next hop offered.  Returns 0, -1 (out of memory or a value
 * with bytes that cannot go on a command line), or 1 when a parameter the
 * next hop cannot honour must refuse the command (SMTPUTF8 without the
 * extension); *refused then names it. */
int relay_params(const struct relay_caps* c, int rcpt, const str* params, str* out, const char** refused);

/* 0 when an address can be put between < and > on a command line. */
int relay_address_ok(const str* a);

#endif

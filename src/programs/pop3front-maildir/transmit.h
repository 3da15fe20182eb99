/* transmit.h -- pop3front-maildir: encoding a message file for RETR/TOP.
 *
 * The encoder turns file bytes into the POP3 multi-line body: every LF is
 * sent as CR LF (a CR already before it is kept), a line starting with '.'
 * gets another '.', and after the content CR LF "." CR LF is always sent
 * (as the original).  For TOP it stops after the header,
 * the first empty line (exactly LF) and `lines` body lines.  It is a small
 * state machine fed block by block, so a message is streamed and never
 * held in memory.  Output goes to an obuf; functions return 0, or -1 when
 * the obuf failed (its error/timedout flags say why). */
#ifndef POP3_TRANSMIT_H
#define POP3_TRANSMIT_H

#include <stddef.h>
#include <mailfront/iobuf.h>

struct msg_encoder
{
  int at_bol;            /* next byte starts a line */
  int in_header;         /* still before the first empty line */
  int limited;           /* TOP: stop after `lines` body lines */
  unsigned long lines;   /* body lines still to send */
  int done;              /* limit reached: ignore further input */
};

void encoder_init(struct msg_encoder* e, int limited, unsigned long lines);
int encoder_block(struct msg_encoder* e, const char* b, size_t len, obuf* out);
int encoder_finish(struct msg_encoder* e, obuf* out);

/* Stream the open file fd through e into out, reading with buf.
 * Returns 0, -1 (write failed) or -2 (read failed, errno set). */
int encoder_send_fd(struct msg_encoder* e, int fd, char* buf, size_t bufsize, obuf* out);

#endif

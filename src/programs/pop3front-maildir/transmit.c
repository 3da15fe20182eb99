/* transmit.c -- pop3front-maildir: the RETR/TOP byte encoder (see
 * transmit.h).  Works on whole runs between LFs, so the cost per byte is
 * one memchr and one memcpy into the obuf. */
#include "transmit.h"
#include <errno.h>
#include <string.h>
#include <unistd.h>

void encoder_init(struct msg_encoder* e, int limited, unsigned long lines)
{
  e->at_bol = 1;
  e->in_header = 1;
  e->limited = limited;
  e->lines = lines;
  e->done = 0;
}

/* One LF was seen; the line it ends was empty when `empty`. */
static void end_of_line(struct msg_encoder* e, int empty)
{
  if (e->in_header) {
    if (empty) {
      e->in_header = 0;
      if (e->limited && e->lines == 0) e->done = 1;
    }
  }
  else if (e->limited && --e->lines == 0)
    e->done = 1;
}

int encoder_block(struct msg_encoder* e, const char* b, size_t len, obuf* out)
{
  while (len > 0 && !e->done) {
    const char* nl = memchr(b, '\n', len);
    size_t run = nl ? (size_t)(nl - b) : len;
    if (e->at_bol && run > 0 && b[0] == '.' && obuf_putc(out, '.') < 0) return -1;
    if (run > 0 && obuf_write(out, b, run) < 0) return -1;
    if (!nl) {
      if (run > 0) e->at_bol = 0;
      break;
    }
    if (obuf_write(out, "\r\n", 2) < 0) return -1;
    end_of_line(e, e->at_bol && run == 0);
    e->at_bol = 1;
    b += run + 1;
    len -= run + 1;
  }
  return 0;
}

int encoder_finish(struct msg_encoder* e, obuf* out)
{
  (void)e;
  return obuf_write(out, "\r\n.\r\n", 5);
}

int encoder_send_fd(struct msg_encoder* e, int fd, char* buf, size_t bufsize, obuf* out)
{
  while (!e->done) {
    ssize_t r = read(fd, buf, bufsize);
    if (r < 0) {
      if (errno == EINTR) continue;
      return -2;
    }
    if (r == 0) break;
    if (encoder_block(e, buf, (size_t)r, out) < 0) return -1;
  }
  return encoder_finish(e, out);
}

/* iobuf.c -- buffered streams with per-call timeouts and a session
 * deadline (see include/mailfront/iobuf.h).  Waiting is done with poll(2)
 * on the descriptor unless the transport reports pending bytes.  Errors are
 * returned as -1 with errno; nothing here exits or logs. */
#include <mailfront/iobuf.h>
#include "lib/clock.h"
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Wait until fd is ready for `events`: 1 ready, -1 timeout/error. */
static int wait_fd(int fd, short events, unsigned timeout_ms, const long long* deadline, int* timedout)
{
  long long end = timeout_ms ? clock_mono_ms() + timeout_ms : -1;
  if (deadline && *deadline > 0 && (end < 0 || *deadline < end)) end = *deadline;
  for (;;) {
    int wait = -1;
    if (end >= 0) {
      long long left = end - clock_mono_ms();
      if (left <= 0) { *timedout = 1; errno = ETIMEDOUT; return -1; }
      wait = left > 0x7fffffff ? 0x7fffffff : (int)left;
    }
    struct pollfd p = { fd, events, 0 };
    int r = poll(&p, 1, wait);
    if (r > 0) return 1;
    if (r < 0 && errno != EINTR) return -1;
  }
}

int ibuf_init(ibuf* in, int fd, unsigned long bufsize)
{
  memset(in, 0, sizeof *in);
  in->fd = fd;
  in->size = bufsize ? bufsize : 8192;
  in->buf = malloc(in->size);
  return in->buf ? 0 : -1;
}

void ibuf_close(ibuf* in) { free(in->buf); in->buf = 0; in->head = in->tail = 0; }

unsigned long ibuf_buffered(const ibuf* in) { return in->tail - in->head; }

unsigned long ibuf_discard(ibuf* in)
{
  unsigned long n = in->tail - in->head;
  in->head = in->tail = 0;
  return n;
}

int ibuf_fill(ibuf* in)
{
  if (in->head < in->tail) return 1;
  if (in->eof) return 0;
  if (in->error || in->timedout) return -1;
  in->head = in->tail = 0;
  if (in->tie) obuf_flush(in->tie);
  for (;;) {
    if (!(in->tr && in->tr->pending && in->tr->pending(in->tr->ctx))) {
      if (wait_fd(in->fd, POLLIN, in->timeout_ms, in->deadline_ms, &in->timedout) < 0) {
        in->error = !in->timedout;
        return -1;
      }
    }
    long r = in->tr ? in->tr->read(in->tr->ctx, in->buf, in->size) : (long)read(in->fd, in->buf, in->size);
    if (r > 0) { in->tail = (unsigned long)r; in->count += (unsigned long)r; return 1; }
    if (r == 0) { in->eof = 1; return 0; }
    if (errno == EINTR || errno == EAGAIN) continue;
    in->error = 1;
    return -1;
  }
}

int ibuf_getc(ibuf* in, char* c)
{
  int r = ibuf_fill(in);
  if (r <= 0) return r;
  *c = in->buf[in->head++];
  return 1;
}

int ibuf_peek(ibuf* in, char* c)
{
  int r = ibuf_fill(in);
  if (r <= 0) return r;
  *c = in->buf[in->head];
  return 1;
}

int ibuf_read(ibuf* in, char* out, unsigned long len)
{
  while (len > 0) {
    int r = ibuf_fill(in);
    if (r <= 0) return r;
    unsigned long n = in->tail - in->head;
    if (n > len) n = len;
    memcpy(out, in->buf + in->head, n);
    in->head += n;
    out += n;
    len -= n;
  }
  return 1;
}

int ibuf_getline(ibuf* in, str* line, unsigned long max, int* toolong)
{
  int got = 0;
  line->len = 0;
  if (line->s) line->s[0] = 0;
  *toolong = 0;
  for (;;) {
    int r = ibuf_fill(in);
    if (r < 0) return -1;
    if (r == 0) return got ? 1 : 0;
    got = 1;
    char* start = in->buf + in->head;
    unsigned long avail = in->tail - in->head;
    char* nl = memchr(start, '\n', avail);
    unsigned long n = nl ? (unsigned long)(nl - start) + 1 : avail;
    unsigned long room = max > line->len ? max - line->len : 0;
    unsigned long keep = n < room ? n : room;
    if (keep < n) *toolong = 1;
    if (keep && !str_catb(line, start, (unsigned)keep)) { errno = ENOMEM; return -1; }
    in->head += n;
    if (nl) return 1;
  }
}

int obuf_init(obuf* out, int fd, unsigned long bufsize)
{
  memset(out, 0, sizeof *out);
  out->fd = fd;
  out->size = bufsize ? bufsize : 8192;
  out->buf = malloc(out->size);
  return out->buf ? 0 : -1;
}

void obuf_close(obuf* out) { free(out->buf); out->buf = 0; out->len = 0; }

static int write_all(obuf* out, const char* b, unsigned long len)
{
  while (len > 0) {
    if (out->error || out->timedout) return -1;
    if (wait_fd(out->fd, POLLOUT, out->timeout_ms, out->deadline_ms, &out->timedout) < 0) {
      out->error = !out->timedout;
      return -1;
    }
    long r = out->tr ? out->tr->write(out->tr->ctx, b, len) : (long)write(out->fd, b, len);
    if (r < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      out->error = 1;
      return -1;
    }
    out->count += (unsigned long)r;
    b += r;
    len -= (unsigned long)r;
  }
  return 0;
}

int obuf_flush(obuf* out)
{
  if (out->len == 0) return out->error || out->timedout ? -1 : 0;
  int r = write_all(out, out->buf, out->len);
  out->len = 0;
  return r;
}

int obuf_write(obuf* out, const char* b, unsigned long len)
{
  if (out->error || out->timedout) return -1;
  if (len > out->size - out->len) {
    if (obuf_flush(out) < 0) return -1;
    if (len >= out->size) return write_all(out, b, len);
  }
  memcpy(out->buf + out->len, b, len);
  out->len += len;
  return 0;
}

int obuf_puts(obuf* out, const char* s) { return obuf_write(out, s, strlen(s)); }
int obuf_putc(obuf* out, char c) { return obuf_write(out, &c, 1); }

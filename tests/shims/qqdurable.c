/* qqdurable.c -- a qmail-queue stand-in for the durability tests, with
 * qmail-queue's own guarantee: the message (fd 0, to end of file) and the
 * envelope (fd 1: F addr NUL, T addr NUL ..., NUL) are queued only when
 * both arrived whole, by writing $QQ_DIR/tmp/PID, fsync, and rename into
 * $QQ_DIR/queue/PID; a message cut short (its front end killed) is never
 * queued.  Queued file: envelope, then the message.  Exits 0 when queued,
 * 91 for a bad envelope, 81 for a read or write error, as qmail-queue. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char* slurp(int fd, size_t* len)
{
  size_t cap = 65536, n = 0;
  char* b = malloc(cap);
  for (;;) {
    if (!b) exit(81);
    if (n == cap) b = realloc(b, cap *= 2);
    if (!b) exit(81);
    ssize_t r = read(fd, b + n, cap - n);
    if (r < 0) exit(81);
    if (r == 0) break;
    n += (size_t)r;
  }
  *len = n;
  return b;
}

static int envelope_ok(const char* e, size_t n)
{
  if (n < 4 || e[0] != 'F' || e[n - 1] || e[n - 2]) return 0;
  size_t i = strnlen(e, n) + 1, rcpts = 0;
  while (i < n - 1) {
    if (e[i] != 'T') return 0;
    i += strnlen(e + i, n - i) + 1;
    rcpts++;
  }
  return rcpts > 0 && i == n - 1;
}

int main(void)
{
  size_t mlen, elen;
  char* msg = slurp(0, &mlen);
  char* env = slurp(1, &elen);
  if (!envelope_ok(env, elen)) return 91;
  const char* dir = getenv("QQ_DIR");
  if (!dir) return 81;
  char tmp[4096], dst[4096];
  snprintf(tmp, sizeof tmp, "%s/tmp/%d", dir, (int)getpid());
  snprintf(dst, sizeof dst, "%s/queue/%d", dir, (int)getpid());
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0 || write(fd, env, elen) != (ssize_t)elen || write(fd, msg, mlen) != (ssize_t)mlen
      || fsync(fd) != 0 || close(fd) != 0 || rename(tmp, dst) != 0)
    return 81;
  return 0;
}

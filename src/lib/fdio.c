/* fdio.c -- see fdio.h. */
#include "fdio.h"
#include "progenv.h"
#include "lib/clock.h"
#include <errno.h>
#include <poll.h>
#include <unistd.h>

int fd_write_all(int fd, const char* b, unsigned long len)
{
  while (len > 0) {
    ssize_t w = write(fd, b, len);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    b += w;
    len -= (unsigned long)w;
  }
  return 0;
}

int fd_write_deadline(int fd, const char* b, unsigned long len, long long deadline_ms)
{
  while (len > 0) {
    ssize_t w = write(fd, b, len);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
      int wait_ms = -1;
      if (deadline_ms > 0) {
        long long left = deadline_ms - clock_mono_ms();
        if (left <= 0) { errno = ETIMEDOUT; return -1; }
        wait_ms = left > 60000 ? 60000 : (int)left;
      }
      struct pollfd p = { fd, POLLOUT, 0 };
      if (poll(&p, 1, wait_ms) < 0 && errno != EINTR) return -1;
      continue;
    }
    b += w;
    len -= (unsigned long)w;
  }
  return 0;
}

/* fdio.c -- see fdio.h. */
#include "fdio.h"
#include <errno.h>
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

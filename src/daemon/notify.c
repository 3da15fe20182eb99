/* notify.c -- see notify.h. */
#include "daemon/notify.h"
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

int notify_send(const char* state)
{
  const char* path = getenv("NOTIFY_SOCKET");
  if (!path || !*path) return 0;
  struct sockaddr_un sun;
  size_t plen = strlen(path);
  if ((path[0] != '/' && path[0] != '@') || plen >= sizeof sun.sun_path) { errno = EINVAL; return -1; }
  memset(&sun, 0, sizeof sun);
  sun.sun_family = AF_UNIX;
  memcpy(sun.sun_path, path, plen);
  if (path[0] == '@') sun.sun_path[0] = 0;
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen);
  ssize_t w = sendto(fd, state, strlen(state), MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr*)&sun, alen);
  int e = errno;
  close(fd);
  errno = e;
  return w < 0 ? -1 : 0;
}

int notify_reloading(void)
{
  struct timespec ts;
  char buf[80];
  clock_gettime(CLOCK_MONOTONIC, &ts);
  snprintf(buf, sizeof buf, "RELOADING=1\nMONOTONIC_USEC=%llu",
           (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000u);
  return notify_send(buf);
}

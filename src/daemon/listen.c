/* listen.c -- see listen.h. */
#include "daemon/listen.h"
#include "daemon/addr.h"
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int prepare_fd(int fd)
{
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return -1;
  return fcntl(fd, F_SETFD, FD_CLOEXEC);
}

static int fail(str* err, const char* what, const char* detail)
{
  str_copys(err, what);
  if (detail) str_cat2s(err, ": ", detail);
  return -1;
}

int listen_inherit(struct listeners* l, str* err)
{
  const char* pid = getenv("LISTEN_PID");
  const char* fds = getenv("LISTEN_FDS");
  l->n = 0;
  if (!pid || !fds) return 0;
  char* end;
  unsigned long p = strtoul(pid, &end, 10);
  if (*end || p != (unsigned long)getpid()) return 0;
  unsigned long n = strtoul(fds, &end, 10);
  unsetenv("LISTEN_PID");
  unsetenv("LISTEN_FDS");
  unsetenv("LISTEN_FDNAMES");
  if (*end || n == 0) return fail(err, "LISTEN_FDS is not a positive number", fds);
  if (n > sizeof l->fd / sizeof l->fd[0]) return fail(err, "LISTEN_FDS: too many sockets", fds);
  for (unsigned i = 0; i < n; i++) {
    int fd = 3 + (int)i, type = 0, acc = 0;
    socklen_t len = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_STREAM)
      return fail(err, "LISTEN_FDS: not a stream socket", strerror(errno ? errno : ENOTSOCK));
    len = sizeof acc;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) < 0 || !acc)
      return fail(err, "LISTEN_FDS: socket is not listening (Accept=yes needs mailfront@.service, not mailfrontd)", 0);
    if (prepare_fd(fd) < 0) return fail(err, "LISTEN_FDS: fcntl", strerror(errno));
    l->fd[l->n++] = fd;
  }
  return 1;
}

int listen_open(struct listeners* l, const char* host, const char* port, int backlog, str* err)
{
  struct addrinfo hints, *res = 0;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  if (strcmp(host, "0") == 0) host = "0.0.0.0";
  int gai = getaddrinfo(host, port, &hints, &res);
  if (gai != 0) return fail(err, "cannot resolve the listening address", gai_strerror(gai));
  l->n = 0;
  int r = 0;
  for (struct addrinfo* ai = res; ai && l->n < sizeof l->fd / sizeof l->fd[0]; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0) { r = fail(err, "socket", strerror(errno)); break; }
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ai->ai_family == AF_INET6)   /* "::" serves IPv4 too, whatever the sysctl says */
      setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, backlog) < 0) {
      int e = errno;
      close(fd);
      /* a name with both an IPv4 and a dual-stack IPv6 address: the second
       * bind of the same port is covered by the first */
      if (e == EADDRINUSE && l->n > 0) continue;
      r = fail(err, "cannot listen", strerror(e));
      break;
    }
    l->fd[l->n++] = fd;
  }
  freeaddrinfo(res);
  if (r < 0) { listen_close(l); return -1; }
  if (l->n == 0) return fail(err, "cannot listen", "no address");
  return 0;
}

void listen_close(struct listeners* l)
{
  for (unsigned i = 0; i < l->n; i++) close(l->fd[i]);
  l->n = 0;
}

unsigned listen_port(const struct listeners* l)
{
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (l->n == 0 || getsockname(l->fd[0], (struct sockaddr*)&ss, &len) < 0) return 0;
  return addr_port(&ss);
}

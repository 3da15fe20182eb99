/* handoff.c -- one job (with its fd) or one status per seqpacket message
 * (contract in daemon/handoff.h).  The received fd is close-on-exec: the
 * session dup2()s it onto fds 0 and 1, which programs it runs inherit. */
#include "daemon/handoff.h"
#include <errno.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

union cmsg_room { struct cmsghdr h; char room[CMSG_SPACE(sizeof(int))]; };

int handoff_send(int chan, const struct job* j, int fd)
{
  union cmsg_room u;
  struct iovec iov = { (void*)j, sizeof *j };
  struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.room, .msg_controllen = sizeof u.room };
  memset(&u, 0, sizeof u);
  struct cmsghdr* c = CMSG_FIRSTHDR(&m);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof fd);
  ssize_t n;
  do n = sendmsg(chan, &m, MSG_NOSIGNAL); while (n < 0 && errno == EINTR);
  if (n == (ssize_t)sizeof *j) return 0;
  if (n >= 0) errno = EPROTO;
  return -1;
}

int handoff_recv(int chan, struct job* j, int* fd)
{
  union cmsg_room u;
  struct iovec iov = { j, sizeof *j };
  struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.room, .msg_controllen = sizeof u.room };
  ssize_t n;
  do n = recvmsg(chan, &m, MSG_CMSG_CLOEXEC); while (n < 0 && errno == EINTR);
  if (n <= 0) return (int)n;
  struct cmsghdr* c = CMSG_FIRSTHDR(&m);
  if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof(int))) {
    errno = EPROTO;
    return -1;
  }
  memcpy(fd, CMSG_DATA(c), sizeof *fd);
  if (n != (ssize_t)sizeof *j || (m.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
    close(*fd);
    errno = EPROTO;
    return -1;
  }
  return 1;
}

int handoff_done(int chan, int status)
{
  ssize_t n;
  do n = send(chan, &status, sizeof status, MSG_NOSIGNAL); while (n < 0 && errno == EINTR);
  return n == (ssize_t)sizeof status ? 0 : -1;
}

int handoff_status(int chan, int* status)
{
  ssize_t n = recv(chan, status, sizeof *status, MSG_DONTWAIT);
  if (n == (ssize_t)sizeof *status) return 1;
  if (n == 0) return 0;
  if (n > 0) { errno = EPROTO; return 0; }   /* a torn message: treat the process as gone */
  return errno == EAGAIN || errno == EINTR ? -1 : 0;
}

/* scanner.h -- the fake scanner connection of the spamd_reply and
 * clamd_reply harnesses: a socketpair whose far end already holds the
 * fuzzed reply (then end of stream), and a small message in a memfd.  The
 * plugin's exchange() writes its request into the pair (it fits in the
 * socket buffer) and parses the reply, exactly as against a real server. */
#ifndef MF_FUZZ_SCANNER_H
#define MF_FUZZ_SCANNER_H
#include "fuzz.h"
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#define SCANNER_MAX_REPLY 60000   /* stays below the socket buffer */
static const char scanner_msg[] = "Subject: fuzz\n\nbody\n";

/* 0 ok: sock[0] is the plugin's end, *msgfd the message. */
static inline int scanner_setup(const uint8_t* reply, size_t len, int sock[2], int* msgfd)
{
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sock) != 0) return -1;
  int big = 1 << 20;
  setsockopt(sock[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
  setsockopt(sock[0], SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  setsockopt(sock[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
  setsockopt(sock[1], SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  FUZZ_ASSERT(len == 0 || write(sock[1], reply, len) == (ssize_t)len);
  shutdown(sock[1], SHUT_WR);
  *msgfd = memfd_create("msg", 0);
  FUZZ_ASSERT(*msgfd >= 0);
  FUZZ_ASSERT(write(*msgfd, scanner_msg, sizeof scanner_msg - 1) == (ssize_t)(sizeof scanner_msg - 1));
  lseek(*msgfd, 0, SEEK_SET);
  return 0;
}

static inline void scanner_done(int sock[2], int msgfd)
{
  close(sock[0]);
  close(sock[1]);
  close(msgfd);
}
#endif

/* sessions.h -- helpers of the unit tests that run sessions in-process
 * through mf_session (core_sessions.c, relay_sessions.c, reuse_a.c,
 * reuse_b.c): the open fd count, a growable byte buffer, a file read
 * into one, a fake server's line reader, and one session over a
 * socketpair whose client side writes the whole transcript first.  Test
 * code only (static functions, like tap.h). */
#ifndef MF_TEST_SESSIONS_H
#define MF_TEST_SESSIONS_H
#include "../../src/core/mf.h"
#include <dirent.h>
#include <stdio.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int count_fds(void)
{
  DIR* d = opendir("/proc/self/fd");
  int n = 0;
  struct dirent* e;
  if (!d) return -1;
  while ((e = readdir(d))) if (e->d_name[0] != '.') n++;
  closedir(d);
  return n - 1;
}

struct buf { char* s; size_t len, cap; };

static void put(struct buf* b, const char* s, size_t n)
{
  if (b->len + n + 1 > b->cap) {
    size_t cap = (b->len + n + 1) * 2;
    char* p = realloc(b->s, cap);
    if (!p) abort();
    b->s = p;
    b->cap = cap;
  }
  memcpy(b->s + b->len, s, n);
  b->len += n;
  b->s[b->len] = 0;
}

/* The whole file at path into b (empty when it cannot be read), NUL-terminated. */
__attribute__((unused)) static void slurp(const char* path, struct buf* b)
{
  b->len = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  char tmp[4096];
  ssize_t r;
  while (fd >= 0 && (r = read(fd, tmp, sizeof tmp)) > 0) put(b, tmp, (size_t)r);
  if (fd >= 0) close(fd);
  put(b, "", 0);
}

/* One line of a fake server's client, without its CRLF, into line (max
 * bytes with the NUL; longer lines are cut); 0 at end of input. */
__attribute__((unused)) static int read_line(int fd, char* line, size_t max)
{
  size_t n = 0;
  for (;;) {
    char c;
    ssize_t r = read(fd, &c, 1);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return 0;
    if (c == '\n') break;
    if (n + 1 < max) line[n++] = c;
  }
  if (n > 0 && line[n - 1] == '\r') n--;
  line[n] = 0;
  return 1;
}

/* Run one session: write input, read every reply byte. */
static int run_session(struct mf_config* cfg, const struct buf* in, struct buf* out, char** env, int* status)
{
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) return -1;
  int big = 1 << 20;
  setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
  setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
  size_t off = 0;
  while (off < in->len) {
    ssize_t w = write(sv[0], in->s + off, in->len - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) { close(sv[0]); close(sv[1]); return -1; }
    off += (size_t)w;
  }
  shutdown(sv[0], SHUT_WR);
  *status = mf_session(cfg, sv[1], sv[1], env);
  close(sv[1]);
  char tmp[4096];
  for (;;) {
    ssize_t r = read(sv[0], tmp, sizeof tmp);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    put(out, tmp, (size_t)r);
  }
  close(sv[0]);
  return 0;
}

/* This build's directory (BUILD for BUILD/tests/NAME) into out (size
 * bytes).  0, or -1 when the program's own path is unknown. */
static int build_dir(char* out, size_t size)
{
  ssize_t n = readlink("/proc/self/exe", out, size - 1);
  if (n <= 0) return -1;
  out[n] = 0;
  *strrchr(out, '/') = 0;               /* BUILD/tests */
  *strrchr(out, '/') = 0;               /* BUILD */
  return 0;
}

#endif

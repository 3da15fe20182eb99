/* smtpload.c -- SMTP load generator for `make bench`.
 *
 * smtpload PORT CONCURRENCY SESSIONS MSGS_PER_SESSION MSG_BYTES
 * forks CONCURRENCY workers against 127.0.0.1:PORT; together they run
 * SESSIONS sessions, each sending MSGS_PER_SESSION messages of MSG_BYTES
 * (plus headers) with pipelined envelopes, checking every reply code.
 * Prints: `messages=N seconds=S msgs_per_sec=R failures=F`. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int send_all(int fd, const char* b, size_t n)
{
  while (n) {
    ssize_t w = write(fd, b, n);
    if (w <= 0) return -1;
    b += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Read n complete replies; count those whose code does not start with ok. */
static int read_replies(int fd, int n, const char* ok, char* buf, size_t bufsize)
{
  int bad = 0;
  size_t len = 0;
  while (n > 0) {
    char* nl;
    while (!(nl = memchr(buf, '\n', len))) {
      if (len == bufsize) return -1;
      ssize_t r = read(fd, buf + len, bufsize - len);
      if (r <= 0) return -1;
      len += (size_t)r;
    }
    size_t l = (size_t)(nl - buf) + 1;
    if (l >= 4 && buf[3] == ' ') {           /* last line of a reply */
      if (strchr(ok, buf[0]) == 0) bad++;
      n--;
    }
    memmove(buf, buf + l, len - l);
    len -= l;
  }
  return bad;
}

static int session(int port, int msgs, const char* msg, size_t msglen)
{
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  /* a deadline on every read and write: a connection the server never
   * answers (e.g. dropped from a full accept queue) is a failure, not a
   * hang */
  struct timeval tv = { 60, 0 };
  if (fd >= 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }
  struct sockaddr_in sa;
  char buf[65536];
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((unsigned short)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int one = 1;
  if (fd >= 0) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (fd < 0 || connect(fd, (struct sockaddr*)&sa, sizeof sa) < 0) { if (fd >= 0) close(fd); return msgs; }
  int bad = 0;
  if (read_replies(fd, 1, "2", buf, sizeof buf) != 0) bad = msgs;
  const char* ehlo = "EHLO bench.example\r\n";
  if (!bad && (send_all(fd, ehlo, strlen(ehlo)) < 0 || read_replies(fd, 1, "2", buf, sizeof buf) != 0)) bad = msgs;
  for (int i = 0; i < msgs && !bad; i++) {
    const char* env = "MAIL FROM:<sender@bench.example>\r\nRCPT TO:<rcpt@bench.example>\r\nDATA\r\n";
    if (send_all(fd, env, strlen(env)) < 0) { bad = msgs - i; break; }
    int r = read_replies(fd, 3, "23", buf, sizeof buf);
    if (r != 0) { bad = msgs - i; break; }
    if (send_all(fd, msg, msglen) < 0) { bad = msgs - i; break; }
    if (read_replies(fd, 1, "2", buf, sizeof buf) != 0) bad++;
  }
  send_all(fd, "QUIT\r\n", 6);
  read_replies(fd, 1, "2", buf, sizeof buf);
  close(fd);
  return bad;
}

int main(int argc, char** argv)
{
  if (argc != 6) {
    fprintf(stderr, "usage: smtpload PORT CONCURRENCY SESSIONS MSGS_PER_SESSION MSG_BYTES\n");
    return 100;
  }
  int port = atoi(argv[1]), conc = atoi(argv[2]), sessions = atoi(argv[3]), per = atoi(argv[4]);
  size_t size = (size_t)atol(argv[5]);
  char* msg = malloc(size + 256);
  size_t n = (size_t)sprintf(msg, "Subject: bench\r\nFrom: sender@bench.example\r\n\r\n");
  while (n < size) {                       /* 76-character lines of text */
    size_t line = size - n > 78 ? 76 : (size - n > 2 ? size - n - 2 : 0);
    memset(msg + n, 'x', line);
    n += line;
    memcpy(msg + n, "\r\n", 2);
    n += 2;
  }
  memcpy(msg + n, ".\r\n", 3);
  n += 3;
  int fds[2];
  if (pipe(fds) < 0) return 111;
  double t0 = now();
  for (int w = 0; w < conc; w++) {
    if (fork() == 0) {
      int bad = 0;
      for (int s = w; s < sessions; s += conc) bad += session(port, per, msg, n);
      if (write(fds[1], &bad, sizeof bad) != sizeof bad) _exit(1);
      _exit(0);
    }
  }
  close(fds[1]);
  int failures = 0, b;
  while (read(fds[0], &b, sizeof b) == sizeof b) failures += b;
  while (wait(0) > 0) {}
  double secs = now() - t0;
  long total = (long)sessions * per;
  printf("messages=%ld seconds=%.3f msgs_per_sec=%.1f failures=%d\n", total, secs, total / secs, failures);
  return failures ? 1 : 0;
}

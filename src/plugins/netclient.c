/* netclient.c -- deadline-bounded client sockets for the plugins that talk
 * to a scanner or filter daemon (clamav, spamassassin, rspamd, milter).
 * Declared in netclient.h; linked into each of those modules (the build's
 * NAME_SHARED_SRCS in the Makefile); not a module itself.
 *
 * Contract:
 *   nc_read_cfg()    port, timeouts and size limit of a daemon client from
 *                    the session's settings (lib/setting.h's rule).
 *   nc_resolve4()    up to `max` IPv4 addresses of a host (numeric hosts
 *                    are parsed without DNS); count, or -1 on failure.
 *   nc_start()       the reference's pseudo-random first index.
 *   nc_connect_*()   a non-blocking connect bounded by a timeout; the fd
 *                    (blocking mode off, close-on-exec) or -1.
 *   nc_send[f]()     every byte, each wait for writability bounded by the
 *                    timeout; 0 or -1.  Never raises SIGPIPE.
 *   nc_send_file()   `size` bytes of fd from offset 0 in NC_CHUNK pieces
 *                    (through the caller's frame callback, which frames
 *                    them; `flags` as for nc_sendf); 0, or -1 when the
 *                    file is shorter than size, on a read error or a send
 *                    failure.
 *   nc_content_length()  the value of a Content-Length reply header.
 *   nc_reader        buffered receive; each wait bounded by the timeout,
 *                    lines bounded by a maximum length.
 * Every wait also ends once the session deadline ($SESSION_TIMEOUT) has
 * passed, so a peer that trickles bytes cannot hold a session forever.
 * Allocation: nc_send_file's NC_CHUNK buffer (freed before it returns) and
 * nc_readline (into the caller's str).
 * Errors are returned as values (-1); errno is left as the cause. */
#include "plugins/netclient.h"
#include "lib/clock.h"
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

void nc_read_cfg(struct nc_cfg* c, const struct nc_names* n, unsigned port, unsigned timeout)
{
  const struct env_number port_spec = NC_PORT(port), timeout_spec = NC_MS(timeout);
  static const struct env_number size_spec = { 0, 0, ~0UL, 1 };
  c->port = (unsigned)env_setting2(n->port, n->port_alt, &port_spec);
  c->timeout = (unsigned)env_setting2(n->timeout, n->timeout_alt, &timeout_spec);
  const struct env_number each_spec = NC_MS(c->timeout);
  c->connect_timeout = (unsigned)env_setting(n->connect_timeout, &each_spec);
  c->send_timeout = n->send_timeout ? (unsigned)env_setting(n->send_timeout, &each_spec) : c->timeout;
  c->maxsize = env_setting(n->maxsize, &size_spec);
}

/* 1 ready, 0 timed out, -1 error.  Retries on EINTR with the rest of the time. */
int nc_wait(int fd, short events, unsigned ms)
{
  long long end = clock_mono_ms() + ms;
  for (;;) {
    if (session_expired()) { errno = ETIMEDOUT; return 0; }
    long long left = end - clock_mono_ms();
    if (left < 0) left = 0;
    struct pollfd p = { fd, events, 0 };
    int r = poll(&p, 1, (int)(left > 0x7fffffff ? 0x7fffffff : left));
    if (r > 0) return 1;
    if (r == 0) { errno = ETIMEDOUT; return 0; }
    if (errno != EINTR) return -1;
  }
}

int nc_resolve4(const char* host, struct in_addr* out, int max)
{
  if (inet_pton(AF_INET, host, &out[0]) == 1) return 1;
  struct addrinfo hints, *res = 0;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  if (getaddrinfo(host, 0, &hints, &res) != 0 || !res) return -1;
  int n = 0;
  for (struct addrinfo* ai = res; ai && n < max; ai = ai->ai_next) {
    if (ai->ai_family != AF_INET) continue;
    struct in_addr a = ((struct sockaddr_in*)ai->ai_addr)->sin_addr;
    int dup = 0;
    for (int i = 0; i < n; i++) dup |= out[i].s_addr == a.s_addr;
    if (!dup) out[n++] = a;
  }
  freeaddrinfo(res);
  return n > 0 ? n : -1;
}

int nc_start(int count)
{
  struct timeval tv;
  gettimeofday(&tv, 0);
  return count > 0 ? (int)(((unsigned long)tv.tv_sec ^ (unsigned long)tv.tv_usec) % (unsigned long)count) : 0;
}

int nc_connect_sa(int family, const struct sockaddr* sa, socklen_t len, unsigned ms)
{
  int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (connect(fd, sa, len) == 0) return fd;
  if (errno == EINPROGRESS || errno == EINTR) {
    int err = 0;
    socklen_t el = sizeof err;
    if (nc_wait(fd, POLLOUT, ms) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0 && err == 0)
      return fd;
    if (err) errno = err;
  }
  int e = errno;
  close(fd);
  errno = e;
  return -1;
}

int nc_connect_in(struct in_addr a, unsigned port, unsigned ms)
{
  struct sockaddr_in sin;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_port = htons((unsigned short)port);
  sin.sin_addr = a;
  return nc_connect_sa(AF_INET, (struct sockaddr*)&sin, sizeof sin, ms);
}

int nc_connect_un(const char* path, unsigned ms)
{
  struct sockaddr_un sun;
  memset(&sun, 0, sizeof sun);
  size_t n = strlen(path);
  if (n >= sizeof sun.sun_path) { errno = ENAMETOOLONG; return -1; }
  sun.sun_family = AF_UNIX;
  memcpy(sun.sun_path, path, n);
  return nc_connect_sa(AF_UNIX, (struct sockaddr*)&sun, sizeof sun, ms);
}

/* flags: 0, or MSG_MORE for framing that is followed at once by data
 * (spares a small segment and a delayed-ACK round trip). */
int nc_sendf(int fd, const char* b, size_t len, unsigned ms, int flags)
{
  while (len > 0) {
    ssize_t w = send(fd, b, len, MSG_NOSIGNAL | flags);
    if (w > 0) { b += w; len -= (size_t)w; continue; }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (nc_wait(fd, POLLOUT, ms) != 1) return -1;
      continue;
    }
    return -1;
  }
  return 0;
}

int nc_send(int fd, const char* b, size_t len, unsigned ms) { return nc_sendf(fd, b, len, ms, 0); }

int nc_send_file(int sock, int fd, unsigned long long size, unsigned ms, nc_frame_fn frame,
                               int flags)
{
  char* buf = malloc(NC_CHUNK);
  if (!buf) return -1;
  int rc = -1;
  unsigned long long done = 0;
  if (lseek(fd, 0, SEEK_SET) != 0) goto out;
  while (done < size) {
    size_t want = size - done < NC_CHUNK ? (size_t)(size - done) : NC_CHUNK;
    ssize_t r = read(fd, buf, want);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) goto out;                 /* error, or the file shrank */
    if (frame && frame(sock, (size_t)r, ms) < 0) goto out;
    if (nc_sendf(sock, buf, (size_t)r, ms, flags) < 0) goto out;
    done += (unsigned long long)r;
  }
  rc = 0;
out:
  free(buf);
  return rc;
}

void nc_reader_init(struct nc_reader* r, int fd, unsigned ms)
{
  r->fd = fd;
  r->ms = ms;
  r->pos = r->len = 0;
}

/* 1 data buffered, 0 end of stream, -1 error or timeout. */
int nc_fill(struct nc_reader* r)
{
  if (r->pos < r->len) return 1;
  for (;;) {
    ssize_t n = recv(r->fd, r->buf, sizeof r->buf, 0);
    if (n > 0) { r->pos = 0; r->len = (size_t)n; return 1; }
    if (n == 0) return 0;
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
    if (nc_wait(r->fd, POLLIN, r->ms) != 1) return -1;
  }
}

/* One line up to and including LF (kept) into line; 1 ok, 0 end of stream
 * before any byte, -1 error, timeout, longer than max or no LF at the end. */
int nc_readline(struct nc_reader* r, str* line, size_t max)
{
  line->len = 0;
  for (;;) {
    int f = nc_fill(r);
    if (f <= 0) return f == 0 && line->len == 0 ? 0 : -1;
    char* s = r->buf + r->pos;
    size_t avail = r->len - r->pos;
    char* nl = memchr(s, '\n', avail);
    size_t take = nl ? (size_t)(nl - s) + 1 : avail;
    if (line->len + take > max) return -1;
    if (!str_catb(line, s, (unsigned)take)) return -1;
    r->pos += take;
    if (nl) return 1;
  }
}

int nc_content_length(const char* s, size_t n, long long* out)
{
  static const char name[] = "content-length:";
  size_t i = sizeof name - 1;
  if (n < i || strncasecmp(s, name, i) != 0) return 0;
  while (i < n && (s[i] == ' ' || s[i] == '\t')) i++;
  long long v = 0;
  size_t digits = 0;
  for (; i < n && s[i] >= '0' && s[i] <= '9'; i++, digits++) {
    if (v > (LLONG_MAX - 9) / 10) return -1;
    v = v * 10 + (s[i] - '0');
  }
  while (i < n && (s[i] == ' ' || s[i] == '\t')) i++;
  if (!digits || i != n) return -1;
  *out = v;
  return 1;
}

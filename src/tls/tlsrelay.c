/* tlsrelay.c -- fork a plain-text child on a socketpair and relay it
 * through the TLS streams (contract in tlsrelay.h).
 *
 * Client -> server: the ibuf's own buffer is the only buffer in flight:
 * bytes are read (through the TLS transport) only when it is empty, and
 * written to the non-blocking socket as the socket accepts them.  Server
 * -> client: one read of the socket, then obuf_write + obuf_flush through
 * TLS (bounded by the stream timeouts).  Errors are values; nothing here
 * logs or exits. */
#include "tls/tlsrelay.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "auth/authconn.h"
#include "lib/progenv.h"
#include <sys/prctl.h>
#include <grp.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RELAY_BUFSIZE 16384
#define DEFAULT_REAP_MS 10000

static void set_err(str* err, const char* a, const char* b)
{
  err->len = 0;
  if (!str_cat2s(err, a, b ? b : "")) err->len = 0;
}

int tlsrelay_fork(ibuf* in, obuf* out, int* sock, pid_t* pid, str* err)
{
  int sv[2];
  *pid = 0;
  *sock = -1;
  err->len = 0;
  if (obuf_flush(out) < 0) { set_err(err, "TLS relay: cannot flush output", 0); return -1; }
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
    set_err(err, "TLS relay: socketpair failed: ", strerror(errno));
    return -1;
  }
  pid_t p = fork();
  if (p < 0) {
    set_err(err, "TLS relay: fork failed: ", strerror(errno));
    close(sv[0]);
    close(sv[1]);
    return -1;
  }
  if (p == 0) {
    /* child: the socketpair replaces the client connection on fd 0/1 */
    close(sv[0]);
    if (dup2(sv[1], 0) < 0 || dup2(sv[1], 1) < 0) {
      set_err(err, "TLS relay: dup2 failed: ", strerror(errno));
      return TLSRELAY_CHILD_FAILED;
    }
    if (sv[1] > 1) close(sv[1]);
    ibuf_discard(in);
    in->tr = 0;
    out->tr = 0;
    in->fd = 0;
    out->fd = 1;
    in->eof = in->error = in->timedout = 0;
    out->error = out->timedout = 0;
    return 0;
  }
  close(sv[1]);
  int fl = fcntl(sv[0], F_GETFL);
  if (fl < 0 || fcntl(sv[0], F_SETFL, fl | O_NONBLOCK) < 0) {
    set_err(err, "TLS relay: fcntl failed: ", strerror(errno));
    close(sv[0]);
    kill(p, SIGKILL);
    while (waitpid(p, 0, 0) < 0 && errno == EINTR) {}
    return -1;
  }
  *sock = sv[0];
  *pid = p;
  return 1;
}

/* Wait for the child at most limit_ms, then kill it.  Exit status. */
static int reap(pid_t pid, unsigned limit_ms)
{
  long long end = clock_mono_ms() + (limit_ms ? limit_ms : DEFAULT_REAP_MS);
  int st = 0, killed = 0;
  for (;;) {
    pid_t r = waitpid(pid, &st, killed ? 0 : WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) return 111;
    if (r == 0 && clock_mono_ms() >= end) {
      kill(pid, SIGKILL);
      killed = 1;
      continue;
    }
    if (r == 0) {
      struct timespec ts = { 0, 10 * 1000000L };
      nanosleep(&ts, 0);
    }
  }
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return 111;
}

static int tr_pending(const ibuf* in)
{
  return in->tr && in->tr->pending && in->tr->pending(in->tr->ctx);
}

/* One read from the client into the (empty) ibuf: >0 bytes, 0 EOF, -1
 * error, -2 nothing yet (EAGAIN). */
static long client_read(ibuf* in)
{
  long r = in->tr ? in->tr->read(in->tr->ctx, in->buf, in->size) : (long)read(in->fd, in->buf, in->size);
  if (r > 0) {
    in->head = 0;
    in->tail = (unsigned long)r;
    in->count += (unsigned long)r;
    return r;
  }
  if (r == 0) { in->eof = 1; return 0; }
  if (errno == EAGAIN || errno == EINTR) return -2;
  if (errno == ETIMEDOUT) in->timedout = 1;
  else in->error = 1;
  return -1;
}

int tlsrelay_run(struct tls* t, ibuf* in, obuf* out, int sock, pid_t pid, unsigned idle_ms, str* err)
{
  char* buf = malloc(RELAY_BUFSIZE);
  int client_in = 1;            /* still reading from the client */
  int server_in = 1;            /* still reading from the server */
  int server_out = 1;           /* the server still takes input */
  int client_ok = 1;            /* the client can still be written to */
  long long last = clock_mono_ms();
  err->len = 0;
  if (!buf) { set_err(err, "TLS relay: out of memory", 0); server_in = 0; }
  while (server_in) {
    int pending = in->head < in->tail;
    if (pending && !server_out) { in->head = in->tail = 0; pending = 0; }
    int tls_ready = client_in && !pending && tr_pending(in);
    struct pollfd p[2];
    int n = 0, ci = -1;
    p[n].fd = sock;
    p[n].events = (short)(POLLIN | (pending ? POLLOUT : 0));
    p[n].revents = 0;
    n++;
    if (client_in && !pending) {
      ci = n;
      p[n].fd = in->fd;
      p[n].events = POLLIN;
      p[n].revents = 0;
      n++;
    }
    int wait = -1;
    long long now = clock_mono_ms();
    long long end = idle_ms ? last + idle_ms : -1;
    const long long* dl = in->deadline_ms;
    if (dl && *dl > 0 && (end < 0 || *dl < end)) end = *dl;
    if (end >= 0) {
      long long left = end - now;
      if (left <= 0) {
        set_err(err, dl && *dl > 0 && end == *dl ? "TLS relay: session timeout" : "TLS relay: idle timeout", 0);
        break;
      }
      wait = left > 0x7fffffff ? 0x7fffffff : (int)left;
    }
    if (tls_ready) wait = 0;
    int r = poll(p, (nfds_t)n, wait);
    if (r < 0) {
      if (errno == EINTR) continue;
      set_err(err, "TLS relay: poll failed: ", strerror(errno));
      break;
    }
    /* client -> server */
    if (pending && (p[0].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t w = send(sock, in->buf + in->head, in->tail - in->head, MSG_NOSIGNAL);
      if (w > 0) { in->head += (unsigned long)w; last = clock_mono_ms(); }
      else if (w < 0 && errno != EAGAIN && errno != EINTR) {
        server_out = 0;                 /* the server stopped reading */
        client_in = 0;
        in->head = in->tail = 0;
      }
    }
    /* server -> client */
    if (p[0].revents & (POLLIN | POLLERR | POLLHUP)) {
      ssize_t got = read(sock, buf, RELAY_BUFSIZE);
      if (got > 0) {
        last = clock_mono_ms();
        if (client_ok && (obuf_write(out, buf, (unsigned long)got) < 0 || obuf_flush(out) < 0)) {
          client_ok = 0;
          set_err(err, out->timedout ? "TLS relay: client write timed out" : "TLS relay: client write failed", 0);
          break;
        }
      }
      else if (got == 0 || (errno != EAGAIN && errno != EINTR))
        server_in = 0;
    }
    /* client input, only once the previous chunk went out */
    if (client_in && in->head >= in->tail && (tls_ready || (ci >= 0 && p[ci].revents))) {
      long c = client_read(in);
      if (c > 0) last = clock_mono_ms();
      else if (c == 0 || c == -1) {
        if (c == -1) set_err(err, in->timedout ? "TLS relay: client read timed out" : "TLS relay: client read failed", 0);
        client_in = 0;
        if (c == -1) client_ok = 0;
        shutdown(sock, SHUT_WR);        /* the server sees EOF */
        if (!client_ok) break;
      }
    }
  }
  if (client_ok && !out->error && !out->timedout) tls_close(t);
  close(sock);
  free(buf);
  return reap(pid, idle_ms);
}

int tlsrelay_drop_privileges(unsigned long uid, unsigned long gid)
{
  gid_t g = (gid_t)gid;
  if (geteuid() == 0 && setgroups(1, &g) < 0) return -1;
  if (setgid(g) != 0 || setuid((uid_t)uid) != 0) return -1;
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  return 0;
}

enum tlsrelay_stage tlsrelay_second_stage(struct tls** tls, ibuf* in, obuf* out, long long* deadline_ms,
                                          unsigned long uid, unsigned long gid, int* status)
{
  if (tlsrelay_drop_privileges(uid, gid) < 0) {
    log_parts(LOG_ERR, "Could not switch to the user: ", strerror(errno), 0, 0);
    return TLSRELAY_NO_USER;
  }
  unsigned long t = mf_env_number("TIMEOUT", AUTHCONN_MAX_TIMEOUT);
  unsigned long st = mf_env_number("SESSION_TIMEOUT", AUTHCONN_MAX_SESSION_TIMEOUT);
  unsigned idle = (unsigned)((t ? t : AUTHCONN_DEFAULT_TIMEOUT) * 1000);
  str err = {0, 0, 0};
  int sock;
  pid_t pid;
  int r = tlsrelay_fork(in, out, &sock, &pid, &err);
  if (r == 0 || r == TLSRELAY_CHILD_FAILED) *tls = 0;   /* child: the session is the parent's */
  if (r == 0) { str_free(&err); return TLSRELAY_EXEC; }
  if (r < 0) {
    log_parts(LOG_ERR, err.s ? err.s : "TLS relay failed", 0, 0, 0);
    str_free(&err);
    *status = 111;
    return r == TLSRELAY_CHILD_FAILED ? TLSRELAY_CHILD_GONE : TLSRELAY_NO_FORK;
  }
  *deadline_ms = clock_mono_ms() + (long long)(st ? st : AUTHCONN_DEFAULT_SESSION_TIMEOUT) * 1000;
  in->timeout_ms = out->timeout_ms = idle;
  *status = tlsrelay_run(*tls, in, out, sock, pid, idle, &err);
  if (err.len) log_parts(0, err.s, 0, 0, 0);
  str_free(&err);
  return TLSRELAY_DONE;
}

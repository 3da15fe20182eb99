/* server.c -- mailfrontd's parent: one poll() loop over the listening
 * sockets, a self-pipe for signals and the connections still sending
 * their PROXY header.
 *
 * Limits: at most -c connections exist at once (sessions plus pending
 * PROXY headers); beyond that the listening sockets are not polled and
 * new connections wait in the kernel's backlog (-b), as with tcpserver.
 * At most -c session processes exist: an idle one is ended to make room.
 *
 * Processes (child.c): with -n 1, or when a module is not version 4, one
 * per connection, ended by its session.  Otherwise a process serves up to
 * -n connections one after another, all from the same client (the -C
 * key: address, or its -4/-6 prefix), never another client's: after a
 * session it reports its status on its channel (handoff.h) and waits, at
 * most -w seconds, for that client's next connection.  A reload or a stop
 * ends the idle ones; a busy one from before a reload ends after its
 * session.
 * -C caps the sessions of one client address (IPv4 /-4 bits, IPv6 /-6
 * bits): an excess SMTP connection gets a 421 reply, any other is closed.
 * A PROXY header must be complete within -W milliseconds; its source is
 * the client for -C, -x and the UCSPI variables.
 *
 * Signals are blocked and read from a signalfd by the loop, which
 * handles them: SIGCHLD reaps (one `end` line per session), SIGHUP
 * reloads (rules, TLS credentials, then the modules' reload hooks; a
 * failure keeps the old state), SIGTERM/SIGINT close the listeners and wait for the sessions
 * for -G seconds, then send them SIGTERM, and SIGKILL 5 s later.
 *
 * Logs (stderr, `mailfrontd[PID]: ` lines, key=value; with
 * $LOGFORMAT=kv the start and end are events conn_start/conn_end): start,
 * end, refused, proxy errors, reload and stop events.  Errors are values up to
 * server_run, which returns the exit status. */
#include "daemon/daemon.h"
#include "daemon/handoff.h"
#include "daemon/notify.h"
#include "core/mf.h"
#include "lib/log.h"
#include "lib/clock.h"
#include "tls/tls.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define KILL_AFTER_MS 5000

/* Signals arrive through a signalfd (they are blocked in the parent):
 * no handler runs, so no signal frame is written on the parent's stack
 * (a copy-on-write fault after every fork) and no self-pipe write is
 * needed. */
static int got_chld, got_hup, got_term;

static int set_nonblock(int fd, int on)
{
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0) return -1;
  return fcntl(fd, F_SETFL, on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK));
}

int server_load_rules(struct server* s, str* err)
{
  if (!s->o->rules) return 0;
  struct tcprules fresh;
  if (tcprules_open(&fresh, s->o->rules) < 0) {
    str_copys(err, "cannot read ");
    str_cat3s(err, s->o->rules, ": ", strerror(errno));
    return -1;
  }
  tcprules_close(&s->rules);
  s->rules = fresh;
  return 0;
}

/* Memory only the parent uses (the children table, the poll set): not
 * part of the children's address space (MADV_DONTFORK), so the parent's
 * writes to it after a fork are not copy-on-write faults.  Zeroed;
 * never freed (it lives as long as the process). */
static void* parent_only(size_t n, size_t size)
{
  size_t len = n * size;
  if (n && len / n != size) return 0;
  void* p = mmap(0, len ? len : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return 0;
  madvise(p, len ? len : 1, MADV_DONTFORK);   /* advice: without it, only slower */
  return p;
}

int server_init(struct server* s, struct options* o, struct mf_config* cfg, str* err)
{
  memset(s, 0, sizeof *s);
  s->o = o;
  s->cfg = cfg;
  s->rules.fd = -1;
  s->next_id = 1;
  s->sigfd = -1;
  if (!(s->kids = parent_only(o->maxconn, sizeof *s->kids)) || !(s->pend = calloc(o->maxconn, sizeof *s->pend))
      || !(s->chans = malloc(o->maxconn * sizeof *s->chans))
      || !(s->scratch = parent_only(o->maxconn, sizeof *s->scratch))) {
    str_copys(err, "out of memory");
    return -1;
  }
  sigset_t set;
  sigemptyset(&set);
  static const int sigs[] = { SIGCHLD, SIGHUP, SIGTERM, SIGINT };
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaddset(&set, sigs[i]);
  if (sigprocmask(SIG_BLOCK, &set, &s->sigmask) < 0
      || (s->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) {
    str_copys(err, "signalfd: ");
    str_cats(err, strerror(errno));
    return -1;
  }
  signal(SIGPIPE, SIG_IGN);
  return 0;
}

/* ---- children ---- */

static size_t same_client(const struct server* s, const struct addr_key* k)
{
  size_t n = 0;
  for (size_t i = 0; i < s->nkids; i++)
    if (s->kids[i].busy && addr_key_equal(&s->kids[i].key, k)) n++;
  return n;
}

/* Forget process i (its channel closed: an idle process exits). */
static void kid_drop(struct server* s, size_t i)
{
  if (s->kids[i].chan >= 0) close(s->kids[i].chan);
  if (s->kids[i].busy) s->nbusy--;
  s->nkids--;
  s->kids[i] = s->kids[s->nkids];
  s->chans[i] = s->chans[s->nkids];
}

/* End the idle processes (all, or those idle since before `before`). */
static void drop_idle(struct server* s, long long before)
{
  for (size_t i = s->nkids; i-- > 0;)
    if (!s->kids[i].busy && (before < 0 || s->kids[i].idle_since_ms <= before)) kid_drop(s, i);
}

static const char* signame(int sig)
{
  static const struct { int sig; const char* name; } names[] = {
    { SIGSEGV, "SEGV" }, { SIGABRT, "ABRT" }, { SIGKILL, "KILL" }, { SIGTERM, "TERM" },
    { SIGBUS, "BUS" }, { SIGFPE, "FPE" }, { SIGILL, "ILL" }, { SIGPIPE, "PIPE" },
    { SIGALRM, "ALRM" }, { SIGINT, "INT" }, { SIGHUP, "HUP" },
  };
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (names[i].sig == sig) return names[i].name;
  return "other";
}

/* The start and end lines of a connection.  Classic: `start id=...` /
 * `end id=...` text; $LOGFORMAT=kv: events conn_start / conn_end with the
 * same fields.  what/val: "status"/"signal" and its value (end only). */
static void conn_event(const char* prefix, const char* event, const struct child* k,
                       const char* what, const char* val, long long ms)
{
  char id[24], pid[24], port[8], dur[24];
  snprintf(id, sizeof id, "%llu", k->id);
  snprintf(pid, sizeof pid, "%ld", (long)k->pid);
  snprintf(port, sizeof port, "%u", k->port);
  snprintf(dur, sizeof dur, "%lld", ms);
  if (log_get_format() == LOG_KV) {
    struct log_field f[7] = {
      { "id", id, -1 }, { "child_pid", pid, -1 }, { "ip", k->ip, -1 }, { "port", port, -1 },
    };
    unsigned n = 4;
    if (k->via[0]) f[n++] = (struct log_field){ "proxy", k->via, -1 };
    if (what) {
      f[n++] = (struct log_field){ what, val, -1 };
      f[n++] = (struct log_field){ "duration_ms", dur, -1 };
    }
    log_event(event, f, n);
    return;
  }
  if (what)
    log_fmt(prefix, "end id=%s pid=%s ip=%s port=%s%s%s %s=%s duration_ms=%s", id, pid, k->ip, port,
            k->via[0] ? " proxy=" : "", k->via, what, val, dur);
  else
    log_fmt(prefix, "start id=%s pid=%s ip=%s port=%s%s%s", id, pid, k->ip, port,
            k->via[0] ? " proxy=" : "", k->via);
}

static void reap(struct server* s)
{
  int st;
  pid_t pid;
  while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
    size_t i;
    for (i = 0; i < s->nkids && s->kids[i].pid != pid; i++) {}
    if (i == s->nkids) continue;
    struct child* k = &s->kids[i];
    if (k->busy) {
      long long ms = clock_mono_ms() - k->start_ms;
      char code[16];
      snprintf(code, sizeof code, "%d", WIFSIGNALED(st) ? 0 : WEXITSTATUS(st));
      if (WIFSIGNALED(st))
        conn_event(LOG_WARN, "conn_end", k, "signal", signame(WTERMSIG(st)), ms);
      else if (s->o->verbose)
        conn_event(0, "conn_end", k, "status", code, ms);
    }
    kid_drop(s, i);
  }
  if (s->o->verbose > 1) log_fmt(0, "status: %zu/%lu", s->nbusy, s->o->maxconn);
}

static void close_conn(struct server* s, size_t i)
{
  close(s->pend[i].fd);
  s->pend[i] = s->pend[--s->npend];
}

/* -C refusal: a 421 for SMTP (best effort, the send buffer is empty). */
static void refuse(struct server* s, struct conn* c, const char* ip)
{
  static const char msg[] = "421 4.7.0 Too many connections from your address, try again later\r\n";
  if (strcmp(s->o->modargv[0], "smtp") == 0) {
    ssize_t w = send(c->fd, msg, sizeof msg - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
    (void)w;
  }
  log_fmt(LOG_WARN, "refused id=%llu ip=%s port=%u reason=per-client-limit limit=%lu",
          c->id, ip, addr_port(&c->client), s->o->maxper);
}

/* The session fields of process k for connection c, which it now runs. */
static void kid_begin(struct server* s, struct child* k, const struct conn* c, const struct addr_key* key,
                      const char* ip)
{
  k->busy = 1;
  s->nbusy++;
  k->id = c->id;
  k->key = *key;
  memcpy(k->ip, ip, ADDR_IP_MAX);
  k->port = addr_port(&c->client);
  k->via[0] = 0;
  if (c->proxied) addr_ip(&c->remote, k->via);
  k->start_ms = clock_mono_ms();
  if (s->o->verbose) conn_event(0, "conn_start", k, 0, 0, 0);
}

/* Hand c to an idle process of the same client (and of the current
 * configuration).  1 when one took it (c's fd is then closed here). */
static int hand_over(struct server* s, struct conn* c, const struct addr_key* key, const char* ip)
{
  for (size_t i = s->nkids; i-- > 0;) {
    struct child* k = &s->kids[i];
    if (k->busy || k->chan < 0 || k->gen != s->gen || !addr_key_equal(&k->key, key)) continue;
    struct job j = { .id = c->id, .local = c->local, .client = c->client, .server = c->server, .proxied = c->proxied };
    if (handoff_send(k->chan, &j, c->fd) < 0) {   /* it is gone: reap will see it */
      kid_drop(s, i);
      continue;
    }
    close(c->fd);
    kid_begin(s, k, c, key, ip);
    return 1;
  }
  return 0;
}

static void kid_report(struct server* s, size_t i);

/* Read the reports that arrived since the last poll (one poll call):
 * before forking a process for a client, one of its own may just have
 * finished.  The number of processes that reported. */
static int collect_reports(struct server* s)
{
  nfds_t n = 0;
  for (size_t i = 0; i < s->nkids; i++)
    s->scratch[n++] = (struct pollfd){ .fd = s->kids[i].busy ? s->kids[i].chan : -1, .events = POLLIN };
  if (n == 0 || poll(s->scratch, n, 0) <= 0) return 0;
  int got = 0;
  for (size_t i = n; i-- > 0;)
    if (s->scratch[i].revents) { kid_report(s, i); got++; }
  return got;
}

/* Room for one more process: end the longest idle one. */
static void make_room(struct server* s)
{
  size_t oldest = s->nkids;
  for (size_t i = 0; i < s->nkids; i++)
    if (!s->kids[i].busy && (oldest == s->nkids || s->kids[i].idle_since_ms < s->kids[oldest].idle_since_ms))
      oldest = i;
  if (oldest < s->nkids) kid_drop(s, oldest);
}

/* Start the session of c in an idle process of its client or a new one
 * (the fd is closed in the parent either way). */
static void admit(struct server* s, struct conn* c)
{
  struct addr_key key;
  char ip[ADDR_IP_MAX];
  addr_ip(&c->client, ip);
  addr_key(&c->client, (unsigned)s->o->v4bits, (unsigned)s->o->v6bits, &key);
  if (s->o->maxper && same_client(s, &key) >= s->o->maxper) {
    refuse(s, c, ip);
    close(c->fd);
    return;
  }
  if (s->reuse && (hand_over(s, c, &key, ip) || (collect_reports(s) && hand_over(s, c, &key, ip)))) return;
  if (s->nkids >= s->o->maxconn) make_room(s);
  if (s->nkids >= s->o->maxconn) {   /* cannot happen: -c counts busy ones */
    log_fmt(LOG_ERR, "no room for a process id=%llu ip=%s", c->id, ip);
    close(c->fd);
    return;
  }
  int ch[2] = { -1, -1 };
  if (s->reuse && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ch) < 0)
    log_fmt(LOG_WARN, "socketpair: %s (one session in this process)", strerror(errno));
  pid_t pid = fork();
  if (pid == 0) {
    if (ch[0] >= 0) close(ch[0]);
    child_run(s, c, ch[1]);
  }
  if (ch[1] >= 0) close(ch[1]);
  if (pid < 0) {
    log_fmt(LOG_ERR, "fork failed id=%llu ip=%s: %s", c->id, ip, strerror(errno));
    if (ch[0] >= 0) close(ch[0]);
    close(c->fd);
    return;
  }
  close(c->fd);
  struct child* k = &s->kids[s->nkids];
  s->chans[s->nkids++] = ch[0];
  k->pid = pid;
  k->chan = ch[0];
  k->busy = 0;
  k->gen = s->gen;
  kid_begin(s, k, c, &key, ip);
}

/* Process i's channel is readable: a session ended (the process waits
 * for its client's next connection, or is ended now), or the process is
 * going away (reap logs its session). */
static void kid_report(struct server* s, size_t i)
{
  struct child* k = &s->kids[i];
  int status, r;
  while ((r = handoff_status(k->chan, &status)) == 1) {
    if (!k->busy) continue;   /* a report without a session: ignored */
    k->busy = 0;
    s->nbusy--;
    if (s->o->verbose) {
      char code[16];
      snprintf(code, sizeof code, "%d", status);
      conn_event(0, "conn_end", k, "status", code, clock_mono_ms() - k->start_ms);
    }
    k->idle_since_ms = clock_mono_ms();
  }
  if (r == 0) {   /* end of file: the process is exiting */
    close(k->chan);
    k->chan = s->chans[i] = -1;
    if (!k->busy) { kid_drop(s, i); return; }
  }
  if (!k->busy && (k->gen != s->gen || s->stopping)) kid_drop(s, i);
}

/* ---- PROXY headers ---- */

/* Progress of pending connection i: 1 while still pending, 0 when done
 * (admitted or closed; the slot is then reused). */
static int proxy_step(struct server* s, size_t i)
{
  struct conn* c = &s->pend[i];
  char ip[ADDR_IP_MAX];
  addr_ip(&c->remote, ip);
  if (c->drain == 0) {
    unsigned char b[PROXY_PEEK_MAX];
    ssize_t n = recv(c->fd, b, sizeof b, MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return 1;
    if (n <= 0) {
      log_fmt(LOG_WARN, "proxy id=%llu ip=%s error=%s", c->id, ip, n == 0 ? "closed before the header" : strerror(errno));
      close_conn(s, i);
      return 0;
    }
    struct proxy_result r;
    const char* why;
    enum proxy_status st = proxy_parse(b, (size_t)n, s->o->proxy, &r, &why);
    if (st == PROXY_MORE && (size_t)n < sizeof b) return 1;
    if (st != PROXY_DONE) {
      log_fmt(LOG_WARN, "proxy id=%llu ip=%s error=\"%s\"", c->id, ip, st == PROXY_MORE ? "header too long" : why);
      close_conn(s, i);
      return 0;
    }
    if (!r.local) {
      c->client = r.src;
      c->server = r.dst;
    }
    c->proxied = 1;
    c->drain = r.header_len;
  }
  /* consume exactly the header (v2 TLVs may still be arriving) */
  while (c->drain > 0) {
    unsigned char sink[512];
    ssize_t n = recv(c->fd, sink, c->drain < sizeof sink ? c->drain : sizeof sink, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return 1;
    if (n <= 0) {
      log_fmt(LOG_WARN, "proxy id=%llu ip=%s error=%s", c->id, ip, n == 0 ? "closed in the header" : strerror(errno));
      close_conn(s, i);
      return 0;
    }
    c->drain -= (size_t)n;
  }
  struct conn done = *c;
  s->pend[i] = s->pend[--s->npend];
  if (set_nonblock(done.fd, 0) < 0) { close(done.fd); return 0; }
  admit(s, &done);
  return 0;
}

/* ---- accepting ---- */

static void accept_from(struct server* s, int lfd)
{
  while (s->nbusy + s->npend < s->o->maxconn) {
    struct conn c;
    memset(&c, 0, sizeof c);
    socklen_t len = sizeof c.remote;
    c.fd = accept4(lfd, (struct sockaddr*)&c.remote, &len, SOCK_CLOEXEC | (s->o->proxy ? SOCK_NONBLOCK : 0));
    if (c.fd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        log_fmt(LOG_ERR, "accept: %s (pausing 100 ms)", strerror(errno));
        s->pause_until_ms = clock_mono_ms() + 100;
      }
      return;   /* EAGAIN, ECONNABORTED, EINTR...: back to poll */
    }
    c.id = s->next_id++;
    c.client = c.remote;
    /* without PROXY the child reads its local address (c.local stays
     * AF_UNSPEC): one system call less in the parent */
    if (!s->o->proxy) { admit(s, &c); continue; }
    len = sizeof c.local;
    if (getsockname(c.fd, (struct sockaddr*)&c.local, &len) < 0) { close(c.fd); continue; }
    c.server = c.local;
    c.deadline_ms = clock_mono_ms() + (long long)s->o->proxy_ms;
    s->pend[s->npend++] = c;
    proxy_step(s, s->npend - 1);   /* the header often came with the SYN's ACK */
  }
}

/* ---- signals: reload and stop ---- */

static void reload(struct server* s)
{
  str err = {0, 0, 0};
  const response* r = 0;
  notify_reloading();
  s->gen++;
  drop_idle(s, -1);   /* new connections get new processes with the new state */
  if (server_load_rules(s, &err) < 0) log_fmt(LOG_ERR, "reload: rules kept: %s", err.s);
  if (tls_preload(NULL, &err) < 0) log_fmt(LOG_ERR, "reload: TLS credentials kept: %s", err.s);
  if (mf_reload(s->cfg, &r) < 0) {
    log_fmt(LOG_ERR, "reload: modules kept their state: %s", r && r->message ? r->message : "error");
    mf_error_free(r);
  }
  else
    log_fmt(0, "reload: done");
  str_free(&err);
  notify_send("READY=1");
}

static void begin_stop(struct server* s)
{
  s->stopping = 1;
  listen_close(&s->ls);
  drop_idle(s, -1);
  while (s->npend > 0) close_conn(s, s->npend - 1);
  long long now = clock_mono_ms();
  s->stop_at_ms = now + (long long)s->o->grace_s * 1000;
  s->kill_at_ms = s->stop_at_ms + KILL_AFTER_MS;
  notify_send("STOPPING=1");
  log_fmt(0, "stopping: sessions=%zu grace_s=%lu", s->nkids, s->o->grace_s);
}

static void signal_kids(struct server* s, int sig)
{
  for (size_t i = 0; i < s->nkids; i++) kill(s->kids[i].pid, sig);
}

static void read_signals(struct server* s)
{
  struct signalfd_siginfo si[8];
  ssize_t n;
  do {
    n = read(s->sigfd, si, sizeof si);
    for (size_t i = 0; n > 0 && i < (size_t)n / sizeof si[0]; i++) {
      int sig = (int)si[i].ssi_signo;
      if (sig == SIGCHLD) got_chld = 1;
      else if (sig == SIGHUP) got_hup = 1;
      else got_term = 1;
    }
  } while (n == (ssize_t)sizeof si);   /* a short read took all there was */
}

/* poll timeout: the nearest deadline, -1 for none. */
static int next_timeout(const struct server* s, long long now)
{
  long long t = -1;
  for (size_t i = 0; i < s->npend; i++)
    if (t < 0 || s->pend[i].deadline_ms < t) t = s->pend[i].deadline_ms;
  if (s->stopping) {
    long long d = now < s->stop_at_ms ? s->stop_at_ms : s->kill_at_ms;
    if (t < 0 || d < t) t = d;
  }
  if (s->pause_until_ms > now && (t < 0 || s->pause_until_ms < t)) t = s->pause_until_ms;
  for (size_t i = 0; i < s->nkids; i++)
    if (!s->kids[i].busy) {
      long long d = s->kids[i].idle_since_ms + (long long)s->o->idle_s * 1000;
      if (t < 0 || d < t) t = d;
    }
  if (t < 0) return -1;
  t -= now;
  return t < 0 ? 0 : t > 60000 ? 60000 : (int)t;
}

int server_run(struct server* s)
{
  struct pollfd* pf = parent_only(1 + s->ls.n + 2 * s->o->maxconn, sizeof *pf);
  if (!pf) { log_parts(LOG_FATAL, "out of memory", 0, 0, 0); return 111; }
  int stop_signalled = 0, killed = 0;
  for (;;) {
    if (got_chld) { got_chld = 0; reap(s); }
    if (got_hup) { got_hup = 0; if (!s->stopping) reload(s); }
    if (got_term) { got_term = 0; if (!s->stopping) begin_stop(s); }
    long long now = clock_mono_ms();
    if (s->stopping) {
      if (s->nkids == 0) break;
      if (!stop_signalled && now >= s->stop_at_ms) {
        log_fmt(LOG_WARN, "stopping: grace period over, TERM to %zu sessions", s->nkids);
        signal_kids(s, SIGTERM);
        stop_signalled = 1;
      }
      if (!killed && now >= s->kill_at_ms) {
        log_fmt(LOG_WARN, "stopping: KILL to %zu sessions", s->nkids);
        signal_kids(s, SIGKILL);
        killed = 1;
      }
    }
    drop_idle(s, now - (long long)s->o->idle_s * 1000);
    /* expired PROXY deadlines */
    for (size_t i = 0; i < s->npend;) {
      if (s->pend[i].deadline_ms > now) { i++; continue; }
      char ip[ADDR_IP_MAX];
      addr_ip(&s->pend[i].remote, ip);
      log_fmt(LOG_WARN, "proxy id=%llu ip=%s error=\"no header within %lu ms\"", s->pend[i].id, ip, s->o->proxy_ms);
      close_conn(s, i);
    }
    nfds_t n = 0;
    pf[n++] = (struct pollfd){ .fd = s->sigfd, .events = POLLIN };
    for (size_t i = 0; i < s->nkids; i++)   /* kid i at pf[1 + i] when it has a channel */
      pf[n++] = (struct pollfd){ .fd = s->kids[i].chan, .events = POLLIN };
    int accepting = !s->stopping && s->nbusy + s->npend < s->o->maxconn && now >= s->pause_until_ms;
    nfds_t first_listener = n;
    if (accepting)
      for (unsigned i = 0; i < s->ls.n; i++) pf[n++] = (struct pollfd){ .fd = s->ls.fd[i], .events = POLLIN };
    nfds_t first_pending = n;
    for (size_t i = 0; i < s->npend; i++) pf[n++] = (struct pollfd){ .fd = s->pend[i].fd, .events = POLLIN };
    int r = poll(pf, n, next_timeout(s, now));
    if (r < 0) {
      if (errno == EINTR) continue;
      log_fmt(LOG_FATAL, "poll: %s", strerror(errno));
      return 111;
    }
    if (pf[0].revents) read_signals(s);
    /* session reports first: nothing has moved the processes since the poll set was made */
    for (size_t i = s->nkids; i-- > 0;)
      if (pf[1 + i].fd >= 0 && pf[1 + i].revents) kid_report(s, i);
    /* pending first (from the last slot: proxy_step may move the last one) */
    for (size_t i = s->npend; i-- > 0;)
      if (pf[first_pending + i].revents) proxy_step(s, i);
    /* sessions that ended meanwhile no longer count against -c and -C */
    if (got_chld || pf[0].revents) { got_chld = 0; reap(s); }
    for (nfds_t i = first_listener; i < first_pending; i++)
      if (pf[i].revents & POLLIN) accept_from(s, pf[i].fd);
  }
  notify_send("STATUS=stopped");
  log_fmt(0, "stopped");
  return 0;
}

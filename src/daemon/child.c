/* child.c -- the session process forked by the parent: leave the
 * parent's world (signal mask, listening sockets, other pending
 * connections, the other processes' channels), then for each connection
 * set the variables tcpserver sets, apply the tcprules and run the
 * session.  Without a channel (-n 1, or a module that is not version 4)
 * the process runs one session and _exits with its status, exactly as a
 * tcpserver child.  With one it serves up to -n connections of the same
 * client, one after another (the parent only hands it those): after each
 * session it restores the process (below), reports the status on the
 * channel and waits for the next job; end of file on the channel, or the
 * last allowed session, ends it (the last session's status is its exit
 * status).
 *
 * Variables (in environ: third-party plugins read getenv()): PROTO=TCP,
 * TCPLOCALIP, TCPLOCALPORT, TCPLOCALHOST (-l, else with -h the PTR name
 * of the local address, else unset), TCPREMOTEIP, TCPREMOTEPORT,
 * TCPREMOTEHOST (only with -h: the PTR name, unset when there is none
 * or the lookup misses its deadline; rdns.h), TCPREMOTEINFO unset (no
 * ident, as -R); then those of the matching tcprules rule (setenv).  With PROXY the remote (and local)
 * address are those of the header.
 *
 * The local address is read here (getsockname), not in the parent,
 * unless a PROXY header gave it.
 *
 * Between two sessions of one process nothing of the first may reach the
 * second: environ is the process's own again (variables a session or a
 * plugin set are dropped), every fd the session left open is closed, the
 * client's fds 0 and 1 point to /dev/null, alarm() is cancelled, the
 * signal dispositions and mask, the umask and the working directory are
 * those of the start.  The modules' per-session state is theirs to drop
 * (version 4 contract: session_close); the parent only reuses processes
 * when every module is version 4 (mf_reusable).
 *
 * A rule that denies ends the connection at once (log line `deny`, exit
 * status 100); an unreadable rules file does the same unless -X, as
 * tcpserver.  The session's stderr is the parent's: its lines are the
 * original `mailfront[PID]:` lines.  The client is on fds 0 and 1 (not
 * close-on-exec), exactly as tcpserver hands it to mailfront. */
#include "daemon/daemon.h"
#include "daemon/handoff.h"
#include "daemon/rdns.h"
#include "core/mf.h"
#include "lib/log.h"
#include <dirent.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXIT_DENIED 100
#define EXIT_TEMP 111

static int set_var(void* ctx, const char* name, size_t nlen, const char* value)
{
  (void)ctx;
  char* n = strndup(name, nlen);
  if (!n) return -1;
  int r = value ? setenv(n, value, 1) : unsetenv(n);
  free(n);
  return r;
}

/* The child's environment, built on its own stack: the parent's
 * variables minus the UCSPI ones, then those of this connection.  No
 * setenv: it would copy the environment array and its strings into the
 * heap, copy-on-write faults in every child (docs/mailfrontd.md
 * "Performance").  The values are short and bounded (addresses, ports,
 * host names of at most NI_MAXHOST bytes); a longer -l name was made
 * into its assignment once, in the parent (struct options). */
static const char* const ucspi_names[] = {
  "PROTO=", "TCPLOCALIP=", "TCPLOCALPORT=", "TCPLOCALHOST=", "TCPREMOTEIP=", "TCPREMOTEPORT=",
  "TCPREMOTEHOST=", "TCPREMOTEINFO=",
};
#define UCSPI_N (sizeof ucspi_names / sizeof ucspi_names[0])
#define ENV_VALUE_MAX (sizeof "TCPREMOTEPORT=" + ADDR_IP_MAX)
#define ENV_HOST_MAX (sizeof "TCPREMOTEHOST=" + NI_MAXHOST)

struct envbuf
{
  char** v;                    /* n entries, room for UCSPI_N more and the NULL */
  size_t n;
  char text[5][ENV_VALUE_MAX]; /* PROTO, the addresses and ports */
  size_t ntext;
};

static int is_ucspi(const char* e)
{
  for (size_t i = 0; i < UCSPI_N; i++)
    if (strncmp(e, ucspi_names[i], strlen(ucspi_names[i])) == 0) return 1;
  return 0;
}

/* NAME=VALUE into t (cap bytes; prefix is "NAME=", both fit). */
static char* assign(char* t, size_t cap, const char* prefix, const char* value)
{
  size_t pl = strlen(prefix), vl = strnlen(value, cap - pl - 1);
  memcpy(t, prefix, pl);
  memcpy(t + pl, value, vl);
  t[pl + vl] = 0;
  return t;
}

static void add_var(struct envbuf* b, const char* prefix, const char* value)
{
  b->v[b->n++] = assign(b->text[b->ntext++], ENV_VALUE_MAX, prefix, value);
}

/* The PTR name of ss as NAME=host in out (only with -h), or NULL. */
static const char* host_var(struct server* s, const struct sockaddr_storage* ss, const char* prefix,
                            char out[ENV_HOST_MAX], char** name)
{
  char host[NI_MAXHOST];
  if (rdns_name(&s->dns, ss, host, sizeof host) <= 0) return 0;
  assign(out, ENV_HOST_MAX, prefix, host);
  *name = out + strlen(prefix);
  return out;
}

static void utoa(unsigned v, char out[8])
{
  char tmp[8];
  size_t n = 0;
  do tmp[n++] = (char)('0' + v % 10); while ((v /= 10) && n < sizeof tmp - 1);
  for (size_t i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
  out[n] = 0;
}

static void set_ucspi(struct server* s, struct conn* c, char** base, struct envbuf* b, const char** remotehost)
{
  static char lhost[ENV_HOST_MAX], rhost[ENV_HOST_MAX];   /* only with -h */
  char ip[ADDR_IP_MAX], port[8], *name = 0;
  const char* e;
  b->n = 0;
  for (char** p = base; *p; p++)
    if (!is_ucspi(*p)) b->v[b->n++] = *p;
  add_var(b, "PROTO=", "TCP");
  addr_ip(&c->server, ip);
  add_var(b, "TCPLOCALIP=", ip);
  utoa(addr_port(&c->server), port);
  add_var(b, "TCPLOCALPORT=", port);
  addr_ip(&c->client, ip);
  add_var(b, "TCPREMOTEIP=", ip);
  utoa(addr_port(&c->client), port);
  add_var(b, "TCPREMOTEPORT=", port);
  if (s->o->localenv) b->v[b->n++] = s->o->localenv;
  else if (s->o->lookup && (e = host_var(s, &c->server, "TCPLOCALHOST=", lhost, &name)) != 0)
    b->v[b->n++] = (char*)e;
  *remotehost = 0;
  if (s->o->lookup && (e = host_var(s, &c->client, "TCPREMOTEHOST=", rhost, &name)) != 0) {
    b->v[b->n++] = (char*)e;
    *remotehost = name;
  }
  b->v[b->n] = 0;
  environ = b->v;
}

/* 0 allowed, EXIT_DENIED, or EXIT_TEMP. */
static int apply_rules(struct server* s, struct conn* c, const char* host)
{
  if (!s->o->rules) return 0;
  char ip[ADDR_IP_MAX];
  addr_ip(&c->client, ip);
  if (s->rules.fd < 0) {
    if (s->o->rules_optional) return 0;
    log_fmt(LOG_WARN, "deny id=%llu ip=%s reason=\"rules file unreadable: %s\"", c->id, ip, s->o->rules);
    return EXIT_DENIED;
  }
  const char* data;
  size_t len;
  int r = tcprules_find(&s->rules, ip, host, &data, &len);
  if (r < 0) {
    log_fmt(LOG_ERR, "rules id=%llu ip=%s error=\"cannot read %s\"", c->id, ip, s->o->rules);
    return s->o->rules_optional ? 0 : EXIT_TEMP;
  }
  if (r == 0) return 0;
  int v = tcprules_apply(data, len, set_var, 0);
  if (v < 0) return EXIT_TEMP;
  if (v == TCPRULES_DENY) {
    if (s->o->verbose) log_fmt(0, "deny id=%llu ip=%s reason=tcprules", c->id, ip);
    return EXIT_DENIED;
  }
  return 0;
}

/* One connection on fds 0 and 1: its variables (on this stack frame),
 * the rules, the session.  Returns the status tcpserver's child would
 * exit with. */
static int run_session(struct server* s, struct conn* c, char** base)
{
  /* the client on fds 0 and 1 as under tcpserver: third-party plugins
   * and programs they run may use them directly */
  if (dup2(c->fd, 0) < 0 || dup2(c->fd, 1) < 0) return EXIT_TEMP;
  if (c->fd > 1) close(c->fd);
  if (c->local.ss_family == AF_UNSPEC) {
    socklen_t len = sizeof c->local;
    if (getsockname(0, (struct sockaddr*)&c->local, &len) < 0) return EXIT_TEMP;
    c->server = c->local;
  }
  size_t n = 0;
  for (char** e = base; *e; e++) n++;
  char* vars[n + UCSPI_N + 1];   /* bounded by the parent's environment */
  struct envbuf env = { .v = vars };
  const char* host = 0;
  set_ucspi(s, c, base, &env, &host);
  int r = apply_rules(s, c, host);
  if (r) return r;
  return mf_session(s->cfg, 0, 1, NULL);
}

/* ---- a process that serves several connections ---- */

/* What the process restores after each session (see the top comment). */
#define FDS_KEPT_MAX 512
struct start_state
{
  char** environ;
  int devnull;                 /* fds 0 and 1 between sessions */
  int cwd;                     /* O_PATH of the start directory, or -1 */
  mode_t umask;
  int top;                     /* the highest fd open at the start */
  unsigned char open[FDS_KEPT_MAX / 8];   /* which fds <= top were open */
};

static const int reset_signals[] = { SIGALRM, SIGCHLD, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2 };

static void keep_fd(struct start_state* st, int fd)
{
  st->open[fd / 8] |= (unsigned char)(1u << (fd % 8));
  if (fd > st->top) st->top = fd;
}

/* The fds open now (but the connection's, closed by its session):
 * from /proc/self/fd, or by asking each fd below FDS_KEPT_MAX. */
static int scan_fds(struct start_state* st, int conn_fd)
{
  DIR* d = opendir("/proc/self/fd");
  if (!d) {
    for (int fd = 0; fd < FDS_KEPT_MAX; fd++)
      if (fd != conn_fd && fcntl(fd, F_GETFD) >= 0) keep_fd(st, fd);
    return 0;
  }
  int dfd = dirfd(d), ok = 0;
  struct dirent* e;
  while ((e = readdir(d))) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    long fd = strtol(e->d_name, 0, 10);
    if (fd == dfd || fd == conn_fd) continue;
    if (fd >= FDS_KEPT_MAX) { ok = -1; break; }
    keep_fd(st, (int)fd);
  }
  closedir(d);
  return ok;
}

/* -1 when the process cannot keep a clean state (then it serves one
 * session, as without a channel). */
static int start_state_init(struct start_state* st, int conn_fd)
{
  memset(st, 0, sizeof *st);
  st->environ = environ;
  st->umask = umask(022);
  umask(st->umask);
  if ((st->devnull = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0) return -1;
  st->cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
  return scan_fds(st, conn_fd);
}

static void start_state_restore(struct server* s, const struct start_state* st)
{
  environ = st->environ;
  for (int fd = 3; fd <= st->top; fd++)
    if (!(st->open[fd / 8] & (1u << (fd % 8)))) close(fd);
  close_range((unsigned)st->top + 1, ~0U, 0);
  alarm(0);
  for (size_t i = 0; i < sizeof reset_signals / sizeof reset_signals[0]; i++) signal(reset_signals[i], SIG_DFL);
  signal(SIGPIPE, SIG_IGN);
  sigprocmask(SIG_SETMASK, &s->sigmask, 0);
  umask(st->umask);
  if (st->cwd >= 0 && fchdir(st->cwd) < 0) _exit(EXIT_TEMP);
}

static void serve(struct server* s, struct conn* c, int chan)
{
  struct start_state st;
  if (start_state_init(&st, c->fd) < 0) _exit(run_session(s, c, environ));
  for (unsigned long served = 1;; served++) {
    int status = run_session(s, c, st.environ);
    if (served >= s->o->reuse) _exit(status);
    /* the client's connection closed and the parent told at once (its
     * next connection may already be waiting), then the clean-up */
    dup2(st.devnull, 0);
    dup2(st.devnull, 1);
    if (handoff_done(chan, status) < 0) _exit(0);
    start_state_restore(s, &st);
    struct job j;
    memset(&j, 0, sizeof j);
    if (handoff_recv(chan, &j, &c->fd) <= 0) _exit(0);
    c->id = j.id;
    c->local = j.local;
    c->client = j.client;
    c->server = j.server;
    c->proxied = j.proxied;
  }
}

void child_run(struct server* s, struct conn* c, int chan)
{
  /* the parent's signals are blocked (read from its signalfd), their
   * dispositions the default; SIGPIPE stays ignored as in mailfront's
   * main: write errors are values */
  sigprocmask(SIG_SETMASK, &s->sigmask, 0);
  close(s->sigfd);
  listen_close(&s->ls);
  for (size_t i = 0; i < s->npend; i++)
    if (s->pend[i].fd != c->fd) close(s->pend[i].fd);
  for (size_t i = 0; i < s->nkids; i++)
    if (s->chans[i] >= 0) close(s->chans[i]);
  log_program("mailfront");
  if (chan < 0) _exit(run_session(s, c, environ));
  serve(s, c, chan);
  _exit(0);
}

/* Unit test: the version-4 modules of group "b" (plugin-clamav,
 * plugin-spamassassin, plugin-rspamd, plugin-milter, plugin-greylist,
 * plugin-ratelimit, backend-lmtp) run many sessions one after another in
 * one process and carry nothing from one session into the next.
 *
 * Each configuration is loaded once (mf_load) from this build's modules
 * and runs several sessions through mf_session over socketpairs (as
 * core_sessions.c and relay_sessions.c do), the queuedir back end
 * writing what is accepted.  The servers the plugins talk to are faked by
 * forked children on Unix sockets (clamd's INSTREAM, spamd's PROCESS,
 * rspamd's HTTP, a milter, an LMTP next hop), each bounded by alarm();
 * greylist and ratelimit use a private redis-server.  For every module the
 * sessions are chosen so that state kept from one session would change
 * the next one's replies or queued message: a verdict, a reject text, an
 * envelope, a sticky milter reply or discard, a message cut off in its
 * data, a client network, a rate-limit subject, a next-hop transaction.
 * Shared state that must persist (Redis's) is checked to persist.  The
 * settings given through mf_session's environment differ per session and
 * must be honoured per session.  After every session the number of open fds is the same as
 * before the first one (sockets to the servers closed by session_close);
 * in the sanitizer build LeakSanitizer checks at exit. */
#include "tap.h"
#include "sessions.h"
#include "../../src/plugins/milter/wire.h"
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

const char* __asan_default_options(void);
const char* __asan_default_options(void) { return "detect_leaks=1"; }

static char dir[64], qdir[128], qenv[160], modenv[PATH_MAX + 32];
static int fds0;

/* ---- small helpers ---- */

/* Whether b holds the bytes of s (b may hold NULs: a queued envelope). */
static int has(const struct buf* b, const char* s)
{
  size_t n = strlen(s);
  for (size_t i = 0; b->s && n <= b->len && i <= b->len - n; i++)
    if (memcmp(b->s + i, s, n) == 0) return 1;
  return 0;
}

/* The queued messages (files in qdir/new, in name order) into *all, each
 * followed by "\n--\n"; they are removed.  Returns how many there were. */
static int cmp_names(const void* a, const void* b) { return strcmp(*(char* const*)a, *(char* const*)b); }
static int take_queue(struct buf* all)
{
  char path[PATH_MAX];
  char* names[16];
  int k = 0;
  all->len = 0;
  put(all, "", 0);
  snprintf(path, sizeof path, "%s/new", qdir);
  DIR* d = opendir(path);
  struct dirent* e;
  while (d && (e = readdir(d)))
    if (e->d_name[0] != '.' && k < 16) names[k++] = strdup(e->d_name);
  if (d) closedir(d);
  qsort(names, (size_t)k, sizeof *names, cmp_names);
  for (int i = 0; i < k; i++) {
    snprintf(path, sizeof path, "%s/new/%s", qdir, names[i]);
    struct buf one = { 0, 0, 0 };
    slurp(path, &one);
    put(all, one.s, one.len);
    put(all, "\n--\n", 4);
    free(one.s);
    unlink(path);
    free(names[i]);
  }
  return k;
}

static struct mf_config* load(int argc, char** argv)
{
  char* loadenv[] = { modenv, 0 };
  const response* err = 0;
  struct mf_config* cfg = mf_load(argc, argv, loadenv, &err);
  if (!cfg) printf("# mf_load: %s\n", err && err->message ? err->message : "?");
  mf_error_free(err);
  return cfg;
}

/* One session: input, extra environment (NULL-terminated, the queue
 * settings are added); the replies into out.  Returns the exit status, or
 * -1 when the socketpair failed.  Checks that no fd was left open. */
static int session(struct mf_config* cfg, const char* input, const char* const* extra, struct buf* out,
                   const char* what)
{
  char* env[24];
  int n = 0;
  env[n++] = qenv;
  env[n++] = "QUEUEDIR_NOSYNC=1";
  env[n++] = "TCPLOCALHOST=mx.test";
  for (; extra && *extra && n < 23; extra++) env[n++] = (char*)*extra;
  env[n] = 0;
  struct buf in = { 0, 0, 0 };
  put(&in, input, strlen(input));
  out->len = 0;
  int status = -1;
  if (run_session(cfg, &in, out, env, &status) < 0) status = -1;
  put(out, "", 0);
  free(in.s);
  char name[200];
  snprintf(name, sizeof name, "%s: no fd left open", what);
  int fds = count_fds();
  CHECK(fds == fds0, name);
  if (fds != fds0) printf("# fds before %d, after %d\n", fds0, fds);
  return status;
}

/* CHECK that the reply stream holds s (shown when it does not). */
static void expect(const struct buf* out, const char* s, const char* name)
{
  CHECK(has(out, s), name);
  if (!has(out, s)) printf("# wanted \"%s\" in:\n# %s\n", s, out->s ? out->s : "");
}

static void expect_not(const struct buf* out, const char* s, const char* name)
{
  CHECK(!has(out, s), name);
  if (has(out, s)) printf("# did not want \"%s\" in:\n# %s\n", s, out->s ? out->s : "");
}

/* ---- fake servers: children on Unix sockets, one connection at a time ---- */

static int read_full(int fd, void* b, size_t n)
{
  char* p = b;
  while (n > 0) {
    ssize_t r = read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

static void write_all(int fd, const void* b, size_t n)
{
  const char* p = b;
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    p += w;
    n -= (size_t)w;
  }
}

/* One line without its CR LF into line (at most max - 1 bytes kept);
 * 0 at end of input. */
typedef void (*conn_fn)(int fd, FILE* log);

/* A Unix socket address for path; -1 when the path is too long. */
static int unix_addr(struct sockaddr_un* sun, const char* path)
{
  size_t n = strlen(path);
  memset(sun, 0, sizeof *sun);
  sun->sun_family = AF_UNIX;
  if (n >= sizeof sun->sun_path) return -1;
  memcpy(sun->sun_path, path, n + 1);
  return 0;
}

struct fake { char sock[PATH_MAX], log[PATH_MAX]; pid_t pid; };

static int fake_start(struct fake* f, const char* name, conn_fn fn)
{
  snprintf(f->sock, sizeof f->sock, "%s/%s.sock", dir, name);
  snprintf(f->log, sizeof f->log, "%s/%s.log", dir, name);
  f->pid = -1;
  int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un sun;
  if (lfd < 0 || unix_addr(&sun, f->sock) < 0 || bind(lfd, (struct sockaddr*)&sun, sizeof sun) < 0 || listen(lfd, 8) < 0) {
    if (lfd >= 0) close(lfd);
    return -1;
  }
  fflush(stdout);
  f->pid = fork();
  if (f->pid == 0) {
    FILE* log = fopen(f->log, "w");
    if (!log) _exit(1);
    alarm(120);                          /* every read of the fake is bounded */
    for (;;) {
      int c = accept(lfd, 0, 0);
      if (c < 0) _exit(0);
      fprintf(log, "CONNECT\n");
      fflush(log);
      fn(c, log);
      fprintf(log, "CLOSE\n");
      fflush(log);
      close(c);
    }
  }
  close(lfd);
  return f->pid > 0 ? 0 : -1;
}

static void fake_stop(struct fake* f)
{
  if (f->pid > 0) { kill(f->pid, SIGTERM); waitpid(f->pid, 0, 0); }
  f->pid = -1;
  unlink(f->sock);
  unlink(f->log);
}

/* The fake's log (its writes are flushed per line), once it equals want
 * or after 5 s (the fake may still be writing its last lines). */
static void fake_log(const struct fake* f, struct buf* b, const char* want)
{
  for (int i = 0; i < 100; i++) {
    slurp(f->log, b);
    if (strcmp(b->s, want) == 0) return;
    usleep(50000);
  }
}

/* ---- clamd: INSTREAM; "VIRUS-NAME" in the data is a virus NAME ---- */

static void clamd_conn(int c, FILE* log)
{
  char cmd[10];
  struct buf data = { 0, 0, 0 };
  if (read_full(c, cmd, sizeof cmd) < 0 || memcmp(cmd, "nINSTREAM\n", sizeof cmd) != 0) return;
  for (;;) {
    unsigned char l[4];
    if (read_full(c, l, 4) < 0) goto out;
    uint32_t n = (uint32_t)l[0] << 24 | (uint32_t)l[1] << 16 | (uint32_t)l[2] << 8 | l[3];
    if (n == 0) break;
    if (n > (1u << 20)) goto out;
    char* p = malloc(n);
    if (!p || read_full(c, p, n) < 0) { free(p); goto out; }
    put(&data, p, n);
    free(p);
  }
  put(&data, "", 0);
  const char* v = strstr(data.s, "VIRUS-");
  if (v) {
    char name[64];
    size_t k = 0;
    for (v += 6; k + 1 < sizeof name && ((*v >= 'A' && *v <= 'Z') || (*v >= 'a' && *v <= 'z')); v++) name[k++] = *v;
    name[k] = 0;
    dprintf(c, "stream: %s FOUND\n", name);
    fprintf(log, "FOUND %s\n", name);
  } else {
    dprintf(c, "stream: OK\n");
    fprintf(log, "OK\n");
  }
out:
  free(data.s);
}

/* ---- spamd: PROCESS; "SPAM" in the message is spam ---- */

static void spamd_conn(int c, FILE* log)
{
  char line[1024];
  long len = -1;
  if (!read_line(c, line, sizeof line) || strncmp(line, "PROCESS ", 8) != 0) return;
  while (read_line(c, line, sizeof line) && line[0])
    if (strncasecmp(line, "Content-Length:", 15) == 0) len = atol(line + 15);
  if (len < 0 || len > (1L << 20)) return;
  char* msg = malloc((size_t)len + 1);
  if (!msg || read_full(c, msg, (size_t)len) < 0) { free(msg); return; }
  msg[len] = 0;
  int spam = strstr(msg, "SPAM") != 0;
  const char* status = spam ? "X-Spam-Status: Yes, score=9.9 required=5.0\n" : "X-Spam-Status: No, score=0.1 required=5.0\n";
  dprintf(c, "SPAMD/1.1 0 EX_OK\r\nContent-length: %zu\r\n\r\n", strlen(status) + (size_t)len);
  write_all(c, status, strlen(status));
  write_all(c, msg, (size_t)len);
  fprintf(log, "%s\n", spam ? "SPAM" : "HAM");
  free(msg);
}

/* ---- rspamd: POST /checkv2; the action is chosen by the message ---- */

static void rspamd_conn(int c, FILE* log)
{
  char line[1024], from[300] = "";
  long len = -1;
  if (!read_line(c, line, sizeof line) || strncmp(line, "POST /checkv2 ", 14) != 0) return;
  while (read_line(c, line, sizeof line) && line[0]) {
    if (strncasecmp(line, "Content-Length:", 15) == 0) len = atol(line + 15);
    if (strncmp(line, "From: ", 6) == 0) {
      snprintf(from, sizeof from, "%.200s", line + 6);
      fprintf(log, "FROM %s\n", from);
    }
    if (strncmp(line, "Rcpt: ", 6) == 0) fprintf(log, "RCPT %s\n", line + 6);
  }
  fflush(log);
  if (len < 0 || len > (1L << 20)) return;
  char* msg = malloc((size_t)len + 1);
  if (!msg || read_full(c, msg, (size_t)len) < 0) { free(msg); return; }
  msg[len] = 0;
  char json[600];
  if (strstr(msg, "REJECT"))
    snprintf(json, sizeof json, "{\"action\":\"reject\",\"score\":20.0,\"required_score\":15.0,"
             "\"messages\":{\"smtp_message\":\"Rejected mail from %s\"}}", from);
  else if (strstr(msg, "ADDHEADER"))
    snprintf(json, sizeof json, "{\"action\":\"add header\",\"score\":7.5,\"required_score\":15.0}");
  else
    snprintf(json, sizeof json, "{\"action\":\"no action\",\"score\":0.5,\"required_score\":15.0}");
  dprintf(c, "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s", strlen(json),
          json);
  free(msg);
}

/* ---- a milter: replycode at connect from 192.0.2.66, discard at connect
 * from 192.0.2.77, else continue; at end of data it adds X-Milter-From
 * with the sender of this connection's MAIL. ---- */

static void milter_send(int c, char cmd, const char* data, size_t len)
{
  unsigned char h[5];
  uint32_t n = (uint32_t)len + 1;
  h[0] = (unsigned char)(n >> 24); h[1] = (unsigned char)(n >> 16); h[2] = (unsigned char)(n >> 8); h[3] = (unsigned char)n;
  h[4] = (unsigned char)cmd;
  write_all(c, h, 5);
  if (len) write_all(c, data, len);
}

static void milter_conn(int c, FILE* log)
{
  char from[300] = "";
  for (;;) {
    unsigned char h[5];
    if (read_full(c, h, 5) < 0) return;
    uint32_t n = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
    if (n == 0 || n > (1u << 20)) return;
    char* d = malloc(n);
    if (!d || (n > 1 && read_full(c, d, n - 1) < 0)) { free(d); return; }
    d[n - 1] = 0;
    switch (h[4]) {
    case SMFIC_OPTNEG: {
      unsigned char o[12] = { 0, 0, 0, 6, 0, 0, 0, SMFIF_ADDHDRS, 0, 0, 0, 0 };
      milter_send(c, SMFIC_OPTNEG, (const char*)o, sizeof o);
      break;
    }
    case SMFIC_MACRO: break;                              /* no reply */
    case SMFIC_ABORT: fprintf(log, "ABORT\n"); break;
    case SMFIC_CONNECT: {
      size_t hl = strnlen(d, n - 1);
      const char* addr = hl + 4 < n - 1 && d[hl + 1] != 'U' ? d + hl + 4 : "";
      fprintf(log, "CLIENT %s\n", addr);
      if (strcmp(addr, "192.0.2.66") == 0) {
        static const char text[] = "554 5.7.1 Client 66 is refused";
        milter_send(c, SMFIR_REPLYCODE, text, sizeof text);
      } else if (strcmp(addr, "192.0.2.77") == 0) {
        milter_send(c, SMFIR_DISCARD, 0, 0);
      } else {
        milter_send(c, SMFIR_CONTINUE, 0, 0);
      }
      break;
    }
    case SMFIC_MAIL:
      snprintf(from, sizeof from, "%.200s", d);
      fprintf(log, "MAIL %s\n", from);
      milter_send(c, SMFIR_CONTINUE, 0, 0);
      break;
    case SMFIC_BODYEOB: {
      char hdr[400];
      int k = snprintf(hdr, sizeof hdr, "X-Milter-From%c%s", 0, from);
      milter_send(c, SMFIR_ADDHEADER, hdr, (size_t)k + 1);
      milter_send(c, SMFIR_CONTINUE, 0, 0);
      fprintf(log, "EOM\n");
      break;
    }
    case SMFIC_QUIT:
      fprintf(log, "QUIT\n");
      free(d);
      return;
    default:
      milter_send(c, SMFIR_CONTINUE, 0, 0);
      break;
    }
    fflush(log);
    free(d);
  }
}

/* ---- an LMTP next hop: "bad..." recipients refused, one reply per
 * accepted recipient after the data; every line received is logged ---- */

static void lmtp_conn(int c, FILE* log)
{
  char line[2048];
  int data = 0, rcpts = 0;
  dprintf(c, "220 hop.test LMTP\r\n");
  while (read_line(c, line, sizeof line)) {
    fprintf(log, "%s\n", line);
    fflush(log);
    if (data) {
      if (strcmp(line, ".") == 0) {
        for (int i = 0; i < rcpts; i++) dprintf(c, "250 2.0.0 delivered %d\r\n", i);
        data = rcpts = 0;
      }
      continue;
    }
    if (strncasecmp(line, "LHLO", 4) == 0) dprintf(c, "250 hop.test\r\n");
    else if (strncasecmp(line, "RCPT TO:<bad", 12) == 0) dprintf(c, "550 5.1.1 no such user here\r\n");
    else if (strncasecmp(line, "RCPT", 4) == 0) { rcpts++; dprintf(c, "250 2.1.5 ok\r\n"); }
    else if (strncasecmp(line, "DATA", 4) == 0) { data = 1; dprintf(c, "354 go ahead\r\n"); }
    else if (strncasecmp(line, "RSET", 4) == 0) { rcpts = 0; dprintf(c, "250 2.0.0 ok\r\n"); }
    else if (strncasecmp(line, "QUIT", 4) == 0) { dprintf(c, "221 bye\r\n"); break; }
    else dprintf(c, "250 2.0.0 ok\r\n");
  }
}

/* ---- redis-server, private to this test ---- */

static pid_t redis_start(const char* sock)
{
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    int nul = open("/dev/null", O_WRONLY);
    if (nul >= 0) { dup2(nul, 1); dup2(nul, 2); }
    execlp("redis-server", "redis-server", "--port", "0", "--unixsocket", sock, "--save", "", "--appendonly", "no",
           "--dir", dir, (char*)0);
    _exit(127);
  }
  if (pid < 0) return -1;
  for (int i = 0; i < 200; i++) {            /* at most 10 s */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sun;
    int ok = fd >= 0 && unix_addr(&sun, sock) == 0 && connect(fd, (struct sockaddr*)&sun, sizeof sun) == 0;
    if (fd >= 0) close(fd);
    if (ok) return pid;
    if (waitpid(pid, 0, WNOHANG) == pid) return -1;
    usleep(50000);
  }
  kill(pid, SIGTERM);
  waitpid(pid, 0, 0);
  return -1;
}

/* ---- the groups ---- */

#define MSG(from, rcpt, body) \
  "EHLO client.test\r\nMAIL FROM:<" from ">\r\nRCPT TO:<" rcpt ">\r\nDATA\r\nSubject: test\r\n\r\n" body "\r\n.\r\nQUIT\r\n"

static void clamav_sessions(void)
{
  struct fake f;
  CHECK(fake_start(&f, "clamd", clamd_conn) == 0, "clamav: fake clamd started");
  char* argv[] = { "smtp", "queuedir", "accept", "clamav", 0 };
  struct mf_config* cfg = load(4, argv);
  CHECK(cfg != 0, "clamav: loaded once");
  if (!cfg) { fake_stop(&f); return; }
  char host[PATH_MAX + 16];
  snprintf(host, sizeof host, "CLAMAV_HOST=%s", f.sock);
  const char* const env[] = { host, 0 };
  struct buf out = { 0, 0, 0 }, q = { 0, 0, 0 };
  fds0 = count_fds();

  session(cfg, MSG("a1@x.test", "r1@y.test", "hello VIRUS-Alpha"), env, &out, "clamav session 1");
  expect(&out, "554 5.7.0 Virus scan failed: Alpha FOUND\r\n", "clamav session 1: the virus is refused");
  CHECK(take_queue(&q) == 0, "clamav session 1: nothing queued");

  session(cfg, MSG("a2@x.test", "r2@y.test", "a clean message"), env, &out, "clamav session 2");
  expect(&out, "250 2.6.0 Message accepted.\r\n", "clamav session 2: a clean message is accepted");
  expect_not(&out, "Alpha", "clamav session 2: session 1's verdict does not appear");
  CHECK(take_queue(&q) == 1 && has(&q, "a clean message"), "clamav session 2: queued");

  session(cfg, MSG("a3@x.test", "r3@y.test", "VIRUS-Gamma here"), env, &out, "clamav session 3");
  expect(&out, "554 5.7.0 Virus scan failed: Gamma FOUND\r\n", "clamav session 3: its own virus name");
  expect_not(&out, "Alpha", "clamav session 3: no earlier verdict");
  CHECK(take_queue(&q) == 0, "clamav session 3: nothing queued");

  session(cfg, MSG("a4@x.test", "r4@y.test", "VIRUS-Delta"), 0, &out, "clamav session 4");
  expect(&out, "451 4.3.0 Could not virus scan message\r\n",
         "clamav session 4: without $CLAMAV_HOST in its environment it cannot scan (settings per session)");
  CHECK(take_queue(&q) == 0, "clamav session 4: nothing queued");

  struct buf log = { 0, 0, 0 };
  const char* want = "CONNECT\nFOUND Alpha\nCLOSE\nCONNECT\nOK\nCLOSE\nCONNECT\nFOUND Gamma\nCLOSE\n";
  fake_log(&f, &log, want);
  CHECK(strcmp(log.s, want) == 0, "clamav: one scan per message of sessions 1-3");
  mf_free(cfg);
  fake_stop(&f);
  free(out.s); free(q.s); free(log.s);
}

static void spamassassin_sessions(void)
{
  struct fake f;
  CHECK(fake_start(&f, "spamd", spamd_conn) == 0, "spamassassin: fake spamd started");
  char* argv[] = { "smtp", "queuedir", "accept", "spamassassin", 0 };
  struct mf_config* cfg = load(4, argv);
  CHECK(cfg != 0, "spamassassin: loaded once");
  if (!cfg) { fake_stop(&f); return; }
  char path[PATH_MAX + 16];
  snprintf(path, sizeof path, "SPAMD_PATH=%s", f.sock);
  const char* const env1[] = { path, "SPAMD_REJECT=5.7.1 Session one refuses spam", 0 };
  const char* const env2[] = { path, 0 };
  const char* const env4[] = { path, "SPAMD_REJECT=5.7.1 Session four refuses spam", 0 };
  struct buf out = { 0, 0, 0 }, q = { 0, 0, 0 };
  fds0 = count_fds();

  session(cfg, MSG("a1@x.test", "r1@y.test", "buy SPAM now"), env1, &out, "spamassassin session 1");
  expect(&out, "554 5.7.1 Session one refuses spam\r\n", "spamassassin session 1: spam refused with its $SPAMD_REJECT");
  CHECK(take_queue(&q) == 0, "spamassassin session 1: nothing queued");

  session(cfg, MSG("a2@x.test", "r2@y.test", "more SPAM"), env2, &out, "spamassassin session 2");
  expect(&out, "250 2.6.0 Message accepted.\r\n", "spamassassin session 2: without $SPAMD_REJECT spam is only marked");
  expect_not(&out, "Session one", "spamassassin session 2: session 1's reject text does not appear");
  CHECK(take_queue(&q) == 1 && has(&q, "more SPAM"), "spamassassin session 2: queued");

  session(cfg, MSG("a3@x.test", "r3@y.test", "a normal letter"), env1, &out, "spamassassin session 3");
  expect(&out, "250 2.6.0 Message accepted.\r\n", "spamassassin session 3: ham accepted");
  CHECK(take_queue(&q) == 1 && has(&q, "a normal letter"), "spamassassin session 3: queued");

  session(cfg, MSG("a4@x.test", "r4@y.test", "SPAM again"), env4, &out, "spamassassin session 4");
  expect(&out, "554 5.7.1 Session four refuses spam\r\n", "spamassassin session 4: its own reject text");
  expect_not(&out, "Session one", "spamassassin session 4: not session 1's text");
  CHECK(take_queue(&q) == 0, "spamassassin session 4: nothing queued");
  struct buf log = { 0, 0, 0 };
  const char* want = "CONNECT\nSPAM\nCLOSE\nCONNECT\nSPAM\nCLOSE\nCONNECT\nHAM\nCLOSE\nCONNECT\nSPAM\nCLOSE\n";
  fake_log(&f, &log, want);
  CHECK(strcmp(log.s, want) == 0, "spamassassin: one check per message");
  mf_free(cfg);
  fake_stop(&f);
  free(out.s); free(q.s); free(log.s);
}

static void rspamd_sessions(void)
{
  struct fake f;
  CHECK(fake_start(&f, "rspamd", rspamd_conn) == 0, "rspamd: fake rspamd started");
  char* argv[] = { "smtp", "queuedir", "accept", "rspamd", 0 };
  struct mf_config* cfg = load(4, argv);
  CHECK(cfg != 0, "rspamd: loaded once");
  if (!cfg) { fake_stop(&f); return; }
  char sock[PATH_MAX + 16];
  snprintf(sock, sizeof sock, "RSPAMD_SOCKET=%s", f.sock);
  const char* const env[] = { sock, 0 };
  struct buf out = { 0, 0, 0 }, q = { 0, 0, 0 }, log = { 0, 0, 0 };
  fds0 = count_fds();

  session(cfg, "EHLO c\r\nMAIL FROM:<a1@x.test>\r\nRCPT TO:<r1a@y.test>\r\nRCPT TO:<r1b@y.test>\r\nDATA\r\n"
               "Subject: 1\r\n\r\nplease REJECT\r\n.\r\nQUIT\r\n", env, &out, "rspamd session 1");
  expect(&out, "554 5.7.1 Rejected mail from a1@x.test\r\n", "rspamd session 1: rejected with rspamd's text");
  CHECK(take_queue(&q) == 0, "rspamd session 1: nothing queued");

  session(cfg, MSG("a2@x.test", "r2@y.test", "fine"), env, &out, "rspamd session 2");
  expect(&out, "250 2.6.0 Message accepted.\r\n", "rspamd session 2: accepted");
  expect_not(&out, "a1@x.test", "rspamd session 2: no trace of session 1 in the replies");
  /* The message is handed to the back end again with the plugin's
   * envelope: recipients kept from session 1 would be queued too. */
  CHECK(take_queue(&q) == 1 && strncmp(q.s, "a2@x.test\0r2@y.test\0\0", 21) == 0 && has(&q, "X-Spam-Status: No")
        && !has(&q, "r1a") && !has(&q, "r1b"),
        "rspamd session 2: queued with exactly its own envelope");

  session(cfg, MSG("a3@x.test", "r3@y.test", "ADDHEADER please"), env, &out, "rspamd session 3");
  expect(&out, "250 2.6.0 Message accepted.\r\n", "rspamd session 3: accepted");
  CHECK(take_queue(&q) == 1 && strncmp(q.s, "a3@x.test\0r3@y.test\0\0", 21) == 0 && has(&q, "X-Spam: Yes"),
        "rspamd session 3: queued with its envelope and its verdict's header");

  const char* want = "CONNECT\nFROM a1@x.test\nRCPT r1a@y.test\nRCPT r1b@y.test\nCLOSE\n"
                     "CONNECT\nFROM a2@x.test\nRCPT r2@y.test\nCLOSE\n"
                     "CONNECT\nFROM a3@x.test\nRCPT r3@y.test\nCLOSE\n";
  fake_log(&f, &log, want);
  CHECK(strcmp(log.s, want) == 0, "rspamd: each check carried only its session's envelope");
  if (strcmp(log.s, want) != 0) printf("# rspamd saw:\n%s", log.s);
  mf_free(cfg);
  fake_stop(&f);
  free(out.s); free(q.s); free(log.s);
}

static void milter_sessions(void)
{
  struct fake f;
  CHECK(fake_start(&f, "milter", milter_conn) == 0, "milter: fake milter started");
  char* argv[] = { "smtp", "queuedir", "accept", "milter", 0 };
  struct mf_config* cfg = load(4, argv);
  CHECK(cfg != 0, "milter: loaded once");
  if (!cfg) { fake_stop(&f); return; }
  char milters[PATH_MAX + 16];
  snprintf(milters, sizeof milters, "MILTERS=unix:%s", f.sock);
  const char* const env66[] = { milters, "TCPREMOTEIP=192.0.2.66", 0 };
  const char* const env2[] = { milters, "TCPREMOTEIP=198.51.100.2", 0 };
  const char* const env77[] = { milters, "TCPREMOTEIP=192.0.2.77", 0 };
  const char* const env5[] = { milters, "TCPREMOTEIP=198.51.100.5", 0 };
  struct buf out = { 0, 0, 0 }, q = { 0, 0, 0 }, log = { 0, 0, 0 };
  fds0 = count_fds();

  session(cfg, MSG("a1@x.test", "r1@y.test", "one"), env66, &out, "milter session 1");
  expect(&out, "554 5.7.1 Client 66 is refused\r\n", "milter session 1: the connect-time reply refuses the client");
  expect_not(&out, "250 2.6.0", "milter session 1: no message accepted");
  CHECK(take_queue(&q) == 0, "milter session 1: nothing queued");

  session(cfg, MSG("a2@x.test", "r2@y.test", "two"), env2, &out, "milter session 2");
  expect(&out, "250 2.6.0 Message accepted.\r\n", "milter session 2: accepted (session 1's sticky reply is gone)");
  expect_not(&out, "Client 66", "milter session 2: no reply of session 1");
  CHECK(take_queue(&q) == 1 && has(&q, "X-Milter-From: <a2@x.test>") && has(&q, "two"),
        "milter session 2: queued with the milter's header for its sender");

  session(cfg, MSG("a3@x.test", "r3@y.test", "three"), env77, &out, "milter session 3");
  expect(&out, "250 2.6.0 Message accepted", "milter session 3: discarded at connect, the client sees acceptance");
  CHECK(take_queue(&q) == 0, "milter session 3: discarded, nothing queued");

  session(cfg, MSG("a4@x.test", "r4@y.test", "four"), env5, &out, "milter session 4");
  expect(&out, "250 2.6.0 Message accepted.\r\n", "milter session 4: accepted");
  CHECK(take_queue(&q) == 1 && has(&q, "X-Milter-From: <a4@x.test>") && !has(&q, "a2@x.test") && has(&q, "four"),
        "milter session 4: queued (session 3's discard is gone), with only its own header");

  /* The client goes away in the middle of the data: the transaction is
   * aborted, the half message is not queued and nothing of it reaches
   * the next session. */
  session(cfg, "EHLO c\r\nMAIL FROM:<a5@x.test>\r\nRCPT TO:<r5@y.test>\r\nDATA\r\nSubject: cut\r\n\r\nhalf",
          env5, &out, "milter session 5");
  expect(&out, "354 ", "milter session 5: the data began");
  CHECK(take_queue(&q) == 0, "milter session 5: the cut message is not queued");
  session(cfg, MSG("a6@x.test", "r6@y.test", "six"), env2, &out, "milter session 6");
  expect(&out, "250 2.6.0 Message accepted.\r\n", "milter session 6: accepted");
  CHECK(take_queue(&q) == 1 && has(&q, "X-Milter-From: <a6@x.test>") && !has(&q, "a5@x.test") && !has(&q, "half"),
        "milter session 6: queued with only its own header and body");

  /* One connection per session, each ended with QUIT by session_close. */
  const char* want = "CONNECT\nCLIENT 192.0.2.66\nQUIT\nCLOSE\n"
                     "CONNECT\nCLIENT 198.51.100.2\nMAIL <a2@x.test>\nEOM\nQUIT\nCLOSE\n"
                     "CONNECT\nCLIENT 192.0.2.77\nMAIL <a3@x.test>\nABORT\nQUIT\nCLOSE\n"
                     "CONNECT\nCLIENT 198.51.100.5\nMAIL <a4@x.test>\nEOM\nQUIT\nCLOSE\n"
                     "CONNECT\nCLIENT 198.51.100.5\nMAIL <a5@x.test>\nABORT\nQUIT\nCLOSE\n"
                     "CONNECT\nCLIENT 198.51.100.2\nMAIL <a6@x.test>\nEOM\nQUIT\nCLOSE\n";
  fake_log(&f, &log, want);
  CHECK(strcmp(log.s, want) == 0, "milter: one connection per session, each with its own client and sender, then QUIT");
  if (strcmp(log.s, want) != 0) printf("# milter saw:\n%s", log.s);
  mf_free(cfg);
  fake_stop(&f);
  free(out.s); free(q.s); free(log.s);
}

static void greylist_sessions(const char* redis_env)
{
  char* argv[] = { "smtp", "queuedir", "greylist", "accept", 0 };
  struct mf_config* cfg = load(4, argv);
  CHECK(cfg != 0, "greylist: loaded once");
  if (!cfg) return;
  const char* const env1[] = { redis_env, "TCPREMOTEIP=192.0.2.1", 0 };
  const char* const env2[] = { redis_env, 0 };
  const char* const env3[] = { redis_env, "TCPREMOTEIP=198.51.100.1", "GREYLIST_DELAY=0", 0 };
  const char* const env5[] = { redis_env, "TCPREMOTEIP=192.0.2.1", "RELAYCLIENT=", 0 };
  struct buf out = { 0, 0, 0 }, q = { 0, 0, 0 };
  fds0 = count_fds();

  session(cfg, MSG("a@x.test", "r@y.test", "g1"), env1, &out, "greylist session 1");
  expect(&out, "451 4.7.1 Greylisted, please try again later\r\n", "greylist session 1: a new triplet is greylisted");
  CHECK(take_queue(&q) == 0, "greylist session 1: nothing queued");

  session(cfg, MSG("a@x.test", "r@y.test", "g2"), env2, &out, "greylist session 2");
  expect(&out, "250 2.6.0 Message accepted.\r\n",
         "greylist session 2: no client address, not greylisted (session 1's network is not kept)");
  expect_not(&out, "451", "greylist session 2: nothing refused");
  CHECK(take_queue(&q) == 1, "greylist session 2: queued");

  session(cfg, MSG("a@x.test", "r@y.test", "g3"), env3, &out, "greylist session 3");
  expect(&out, "250 2.6.0 Message accepted.\r\n", "greylist session 3: its own $GREYLIST_DELAY=0 lets it pass");
  CHECK(take_queue(&q) == 1, "greylist session 3: queued");

  session(cfg, MSG("a@x.test", "r@y.test", "g4"), env1, &out, "greylist session 4");
  expect(&out, "451 4.7.1 Greylisted", "greylist session 4: session 1's triplet retried too early (the state in Redis)");
  CHECK(take_queue(&q) == 0, "greylist session 4: nothing queued");

  session(cfg, MSG("a@x.test", "r@y.test", "g5"), env5, &out, "greylist session 5");
  expect(&out, "250 2.6.0 Message accepted.\r\n", "greylist session 5: a relay client is not greylisted");
  CHECK(take_queue(&q) == 1, "greylist session 5: queued");
  mf_free(cfg);
  free(out.s); free(q.s);
}

static void ratelimit_sessions(const char* redis_env)
{
  char* argv[] = { "smtp", "queuedir", "ratelimit", "accept", 0 };
  struct mf_config* cfg = load(4, argv);
  CHECK(cfg != 0, "ratelimit: loaded once");
  if (!cfg) return;
  const char* const envA[] = { redis_env, "TCPREMOTEIP=192.0.2.10", "RATELIMIT_RCPTS_PER_IP=2/3600", 0 };
  const char* const envB[] = { redis_env, "TCPREMOTEIP=203.0.113.10", "RATELIMIT_RCPTS_PER_IP=2/3600", 0 };
  const char* const envC[] = { redis_env, "TCPREMOTEIP=198.51.100.20", "RATELIMIT_CONN_PER_IP=1/3600", 0 };
  const char* const envD[] = { redis_env, "TCPREMOTEIP=192.0.2.10", 0 };
  const char* three = "EHLO c\r\nMAIL FROM:<s@x.test>\r\nRCPT TO:<r1@y.test>\r\nRCPT TO:<r2@y.test>\r\n"
                      "RCPT TO:<r3@y.test>\r\nQUIT\r\n";
  const char* two = "EHLO c\r\nMAIL FROM:<s@x.test>\r\nRCPT TO:<r1@y.test>\r\nRCPT TO:<r2@y.test>\r\nQUIT\r\n";
  struct buf out = { 0, 0, 0 };
  fds0 = count_fds();

  session(cfg, three, envA, &out, "ratelimit session 1");
  CHECK(has(&out, "250 2.1.5 Recipient accepted.\r\n250 2.1.5 Recipient accepted.\r\n451 4.7.0 Recipient rate limit exceeded (rcpts-ip)"),
        "ratelimit session 1: the third recipient from 192.0.2.10 is over the limit");
  session(cfg, two, envB, &out, "ratelimit session 2");
  CHECK(has(&out, "250 2.1.5 Recipient accepted.\r\n250 2.1.5 Recipient accepted.\r\n221") && !has(&out, "451"),
        "ratelimit session 2: another client starts with its own count");
  session(cfg, two, envA, &out, "ratelimit session 3");
  expect(&out, "451 4.7.0 Recipient rate limit exceeded (rcpts-ip)",
         "ratelimit session 3: 192.0.2.10 is still over its limit (the state in Redis)");
  session(cfg, two, envD, &out, "ratelimit session 4");
  CHECK(has(&out, "250 2.1.5 Recipient accepted.\r\n250 2.1.5 Recipient accepted.\r\n221") && !has(&out, "451"),
        "ratelimit session 4: without the setting in its environment no limit applies");
  int st = session(cfg, "QUIT\r\n", envC, &out, "ratelimit session 5");
  CHECK(st == 0 && has(&out, "221"), "ratelimit session 5: the first connection from 198.51.100.20 is allowed");
  session(cfg, "QUIT\r\n", envC, &out, "ratelimit session 6");
  expect(&out, "421 4.7.0 Too many connections from your network (conn-ip)",
         "ratelimit session 6: the second connection is over $RATELIMIT_CONN_PER_IP");
  mf_free(cfg);
  free(out.s);
}

static void lmtp_sessions(void)
{
  struct fake f;
  CHECK(fake_start(&f, "lmtp", lmtp_conn) == 0, "lmtp: fake next hop started");
  char* argv[] = { "smtp", "lmtp", "accept", 0 };
  struct mf_config* cfg = load(3, argv);
  CHECK(cfg != 0, "lmtp: loaded once");
  if (!cfg) { fake_stop(&f); return; }
  char sock[PATH_MAX + 16];
  snprintf(sock, sizeof sock, "RELAY_SOCKET=%s", f.sock);
  const char* const env[] = { sock, "RELAY_HELO=front.test", 0 };
  struct buf out = { 0, 0, 0 }, log = { 0, 0, 0 };
  fds0 = count_fds();

  session(cfg, "EHLO c\r\nMAIL FROM:<a1@x.test>\r\nRCPT TO:<r1@y.test>\r\nRCPT TO:<bad1@y.test>\r\nDATA\r\n"
               "Subject: 1\r\n\r\nbody 1\r\n.\r\nQUIT\r\n", env, &out, "lmtp session 1");
  expect(&out, "550 5.1.1 no such user here\r\n", "lmtp session 1: the next hop's refusal of one recipient");
  expect(&out, "250 2.0.0 delivered 0\r\n", "lmtp session 1: delivered to the other");
  session(cfg, MSG("a2@x.test", "r2@y.test", "body 2"), env, &out, "lmtp session 2");
  expect(&out, "250 2.0.0 delivered 0\r\n", "lmtp session 2: delivered");
  session(cfg, "EHLO c\r\nMAIL FROM:<a3@x.test>\r\nRCPT TO:<r3@y.test>\r\nRSET\r\n"
               "MAIL FROM:<b3@x.test>\r\nRCPT TO:<s3@y.test>\r\nDATA\r\nSubject: 3\r\n\r\nbody 3\r\n.\r\nQUIT\r\n",
          env, &out, "lmtp session 3");
  expect(&out, "250 2.0.0 delivered 0\r\n", "lmtp session 3: the second transaction delivered");
  const char* want =
    "CONNECT\nLHLO front.test\nMAIL FROM:<a1@x.test>\nRCPT TO:<r1@y.test>\nRCPT TO:<bad1@y.test>\nDATA\n"
    "Subject: 1\n\nbody 1\n.\nQUIT\nCLOSE\n"
    "CONNECT\nLHLO front.test\nMAIL FROM:<a2@x.test>\nRCPT TO:<r2@y.test>\nDATA\nSubject: test\n\nbody 2\n.\nQUIT\nCLOSE\n"
    "CONNECT\nLHLO front.test\nMAIL FROM:<a3@x.test>\nRCPT TO:<r3@y.test>\nRSET\nMAIL FROM:<b3@x.test>\n"
    "RCPT TO:<s3@y.test>\nDATA\nSubject: 3\n\nbody 3\n.\nQUIT\nCLOSE\n";
  fake_log(&f, &log, want);
  CHECK(strcmp(log.s, want) == 0, "lmtp: one connection per session with only its transactions, then QUIT");
  if (strcmp(log.s, want) != 0) printf("# the hop saw:\n%s", log.s);
  mf_free(cfg);
  fake_stop(&f);
  free(out.s); free(log.s);
}

int main(void)
{
  char exe[PATH_MAX];
  if (build_dir(exe, sizeof exe) < 0) { CHECK(0, "own path"); return done(); }
  snprintf(modenv, sizeof modenv, "MODULE_PATH=%s/lib", exe);
  snprintf(dir, sizeof dir, "/tmp/mfreuseb.XXXXXX");
  if (!mkdtemp(dir)) { CHECK(0, "temp dir"); return done(); }
  snprintf(qdir, sizeof qdir, "%s/q", dir);
  snprintf(qenv, sizeof qenv, "QUEUEDIR=%s", qdir);
  char sub[200];
  mkdir(qdir, 0700);
  snprintf(sub, sizeof sub, "%s/tmp", qdir); mkdir(sub, 0700);
  snprintf(sub, sizeof sub, "%s/new", qdir); mkdir(sub, 0700);
  signal(SIGPIPE, SIG_IGN);
  setenv("TMPDIR", dir, 1);
  /* Only what each session's environment says. */
  static const char* const unset[] = { "TCPREMOTEIP", "TCPREMOTEHOST", "RELAYCLIENT", "PROTO", "MILTERS",
                                       "CLAMAV_HOST", "CLAMD_HOST", "SPAMD_PATH", "SPAMD_HOST", "SPAMD_REJECT",
                                       "RSPAMD_SOCKET", "REDIS_PATH", "REDIS_HOST", "SMTPREJECT", 0 };
  for (const char* const* u = unset; *u; u++) unsetenv(*u);

  clamav_sessions();
  spamassassin_sessions();
  rspamd_sessions();
  milter_sessions();
  lmtp_sessions();

  char rsock[200], renv[260];
  snprintf(rsock, sizeof rsock, "%s/redis.sock", dir);
  snprintf(renv, sizeof renv, "REDIS_PATH=%s", rsock);
  pid_t redis = redis_start(rsock);
  CHECK(redis > 0, "a private redis-server started");
  if (redis > 0) {
    greylist_sessions(renv);
    ratelimit_sessions(renv);
    kill(redis, SIGTERM);
    waitpid(redis, 0, 0);
  }
  unlink(rsock);
  snprintf(sub, sizeof sub, "%s/.sweep-tmp", qdir); unlink(sub);     /* queuedir_sweep's stamp */
  snprintf(sub, sizeof sub, "%s/tmp", qdir); rmdir(sub);
  snprintf(sub, sizeof sub, "%s/new", qdir); rmdir(sub);
  rmdir(qdir);
  rmdir(dir);
  return done();
}

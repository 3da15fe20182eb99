/* backend-qmail -- hands each message to qmail-queue (backends.md "qmail").
 *
 * The message goes to qmail-queue's fd 0 (a pipe, or the temp file when one
 * exists), the envelope `Fsender\0Trcpt\0...\0` to its fd 1.  qmail-queue is
 * $QMAILQUEUE (default bin/qmail-queue), run from $QMAILHOME with the
 * session environment applied.  Its exit status maps to the reply table of
 * the spec; $QQERRMSG_N overrides a text.
 *
 * Nothing in the calling process changes: the directory change and the
 * signal disposition are the child's (the parent only opens $QMAILHOME to
 * check it and hand it over; a dying qmail-queue shows as a write error
 * and a status because the program running the session ignores SIGPIPE,
 * as mf_session's callers must).  Writing to qmail-queue and waiting for
 * it share one deadline, $QMAILQUEUE_TIMEOUT seconds (default 1200) from
 * the start of the message end: a qmail-queue still running then is
 * killed and the message gets `451 4.3.0 qmail-queue timed out.`
 * State: one struct per session, the back end's version-4 context.
 * `mailfront --check` calls mailfront_check: $QMAILHOME is a directory,
 * $QMAILQUEUE (or bin/qmail-queue) is executable from it as the child would
 * run it, $QMAILQUEUE_TIMEOUT is a number. */
#include <mailfront/mailfront.h>
#include "lib/confcheck.h"
#include "lib/fdio.h"
#include "lib/progenv.h"
#include "lib/clock.h"
#include <errno.h>
#include <poll.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

RESPONSE(no_chdir, 451, "4.3.0 Could not change to the qmail directory.");
RESPONSE(no_fork, 451, "4.3.0 Could not start qmail-queue.");
RESPONSE(no_pipe, 451, "4.3.0 Could not open pipe to qmail-queue.");
RESPONSE(write_failed, 451, "4.3.0 Writing data to qmail-queue failed.");
RESPONSE(crashed, 451, "4.3.0 qmail-queue crashed.");
RESPONSE(timed_out, 451, "4.3.0 qmail-queue timed out.");

#define QQ_TIMEOUT_DFLT 1200

extern struct plugin backend;

struct qq
{
  str envelope;
  pid_t pid;
  int msgfd, envfd;         /* write ends of the pipes, or -1 */
  unsigned long long bytes;
  int write_failed;
  str text;
  response reply;
};

static const response* qq_open(void** ctx)
{
  struct qq* q = calloc(1, sizeof *q);
  if (!q) return &resp_oom;
  q->pid = -1;
  q->msgfd = q->envfd = -1;
  *ctx = q;
  return 0;
}

static const struct { int status; const char* text; } status_texts[] = {
  { 11, "5.1.3 Address too long." },
  { 31, "5.3.0 Message refused." },
  { 51, "4.3.0 Out of memory." },
  { 52, "4.3.0 Timeout." },
  { 53, "4.3.0 Write error (queue full?)." },
  { 54, "4.3.0 Unable to read the message or envelope." },
  { 55, "4.3.0 Unable to read a configuration file." },
  { 56, "4.3.0 Network problem." },
  { 61, "4.3.0 Problem with the qmail home directory." },
  { 62, "4.3.0 Problem with the qmail queue directory." },
  { 63, "4.3.0 Problem with queue/pid." },
  { 64, "4.3.0 Problem with queue/mess." },
  { 65, "4.3.0 Problem with queue/intd." },
  { 66, "4.3.0 Problem with queue/todo." },
  { 71, "4.3.0 Message refused by mail server." },
  { 72, "4.3.0 Connection to mail server timed out." },
  { 73, "4.3.0 Connection to mail server rejected." },
  { 74, "4.3.0 Communication with mail server failed." },
  { 81, "4.3.0 Internal qmail-queue bug." },
  { 91, "4.3.0 Envelope format error." },
};

static void close_fd(int* fd) { if (*fd >= 0) close(*fd); *fd = -1; }

/* Wait for pid until deadline_ms (monotonic; <= 0: no limit).  The
 * wait status, or -1 when it did not end in time (it is then killed and
 * reaped) or cannot be waited for. */
static int wait_child(pid_t pid, long long deadline_ms, int* timed_out)
{
  int st;
  *timed_out = 0;
#ifdef SYS_pidfd_open
  int pfd = deadline_ms > 0 ? (int)syscall(SYS_pidfd_open, pid, 0) : -1;
#else
  int pfd = -1;
#endif
  long long nap = 1;
  for (;;) {
    pid_t w = waitpid(pid, &st, deadline_ms > 0 ? WNOHANG : 0);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) { st = -1; break; }
    if (w != 0) continue;
    long long left = deadline_ms - clock_mono_ms();
    if (left <= 0) {
      *timed_out = 1;
      kill(pid, SIGKILL);
      while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
      st = -1;
      break;
    }
    if (pfd >= 0) {
      struct pollfd p = { pfd, POLLIN, 0 };
      (void)poll(&p, 1, left > 60000 ? 60000 : (int)left);
    } else {                           /* no pidfd: back off up to 50 ms */
      struct timespec ts = { 0, (long)(nap < left ? nap : left) * 1000000L };
      nanosleep(&ts, 0);
      if (nap < 50) nap *= 2;
    }
  }
  if (pfd >= 0) close(pfd);
  return st;
}

static void reap(struct qq* q)
{
  int st;
  if (q->pid > 0) {
    kill(q->pid, SIGKILL);    /* an abandoned message must not be queued */
    while (waitpid(q->pid, &st, 0) < 0 && errno == EINTR) {}
  }
  q->pid = -1;
}

static const response* qq_reset(void)
{
  struct qq* q = plugin_context(&backend);
  if (!q) return 0;
  close_fd(&q->msgfd);
  close_fd(&q->envfd);
  reap(q);
  q->envelope.len = 0;
  q->bytes = 0;
  q->write_failed = 0;
  return 0;
}

static void qq_close(void* ctx)
{
  struct qq* q = ctx;
  if (!q) return;
  close_fd(&q->msgfd);
  close_fd(&q->envfd);
  reap(q);
  str_free(&q->envelope);
  str_free(&q->text);
  free(q);
}

static const response* add_addr(struct qq* q, char kind, const str* a)
{
  if (!q) return &resp_internal;
  if (!str_catc(&q->envelope, kind) || !str_catb(&q->envelope, a->s ? a->s : "", a->len) || !str_catc(&q->envelope, 0))
    return &resp_oom;
  return 0;
}

static const response* qq_sender(str* a, str* p)
{
  struct qq* q = plugin_context(&backend);
  (void)p;
  if (q) q->envelope.len = 0;
  return add_addr(q, 'F', a);
}

static const response* qq_recipient(str* a, str* p) { (void)p; return add_addr(plugin_context(&backend), 'T', a); }

/* Start qmail-queue with msgin on its fd 0 and the envelope pipe on fd 1,
 * in $QMAILHOME (entered by the child). */
static const response* start(struct qq* q, int msgin, int envout_read)
{
  const char* home = session_getenv("QMAILHOME");
  if (!home) home = QMAIL_HOME;
  int dir = open(home, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return &resp_no_chdir;
  q->pid = fork();
  if (q->pid < 0) { close(dir); return &resp_no_fork; }
  if (q->pid == 0) {
    const char* prog = session_getenv("QMAILQUEUE");
    if (!prog || !*prog) prog = "bin/qmail-queue";
    if (fchdir(dir) < 0) _exit(61);
    if (!session_exportenv()) _exit(51);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, 0);
    signal(SIGPIPE, SIG_DFL);
    if (dup2(msgin, 0) < 0 || dup2(envout_read, 1) < 0) _exit(120);
    if (msgin != 0) close(msgin);
    if (envout_read != 1) close(envout_read);
    char* argv[2] = { (char*)prog, 0 };
    execvp(prog, argv);
    _exit(120);
  }
  close(dir);
  return 0;
}

/* A pipe whose write end (ours) does not block: writes wait with a
 * deadline in fd_write_deadline instead. */
static int pipe_cloexec(int p[2])
{
  if (pipe2(p, O_CLOEXEC) < 0) return -1;
  int fl = fcntl(p[1], F_GETFL);
  if (fl < 0 || fcntl(p[1], F_SETFL, fl | O_NONBLOCK) < 0) { close(p[0]); close(p[1]); return -1; }
  return 0;
}

/* The deadline of one write to qmail-queue. */
static long long write_deadline(void)
{
  const struct env_number spec = { QQ_TIMEOUT_DFLT, 1, 100000000, 1 };
  unsigned long secs = env_number_parse(session_getenv("QMAILQUEUE_TIMEOUT"), &spec);
  return secs ? clock_mono_ms() + (long long)secs * 1000 : 0;
}

static const response* qq_data_start(int fd)
{
  struct qq* q = plugin_context(&backend);
  int env[2], msg[2];
  const response* r;
  if (!q) return &resp_internal;
  q->bytes = 0;
  q->write_failed = 0;
  if (fd >= 0) return 0;      /* with a temp file, start at message end */
  if (pipe_cloexec(env) < 0) return &resp_no_pipe;
  if (pipe_cloexec(msg) < 0) { close(env[0]); close(env[1]); return &resp_no_pipe; }
  r = start(q, msg[0], env[0]);
  close(msg[0]);
  close(env[0]);
  if (r) { close(msg[1]); close(env[1]); return r; }
  q->msgfd = msg[1];
  q->envfd = env[1];
  return 0;
}

static const response* qq_data_block(const char* bytes, unsigned long len)
{
  struct qq* q = plugin_context(&backend);
  if (!q || q->msgfd < 0 || q->write_failed) return 0;
  if (fd_write_deadline(q->msgfd, bytes, len, write_deadline()) < 0) q->write_failed = 1;
  else q->bytes += len;
  return 0;
}

static const response* status_reply(struct qq* q, int status)
{
  const char* text = 0;
  char var[32];
  unsigned code = (status >= 11 && status <= 40) ? 554 : 451;
  snprintf(var, sizeof var, "QQERRMSG_%d", status);
  text = session_getenv(var);
  for (size_t i = 0; !text && i < sizeof status_texts / sizeof status_texts[0]; i++)
    if (status_texts[i].status == status) text = status_texts[i].text;
  if (!text) text = code == 554 ? "5.3.0 Message rejected by qmail-queue." : "4.3.0 Temporary qmail-queue failure.";
  q->text.len = 0;
  if (!str_copys(&q->text, text)) return &resp_oom;
  q->reply.number = code;
  q->reply.message = q->text.s;
  return &q->reply;
}

static const response* qq_message_end(int fd)
{
  struct qq* q = plugin_context(&backend);
  if (!q) return &resp_internal;
  long long deadline = write_deadline();
  if (fd >= 0) {
    int env[2];
    struct stat s;
    if (lseek(fd, 0, SEEK_SET) != 0 || fstat(fd, &s) < 0) return &resp_internal;
    q->bytes = (unsigned long long)s.st_size;
    if (pipe_cloexec(env) < 0) return &resp_no_pipe;
    const response* r = start(q, fd, env[0]);
    close(env[0]);
    if (r) { close(env[1]); return r; }
    q->envfd = env[1];
  }
  close_fd(&q->msgfd);
  int wr = q->envfd < 0 ? -1 : fd_write_deadline(q->envfd, q->envelope.s ? q->envelope.s : "", q->envelope.len, deadline);
  if (wr == 0) wr = fd_write_deadline(q->envfd, "", 1, deadline);
  close_fd(&q->envfd);
  int timed_out;
  pid_t pid = q->pid;
  int st = wait_child(pid, deadline, &timed_out);
  q->pid = -1;
  if (timed_out) return &resp_timed_out;
  if (st < 0 || !WIFEXITED(st)) return &resp_crashed;
  if (WEXITSTATUS(st) != 0) return status_reply(q, WEXITSTATUS(st));
  if (wr < 0) return &resp_write_failed;
  char num[96];
  snprintf(num, sizeof num, "2.6.0 Accepted message qp %ld bytes %llu", (long)pid, q->bytes);
  q->text.len = 0;
  if (!str_copys(&q->text, num)) return &resp_oom;
  msg1(num);
  q->reply.number = 250;
  q->reply.message = q->text.s;
  return &q->reply;
}

/* The --check hook (core/check.c): one line per problem, one reply for all. */
static RESPONSE(check_failed, 451, "4.3.0 The qmail back end's configuration has problems (see above).");
static const char* const check_numbers[] = { "QMAILQUEUE_TIMEOUT", 0 };
const response* mailfront_check(void);
const response* mailfront_check(void)
{
  struct confcheck c = { "backend qmail", session_getenv, 0 };
  const char* home = session_getenv("QMAILHOME");
  if (!home) home = QMAIL_HOME;
  const char* prog = session_getenv("QMAILQUEUE");
  if (!prog || !*prog) prog = "bin/qmail-queue";
  if (confcheck_dir(&c, "$QMAILHOME", home, 0) == 0)
    confcheck_program(&c, "$QMAILQUEUE", prog, home, 1);
  confcheck_numbers(&c, check_numbers);
  return c.problems ? &resp_check_failed : 0;
}

struct plugin backend = {
  .version = PLUGIN_VERSION_4,
  .reset = qq_reset,
  .sender = qq_sender,
  .recipient = qq_recipient,
  .data_start = qq_data_start,
  .data_block = qq_data_block,
  .message_end = qq_message_end,
  .session_open = qq_open,
  .session_close = qq_close,
};

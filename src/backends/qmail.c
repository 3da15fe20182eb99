/* backend-qmail -- hands each message to qmail-queue (backends.md "qmail").
 *
 * The message goes to qmail-queue's fd 0 (a pipe, or the temp file when one
 * exists), the envelope `Fsender\0Trcpt\0...\0` to its fd 1.  qmail-queue is
 * $QMAILQUEUE (default bin/qmail-queue), run from $QMAILHOME with the
 * session environment applied.  Its exit status maps to the reply table of
 * the spec; $QQERRMSG_N overrides a text.  SIGPIPE is blocked while the
 * child runs so a dying qmail-queue shows as a status, not as our death. */
#include <mailfront/mailfront.h>
#include "lib/fdio.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

RESPONSE(no_chdir, 451, "4.3.0 Could not change to the qmail directory.");
RESPONSE(no_fork, 451, "4.3.0 Could not start qmail-queue.");
RESPONSE(no_pipe, 451, "4.3.0 Could not open pipe to qmail-queue.");
RESPONSE(write_failed, 451, "4.3.0 Writing data to qmail-queue failed.");
RESPONSE(crashed, 451, "4.3.0 qmail-queue crashed.");

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
static struct qq q = { {0,0,0}, -1, -1, -1, 0, 0, {0,0,0}, {0, 0} };

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

static void reap(void)
{
  if (q.pid > 0) {
    int st;
    while (waitpid(q.pid, &st, 0) < 0 && errno == EINTR) {}
  }
  q.pid = -1;
}

static const response* qq_reset(void)
{
  close_fd(&q.msgfd);
  close_fd(&q.envfd);
  reap();
  q.envelope.len = 0;
  q.bytes = 0;
  q.write_failed = 0;
  return 0;
}

static const response* add_addr(char kind, const str* a)
{
  if (!str_catc(&q.envelope, kind) || !str_catb(&q.envelope, a->s ? a->s : "", a->len) || !str_catc(&q.envelope, 0))
    return &resp_oom;
  return 0;
}

static const response* qq_sender(str* a, str* p) { (void)p; q.envelope.len = 0; return add_addr('F', a); }
static const response* qq_recipient(str* a, str* p) { (void)p; return add_addr('T', a); }

/* Start qmail-queue with msgin on its fd 0 and the envelope pipe on fd 1. */
static const response* start(int msgin, int envout_read)
{
  const char* home = session_getenv("QMAILHOME");
  if (!home) home = QMAIL_HOME;
  if (chdir(home) < 0) return &resp_no_chdir;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  sigprocmask(SIG_BLOCK, &set, 0);
  q.pid = fork();
  if (q.pid < 0) return &resp_no_fork;
  if (q.pid == 0) {
    const char* prog = session_getenv("QMAILQUEUE");
    if (!prog || !*prog) prog = "bin/qmail-queue";
    if (!session_exportenv()) _exit(51);
    signal(SIGPIPE, SIG_DFL);
    if (dup2(msgin, 0) < 0 || dup2(envout_read, 1) < 0) _exit(120);
    if (msgin != 0) close(msgin);
    if (envout_read != 1) close(envout_read);
    char* argv[2] = { (char*)prog, 0 };
    execvp(prog, argv);
    _exit(120);
  }
  return 0;
}

static int pipe_cloexec(int p[2]) { return pipe2(p, O_CLOEXEC); }

static const response* qq_data_start(int fd)
{
  int env[2], msg[2];
  const response* r;
  q.bytes = 0;
  q.write_failed = 0;
  if (fd >= 0) return 0;      /* with a temp file, start at message end */
  if (pipe_cloexec(env) < 0) return &resp_no_pipe;
  if (pipe_cloexec(msg) < 0) { close(env[0]); close(env[1]); return &resp_no_pipe; }
  r = start(msg[0], env[0]);
  close(msg[0]);
  close(env[0]);
  if (r) { close(msg[1]); close(env[1]); return r; }
  q.msgfd = msg[1];
  q.envfd = env[1];
  return 0;
}

static const response* qq_data_block(const char* bytes, unsigned long len)
{
  if (q.msgfd < 0 || q.write_failed) return 0;
  if (fd_write_all(q.msgfd, bytes, len) < 0) q.write_failed = 1;
  else q.bytes += len;
  return 0;
}

static const response* status_reply(int status)
{
  const char* text = 0;
  char var[32];
  unsigned code = (status >= 11 && status <= 40) ? 554 : 451;
  snprintf(var, sizeof var, "QQERRMSG_%d", status);
  text = session_getenv(var);
  for (size_t i = 0; !text && i < sizeof status_texts / sizeof status_texts[0]; i++)
    if (status_texts[i].status == status) text = status_texts[i].text;
  if (!text) text = code == 554 ? "5.3.0 Message rejected by qmail-queue." : "4.3.0 Temporary qmail-queue failure.";
  q.text.len = 0;
  if (!str_copys(&q.text, text)) return &resp_oom;
  q.reply.number = code;
  q.reply.message = q.text.s;
  return &q.reply;
}

static const response* qq_message_end(int fd)
{
  if (fd >= 0) {
    int env[2];
    struct stat s;
    if (lseek(fd, 0, SEEK_SET) != 0 || fstat(fd, &s) < 0) return &resp_internal;
    q.bytes = (unsigned long long)s.st_size;
    if (pipe_cloexec(env) < 0) return &resp_no_pipe;
    const response* r = start(fd, env[0]);
    close(env[0]);
    if (r) { close(env[1]); return r; }
    q.envfd = env[1];
  }
  close_fd(&q.msgfd);
  int wr = q.envfd < 0 ? -1 : fd_write_all(q.envfd, q.envelope.s ? q.envelope.s : "", q.envelope.len);
  if (wr == 0) wr = fd_write_all(q.envfd, "", 1);
  close_fd(&q.envfd);
  int st;
  pid_t w;
  while ((w = waitpid(q.pid, &st, 0)) < 0 && errno == EINTR) {}
  q.pid = -1;
  if (w < 0 || !WIFEXITED(st)) return &resp_crashed;
  if (WEXITSTATUS(st) != 0) return status_reply(WEXITSTATUS(st));
  if (wr < 0) return &resp_write_failed;
  char num[96];
  snprintf(num, sizeof num, "2.6.0 Accepted message qp %ld bytes %llu", (long)w, q.bytes);
  q.text.len = 0;
  if (!str_copys(&q.text, num)) return &resp_oom;
  msg1(num);
  q.reply.number = 250;
  q.reply.message = q.text.s;
  return &q.reply;
}

struct plugin backend = {
  .version = PLUGIN_VERSION,
  .reset = qq_reset,
  .sender = qq_sender,
  .recipient = qq_recipient,
  .data_start = qq_data_start,
  .data_block = qq_data_block,
  .message_end = qq_message_end,
};

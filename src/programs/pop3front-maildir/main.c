/* main.c -- pop3front-maildir: POP3 (RFC 1939, CAPA from RFC 2449) for one
 * maildir, normally exec'd by pop3front-auth.  Usage:
 *   pop3front-maildir [DEFAULT-MAILDIR]       ($MAILBOX wins when set)
 *
 * One struct pop3_session holds everything of the connection: the buffered
 * client streams (fd 0/1, $TIMEOUT per read/write, $SESSION_TIMEOUT as a
 * deadline), the scanned message list and scratch buffers.  Commands are
 * dispatched through commands[]; handlers reply through reply()/status
 * helpers and return; only QUIT or a fatal error sets `done`.  Nothing
 * below main exits.  The maildir is changed only by QUIT (maildir_commit);
 * end of input, a timeout or a killed process leave it exactly as it was.
 *
 * Replies and command log lines are POP3's (src/pop3/pop3reply.h, shared
 * with pop3front-auth; docs/logging.md); a PASS or AUTH sent here is
 * logged masked as there.  Behaviour: man/pop3front-maildir.8.scd; beyond
 * the original: a final line without LF is processed intact, command lines
 * are bounded ($MAX_LINE_LENGTH, default 4096 bytes including CR LF;
 * longer ones are read to their end and answered `-ERR Line too long`),
 * messages are streamed, messages whose stat failed are never unlinked
 * (the reference removes them at QUIT), a message that could not be opened
 * is not marked read, STAT's octet sum saturates instead of wrapping, and
 * a read error in the middle of a message drops the connection without the
 * terminating "." (the client must not take a truncated message for a
 * whole one). */
#include "auth/check.h"
#include "command.h"
#include "maildir.h"
#include "transmit.h"
#include "lib/clock.h"
#include "lib/linein.h"
#include "lib/log.h"
#include "lib/progenv.h"
#include "pop3/pop3reply.h"
#include <mailfront/iobuf.h>
#include <mailfront/str.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_TIMEOUT 1200
#define DEFAULT_SESSION_TIMEOUT 86400
#define MAX_TIMEOUT 2000000UL           /* seconds; keeps ms in an unsigned */
#define MAX_SESSION_TIMEOUT 315360000UL /* ten years */
#define DEFAULT_MAX_LINE 4096
#define FILE_BUFSIZE 65536
#define IN_BUFSIZE 16384
#define OUT_BUFSIZE 65536
#define LOG_LINE_MAX 256

struct pop3_session
{
  ibuf in;
  obuf out;
  long long deadline_ms;        /* end of $SESSION_TIMEOUT (CLOCK_MONOTONIC) */
  struct maildir md;
  struct scan_limits limits;
  unsigned long max_line;
  str line;                     /* the current command line */
  str reply;                    /* status line being built */
  str path;                     /* scratch: path of a message file */
  char* filebuf;                /* RETR/TOP read buffer */
  int done;                     /* end the session after this command */
  int status;                   /* exit status once done */
};

static const char ERR_RANGE[] = "-ERR Message number out of range";
static const char ERR_DELETED[] = "-ERR Message was deleted";
static const char ERR_OPEN[] = "-ERR Could not open that message";

static int session_expired(const struct pop3_session* s)
{
  return s->deadline_ms > 0 && clock_mono_ms() >= s->deadline_ms;
}

/* ---- replies ---------------------------------------------------------- */

static void reply(struct pop3_session* s, const char* text) { pop3_reply(&s->out, text); }

/* "+OK A" (two = 0) or "+OK A B" (two = 1). */
static void reply_ok_nums(struct pop3_session* s, unsigned long a, int two, unsigned long b)
{
  str* r = &s->reply;
  int ok = str_copys(r, POP3_OK) && str_catu(r, a);
  if (two) ok = ok && str_catc(r, ' ') && str_catu(r, b);
  if (!ok) { reply(s, POP3_ERR_INTERNAL); return; }
  pop3_status(&s->out, r->s, r->len);
}

/* ---- message lookup --------------------------------------------------- */

static const char* arg_error(enum pop3_arg r)
{
  static const char* const texts[] = { [ARG_OK] = 0, [ARG_SYNTAX] = POP3_ERR_SYNTAX, [ARG_RANGE] = ERR_RANGE };
  return texts[r];
}

static int msg_gone(const struct msg* m) { return (m->flags & (MSG_DELETED | MSG_HIDDEN)) != 0; }

/* Message n of a checked argument, or 0 after replying with the error. */
static struct msg* lookup(struct pop3_session* s, enum pop3_arg r, unsigned long n)
{
  if (r != ARG_OK) { reply(s, arg_error(r)); return 0; }
  struct msg* m = &s->md.msgs[n - 1];
  if (msg_gone(m)) { reply(s, ERR_DELETED); return 0; }
  return m;
}

static struct msg* lookup_arg(struct pop3_session* s, const char* arg, size_t len)
{
  unsigned long n = 0;
  enum pop3_arg r = pop3_msgnum(arg, len, s->md.count, &n);
  return lookup(s, r, n);
}

/* ---- commands --------------------------------------------------------- */

typedef void handler(struct pop3_session* s, const char* arg, size_t len);

static void cmd_capa(struct pop3_session* s, const char* arg, size_t len)
{
  (void)arg; (void)len;
  pop3_capa(&s->out, 0, 1, 0);
}

static void cmd_stat(struct pop3_session* s, const char* arg, size_t len)
{
  unsigned long count = 0, octets = 0;
  (void)arg; (void)len;
  for (unsigned long i = 0; i < s->md.count; i++) {
    const struct msg* m = &s->md.msgs[i];
    if (m->flags & MSG_DELETED) continue;
    count++;
    if (m->flags & MSG_HIDDEN) continue;
    octets = m->size > ULONG_MAX - octets ? ULONG_MAX : octets + m->size;
  }
  reply_ok_nums(s, count, 1, octets);
}

/* LIST and UIDL: one message, or every message that is not gone. */
static void list_line(struct pop3_session* s, unsigned long n, const struct msg* m, int uid, int status)
{
  str* r = &s->reply;
  int ok = str_copys(r, status ? "+OK " : "") && str_catu(r, n) && str_catc(r, ' ')
    && (uid ? str_catb(r, m->name, m->uidlen) : str_catu(r, m->size));
  if (!ok) { if (status) reply(s, POP3_ERR_INTERNAL); return; }
  if (status) pop3_status(&s->out, r->s, r->len);
  else pop3_line(&s->out, r->s, r->len);
}

static void list_common(struct pop3_session* s, const char* arg, size_t len, int uid)
{
  if (len > 0) {
    const struct msg* m = lookup_arg(s, arg, len);
    if (m) list_line(s, (unsigned long)(m - s->md.msgs) + 1, m, uid, 1);
    return;
  }
  reply(s, POP3_OK);
  for (unsigned long i = 0; i < s->md.count; i++)
    if (!msg_gone(&s->md.msgs[i])) list_line(s, i + 1, &s->md.msgs[i], uid, 0);
  reply(s, ".");
}

static void cmd_list(struct pop3_session* s, const char* arg, size_t len) { list_common(s, arg, len, 0); }
static void cmd_uidl(struct pop3_session* s, const char* arg, size_t len) { list_common(s, arg, len, 1); }

static void cmd_dele(struct pop3_session* s, const char* arg, size_t len)
{
  struct msg* m = lookup_arg(s, arg, len);
  if (!m) return;
  m->flags |= MSG_DELETED;
  reply(s, POP3_OK);
}

/* RETR n [k] and TOP n [k]: without k the whole message, marked read. */
static void cmd_retr(struct pop3_session* s, const char* arg, size_t len)
{
  unsigned long n = 0, lines = 0;
  const char* rest;
  size_t restlen;
  int limited;
  enum pop3_arg a = pop3_retr_msgnum(arg, len, s->md.count, &n, &rest, &restlen);
  struct msg* m = lookup(s, a, n);
  if (!m) return;
  if (pop3_lines(rest, restlen, &limited, &lines) != ARG_OK) { reply(s, POP3_ERR_SYNTAX); return; }
  if (!maildir_path(&s->path, m)) { reply(s, POP3_ERR_INTERNAL); return; }
  int fd = open(s->path.s, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
    if (fd >= 0) close(fd);
    reply(s, ERR_OPEN);
    return;
  }
  struct msg_encoder e;
  encoder_init(&e, limited, lines);
  reply(s, POP3_OK);
  int r = encoder_send_fd(&e, fd, s->filebuf, FILE_BUFSIZE, &s->out);
  int saved = errno;
  close(fd);
  if (r == -2) {
    /* Never end a truncated message with ".": drop the connection. */
    log_parts(LOG_ERR, "Could not read ", s->path.s, ": ", strerror(saved));
    s->done = 1;
    s->status = 1;
    return;
  }
  if (r < 0) return;                    /* output failed: the session ends */
  pop3_log_status(".", 1);
  if (!limited) m->flags |= MSG_READ;
}

static void cmd_last(struct pop3_session* s, const char* arg, size_t len)
{
  unsigned long last = 0;
  (void)arg; (void)len;
  for (unsigned long i = 0; i < s->md.count; i++)
    if (s->md.msgs[i].flags & MSG_READ) last = i + 1;
  reply_ok_nums(s, last, 0, 0);
}

static void cmd_noop(struct pop3_session* s, const char* arg, size_t len)
{
  (void)arg; (void)len;
  reply(s, POP3_OK);
}

static void cmd_rset(struct pop3_session* s, const char* arg, size_t len)
{
  (void)arg; (void)len;
  if (maildir_scan(&s->md, &s->limits) < 0) {
    reply(s, POP3_ERR_INTERNAL);
    s->done = 1;
    s->status = 1;
    return;
  }
  reply(s, POP3_OK);
}

static void cmd_quit(struct pop3_session* s, const char* arg, size_t len)
{
  (void)arg; (void)len;
  maildir_commit(&s->md);
  reply(s, POP3_OK);
  s->done = 1;
  s->status = 0;
}

static const struct command
{
  const char* name;
  enum pop3_argmode arg;
  handler* fn;
} commands[] = {
  { "CAPA", POP3_TAKES_NONE, cmd_capa },
  { "DELE", POP3_TAKES_REQUIRED, cmd_dele },
  { "LAST", POP3_TAKES_NONE, cmd_last },
  { "LIST", POP3_TAKES_OPTIONAL, cmd_list },
  { "NOOP", POP3_TAKES_NONE, cmd_noop },
  { "QUIT", POP3_TAKES_NONE, cmd_quit },
  { "RETR", POP3_TAKES_REQUIRED, cmd_retr },
  { "RSET", POP3_TAKES_NONE, cmd_rset },
  { "STAT", POP3_TAKES_NONE, cmd_stat },
  { "TOP", POP3_TAKES_REQUIRED, cmd_retr },
  { "UIDL", POP3_TAKES_OPTIONAL, cmd_uidl },
};

static void dispatch(struct pop3_session* s, const struct pop3_cmdline* c)
{
  const struct command* cmd = 0;
  for (size_t i = 0; i < sizeof commands / sizeof *commands && !cmd; i++)
    if (pop3_verb_is(c, commands[i].name)) cmd = &commands[i];
  if (!cmd) reply(s, POP3_ERR_UNIMPL);
  else if (!pop3_arg_fits(cmd->arg, c)) reply(s, POP3_ERR_SYNTAX);
  else cmd->fn(s, c->arg, c->arglen);
}

/* ---- session ---------------------------------------------------------- */

static int session_init(struct pop3_session* s)
{
  memset(s, 0, sizeof *s);
  unsigned long t = mf_env_number("TIMEOUT", MAX_TIMEOUT);
  unsigned long st = mf_env_number("SESSION_TIMEOUT", MAX_SESSION_TIMEOUT);
  s->max_line = mf_env_number("MAX_LINE_LENGTH", 1UL << 30);
  if (!s->max_line) s->max_line = DEFAULT_MAX_LINE;
  s->limits.max_total = mf_env_number("MAX_MESSAGES", ULONG_MAX / 10);
  s->limits.max_cur = mf_env_number("MAX_CUR_MESSAGES", ULONG_MAX / 10);
  s->limits.max_new = mf_env_number("MAX_NEW_MESSAGES", ULONG_MAX / 10);
  if (ibuf_init(&s->in, 0, IN_BUFSIZE) < 0 || obuf_init(&s->out, 1, OUT_BUFSIZE) < 0
      || !(s->filebuf = malloc(FILE_BUFSIZE)))
    return -1;
  s->in.timeout_ms = s->out.timeout_ms = (unsigned)((t ? t : DEFAULT_TIMEOUT) * 1000);
  s->deadline_ms = clock_mono_ms() + (long long)(st ? st : DEFAULT_SESSION_TIMEOUT) * 1000;
  s->in.deadline_ms = s->out.deadline_ms = &s->deadline_ms;
  s->in.tie = &s->out;
  return 0;
}

static void session_free(struct pop3_session* s)
{
  ibuf_close(&s->in);
  obuf_close(&s->out);
  maildir_free(&s->md);
  str_free(&s->line);
  str_free(&s->reply);
  str_free(&s->path);
  free(s->filebuf);
}

/* Read and answer commands until QUIT, end of input, timeout or failure.
 * Replies are flushed whenever the input buffer must wait for the client
 * (the ibuf is tied to the obuf), so pipelined commands are answered in
 * one write. */
static int session_run(struct pop3_session* s)
{
  while (!s->done && !s->out.error && !s->out.timedout) {
    int toolong;
    size_t len;
    int r = line_read(&s->in, &s->line, s->max_line, &len, &toolong);
    if (r == 0) return 0;
    if (r < 0) {
      if (s->in.timedout && !session_expired(s)) reply(s, POP3_ERR_TIMEOUT);
      return 0;
    }
    if (toolong && len > LOG_LINE_MAX) len = LOG_LINE_MAX;   /* logged, not run */
    struct pop3_cmdline c;
    pop3_split(s->line.s, len, &c);
    pop3_log_command(&c, s->line.s, len, 0);
    if (toolong) reply(s, POP3_ERR_TOOLONG);
    else dispatch(s, &c);
  }
  if (s->done) return s->status;
  /* Output failed: a session deadline is a normal end, anything else not. */
  return s->out.timedout && session_expired(s) ? 0 : 1;
}

int main(int argc, char** argv)
{
  struct pop3_session s;
  log_program("pop3front-maildir");
  if (argc > 1 && strcmp(argv[1], "--check") == 0) return pop3front_maildir_check(argc - 1, argv + 1);
  signal(SIGPIPE, SIG_IGN);
  if (argc > 2) {
    msg1("usage: pop3front-maildir [default-maildir]");
    return 0;
  }
  const char* maildir = getenv("MAILBOX");
  if (!maildir) maildir = argc > 1 ? argv[1] : 0;
  if (!maildir) {
    log_parts(LOG_ERR, "Mailbox not specified", 0, 0, 0);
    return 0;
  }
  if (session_init(&s) < 0) {
    log_parts(LOG_FATAL, "Out of memory", 0, 0, 0);
    session_free(&s);
    return 111;
  }
  log_session_begin_env();
  int status = 0;
  if (chdir(maildir) < 0)
    reply(&s, "-ERR Could not chdir to maildir");
  else if (maildir_scan(&s.md, &s.limits) < 0)
    reply(&s, "-ERR Could not access maildir");
  else {
    reply(&s, POP3_OK);
    status = session_run(&s);
    obuf_flush(&s.out);
    log_session_end(status, s.in.count, s.out.count, 1);
    session_free(&s);
    return status;
  }
  obuf_flush(&s.out);
  log_session_end(status, s.in.count, s.out.count, 0);
  session_free(&s);
  return status;
}

/* backend-queuedir -- writes each message into a queue directory through
 * the core's queuedir writer with the variable prefix QUEUEDIR
 * (backends.md "queuedir": $QUEUEDIR, $QUEUEDIR_TMP, $QUEUEDIR_DEST,
 * $QUEUEDIR_NOSYNC, $QUEUEDIR_TMP_MAXAGE, $QUEUEDIR_TMP_SWEEP).  A message
 * is accepted only once it is fsynced and linked into the destination
 * directory.  One writer per session, the back end's version-4 context
 * (opened and closed by the core).  The load hook (once per process:
 * mailfrontd's start, every connection of tcpserver mode) sweeps the
 * temporary files killed writers left (queuedir_sweep, rate-limited).
 * `mailfront --check` calls mailfront_check: $QUEUEDIR is set, its
 * temporary and destination directories exist, are writable and are on
 * one file system (a message is hard-linked from one to the other). */
#include <mailfront/mailfront.h>
#include "lib/confcheck.h"
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

extern struct plugin backend;

static const response* qd_open(void** ctx)
{
  *ctx = queuedir_open("QUEUEDIR");
  return *ctx ? 0 : &resp_oom;
}

static void qd_close(void* ctx) { queuedir_close(ctx); }

static const response* qd_load(void)
{
  (void)queuedir_sweep("QUEUEDIR");
  return 0;
}

static struct queuedir* qd(void) { return plugin_context(&backend); }

static const response* qd_reset(void) { return queuedir_reset(qd()); }
static const response* qd_sender(str* a, str* p) { return queuedir_sender(qd(), a, p); }
static const response* qd_recipient(str* a, str* p) { return queuedir_recipient(qd(), a, p); }
static const response* qd_data_start(int fd) { return queuedir_data_start(qd(), fd); }
static const response* qd_data_block(const char* b, unsigned long n) { return queuedir_data_block(qd(), b, n); }
static const response* qd_message_end(int fd) { return queuedir_message_end(qd(), fd); }

/* $QUEUEDIR/SUB, where SUB is $VAR or DFLT; NULL when memory is short. */
static char* subdir(const char* top, const char* var, const char* dflt)
{
  const char* sub = session_getenv(var);
  if (!sub) sub = dflt;
  size_t n = strlen(top) + strlen(sub) + 2;
  char* p = malloc(n);
  if (p) { strcpy(p, top); strcat(p, "/"); strcat(p, sub); }
  return p;
}

static RESPONSE(check_failed, 451, "4.3.0 The queuedir back end's configuration has problems (see above).");
const response* mailfront_check(void);
const response* mailfront_check(void)
{
  struct confcheck c = { "backend queuedir", session_getenv, 0 };
  const char* top = session_getenv("QUEUEDIR");
  if (!top || !*top) confcheck_problem(&c, "$QUEUEDIR", "not set");
  else if (confcheck_dir(&c, "$QUEUEDIR", top, 0) == 0) {
    char* tmp = subdir(top, "QUEUEDIR_TMP", "tmp");
    char* dest = subdir(top, "QUEUEDIR_DEST", "new");
    struct stat a, b;
    if (!tmp || !dest) confcheck_problem(&c, "$QUEUEDIR", "out of memory");
    else if (confcheck_dir(&c, "temporary directory", tmp, 1) == 0
             && confcheck_dir(&c, "destination directory", dest, 1) == 0
             && stat(tmp, &a) == 0 && stat(dest, &b) == 0 && a.st_dev != b.st_dev)
      confcheck_problem(&c, dest, "not on the file system of the temporary directory (messages are hard-linked)");
    free(tmp);
    free(dest);
  }
  return c.problems ? &resp_check_failed : 0;
}

struct plugin backend = {
  .version = PLUGIN_VERSION_4,
  .reset = qd_reset,
  .sender = qd_sender,
  .recipient = qd_recipient,
  .data_start = qd_data_start,
  .data_block = qd_data_block,
  .message_end = qd_message_end,
  .load = qd_load,
  .session_open = qd_open,
  .session_close = qd_close,
};

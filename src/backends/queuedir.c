/* backend-queuedir -- writes each message into a queue directory through
 * the core's queuedir writer with the variable prefix QUEUEDIR
 * (backends.md "queuedir": $QUEUEDIR, $QUEUEDIR_TMP, $QUEUEDIR_DEST,
 * $QUEUEDIR_NOSYNC, $QUEUEDIR_TMP_MAXAGE, $QUEUEDIR_TMP_SWEEP).  A message
 * is accepted only once it is fsynced and linked into the destination
 * directory.  One writer per session, the back end's version-4 context
 * (opened and closed by the core).  The load hook (once per process:
 * mailfrontd's start, every connection of tcpserver mode) sweeps the
 * temporary files killed writers left (queuedir_sweep, rate-limited). */
#include <mailfront/mailfront.h>

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

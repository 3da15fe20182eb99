/* backend-queuedir -- writes each message into a queue directory through
 * the core's queuedir writer with the variable prefix QUEUEDIR
 * (backends.md "queuedir": $QUEUEDIR, $QUEUEDIR_TMP, $QUEUEDIR_DEST,
 * $QUEUEDIR_NOSYNC).  A message is accepted only once it is fsynced and
 * linked into the destination directory. */
#include <mailfront/mailfront.h>

static const response* qd_init(void)
{
  queuedir_init("QUEUEDIR");
  return 0;
}

struct plugin backend = {
  .version = PLUGIN_VERSION,
  .init = qd_init,
  .reset = queuedir_reset,
  .sender = queuedir_sender,
  .recipient = queuedir_recipient,
  .data_start = queuedir_data_start,
  .data_block = queuedir_data_block,
  .message_end = queuedir_message_end,
};

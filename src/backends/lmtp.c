/* backend-lmtp -- relays each message to a next hop over LMTP, before
 * queueing: nothing is acknowledged that the next hop has not taken
 * (docs/relay.md; the shared code is src/backends/relay/). */
#include "backends/relay/hooks.h"

/* `mailfront --check`: the next hops' syntax, socket and CA file. */
const response* mailfront_check(void);
const response* mailfront_check(void) { return relay_check(); }

struct plugin backend = {
  .version = PLUGIN_VERSION,
  .init = relay_init_lmtp,
  .reset = relay_reset,
  .sender = relay_sender,
  .recipient = relay_recipient,
  .data_start = relay_data_start,
  .data_block = relay_data_block,
  .message_end = relay_message_end,
};

/* backend-lmtp -- relays each message to a next hop over LMTP, before
 * queueing: nothing is acknowledged that the next hop has not taken
 * (docs/relay.md; the shared code is src/backends/relay/). */
#include "backends/relay/hooks.h"

/* `mailfront --check`: the next hops' syntax, socket and CA file. */
const response* mailfront_check(void);
const response* mailfront_check(void) { return relay_check(); }

struct plugin backend = RELAY_BACKEND(relay_init_lmtp);

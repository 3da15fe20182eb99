/* backend-smtp -- relays each message to a next hop over SMTP, before
 * queueing: nothing is acknowledged that the next hop has not taken
 * (docs/relay.md; the shared code is src/backends/relay/). */
#include "backends/relay/hooks.h"

struct plugin backend = RELAY_BACKEND(relay_init_smtp);

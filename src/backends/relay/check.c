/* relay/check.c -- the --check hook of the relay back ends (API: hooks.h,
 * relay_check): what relay_config (run by the init hook) does not look at.
 *   - each next hop of $RELAY_HOST is host, host:port, [address] or
 *     [address]:port with a port from 1 to 65535 (names are not resolved:
 *     the check works offline);
 *   - $RELAY_SOCKET is a UNIX socket;
 *   - $RELAY_TLS_CAFILE is a readable file;
 *   - $RELAY_PORT and $RELAY_TIMEOUT are numbers.
 * One line per problem on stderr (lib/confcheck.h), one reply for all. */
#include "backends/relay/hooks.h"
#include "lib/confcheck.h"
#include <stdio.h>
#include <string.h>

static RESPONSE(check_failed, 451, "4.3.0 The relay back end's configuration has problems (see above).");

static const char* const check_numbers[] = { "RELAY_PORT", "RELAY_TIMEOUT", 0 };

const response* relay_check(void)
{
  struct confcheck c = { "backend relay", session_getenv, 0 };
  const char* hosts = session_getenv("RELAY_HOST");
  for (const char* h = hosts ? hosts : ""; *h; ) {
    h += strspn(h, " \t,");
    size_t n = strcspn(h, " \t,");
    if (!n) break;
    const char* why = confcheck_hostport(h, n, 0);
    if (why) {
      c.problems++;
      fprintf(stderr, "%s: $RELAY_HOST next hop '%.*s': %s\n", c.who, (int)n, h, why);
    }
    h += n;
  }
  const char* sock = session_getenv("RELAY_SOCKET");
  if (sock && *sock) confcheck_socket(&c, "$RELAY_SOCKET", sock);
  const char* ca = session_getenv("RELAY_TLS_CAFILE");
  if (ca && *ca) confcheck_file(&c, "$RELAY_TLS_CAFILE", ca);
  confcheck_numbers(&c, check_numbers);
  return c.problems ? &resp_check_failed : 0;
}

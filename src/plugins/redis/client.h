/* redis/client.h -- the small Redis client shared by plugin-greylist and
 * plugin-ratelimit (docs/redis.md).  Built on hiredis; linked into each of
 * those plugins (mk/plugin-greylist.mk), never a plugin of its own.
 *
 * Configuration (read by redis_configure through session_getenv):
 *   $REDIS_PATH      UNIX socket path(s), tried first
 *   $REDIS_HOST      server(s): HOST, HOST:PORT or [IPV6]:PORT, tried in
 *                    order after the sockets (default 127.0.0.1)
 *   $REDIS_PORT      default port (6379)
 *   $REDIS_PASSWORD  AUTH password; $REDIS_USERNAME with it for an ACL user
 *   $REDIS_DB        SELECT index (0)
 *   $REDIS_PREFIX    prefix of every key name ("mailfront:")
 *   $REDIS_TIMEOUT   deadline in seconds for one operation, fractions
 *                    allowed (default 1, at most 60)
 *   $REDIS_FAIL      open | tempfail: what the plugin does without Redis
 *   $REDIS_RETRY     seconds a session waits after a failure before it
 *                    tries Redis again (default 10; 0: at every call)
 * Lists are separated by spaces or commas.
 *
 * One connection per session, opened lazily by the first call.  A call is
 * one script run: EVALSHA, and EVAL when the server answers NOSCRIPT.  Its
 * whole duration (connecting, AUTH/SELECT, the script, trying the next
 * server) is bounded by $REDIS_TIMEOUT.  A server that refuses, fails, or
 * answers READONLY/LOADING/MASTERDOWN (a replica, a starting server) makes
 * the client try the next one.  After a failed call the session treats
 * Redis as down for $REDIS_RETRY seconds: calls in that time fail at once
 * (no second wait), the first call after it tries again.
 *
 * Errors are values: -1 with a one-line reason in r->err (never the
 * password).  Memory: the struct owns its strings and the connection;
 * redis_close releases both.  No state at file scope: one struct redis per
 * session (the plugin's version-4 context), so sessions that run one
 * after another in one process share no connection. */
#ifndef MF_REDIS_CLIENT_H
#define MF_REDIS_CLIENT_H

#include <mailfront/mailfront.h>
#include <stddef.h>

struct redisContext;

struct redis_server
{
  char* host;                /* host name/address, or the socket path */
  int port;                  /* 0: UNIX socket */
};

/* A script: read-only, so that plugins keep theirs as a const static
 * shared by every session (its SHA-1 is computed at each run). */
struct redis_script
{
  const char* text;          /* the Lua source */
};

enum redis_fail { REDIS_FAIL_OPEN, REDIS_FAIL_TEMPFAIL };

struct redis
{
  struct redis_server* servers;
  unsigned nservers;
  str password, username, prefix, err;
  unsigned long db;
  unsigned long timeout_ms;
  enum redis_fail fail;
  struct redisContext* ctx;
  unsigned long retry_ms;    /* $REDIS_RETRY */
  long long down_until;      /* monotonic ms: fail at once until then */
};

#define REDIS_MAXRESULTS 4

/* Read the configuration; -1 with err when a value is invalid. */
int redis_configure(struct redis* r);
/* Run script s with nkeys keys (each prefixed with $REDIS_PREFIX here) and
 * nargs arguments.  The script returns an integer or an array of up to
 * REDIS_MAXRESULTS integers: stored in out[], their count in *nout.
 * 0 on success, -1 (reason in r->err). */
int redis_run(struct redis* r, const struct redis_script* s,
              unsigned nkeys, const str* keys, unsigned nargs, const str* args,
              long long* out, unsigned* nout);
/* Close the connection, free everything; the struct is zeroed. */
void redis_close(struct redis* r);
/* The reply of a plugin when a call failed: NULL (fail open) or a 451;
 * logs one line "WHO: redis error: REASON; failing open|tempfail". */
const response* redis_failed(struct redis* r, const char* who);

/* Helpers for key building: seconds with optional fraction -> ms (0 on a
 * bad value, *ok = 0); exposed for unit tests. */
unsigned long redis_parse_ms(const char* v, int* ok);
/* Append the network of textual IP address ip with the given prefix
 * lengths ("192.0.2.0/24", "2001:db8::/64"); 0 if ip is not an address. */
int redis_cat_network(str* out, const char* ip, unsigned prefix4, unsigned prefix6);
/* The session client's network ($PROTO REMOTEIP) into out (emptied
 * first) as redis_cat_network writes it, the prefix lengths from
 * $name4 / $name6 (lib/setting.h's rule; 0 is a length, larger than
 * 32 / 128 is 32 / 128;
 * defaults dflt4 / dflt6).  1 ok, 0 no client address, -1 an address that
 * cannot be parsed (logged as "PLUGIN: cannot parse client address 'IP',
 * CONSEQUENCE"; out stays empty). */
int redis_client_network(str* out, const char* name4, const char* name6, unsigned dflt4, unsigned dflt6,
                         const char* plugin, const char* consequence);

#endif

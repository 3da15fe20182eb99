/* plugin-greylist -- greylisting on shared Redis state (docs/redis.md).
 *
 * At RCPT the triplet (client network, sender, recipient) is looked up and
 * updated by one Lua script, one round trip: an unknown triplet is
 * recorded and refused with `451 4.7.1`; a retry earlier than
 * $GREYLIST_DELAY (default 300 s) after the first attempt is refused
 * again; a retry after the delay and within $GREYLIST_RETRY_WINDOW (default
 * 86400 s, counted after the delay) passes and the triplet is kept for
 * $GREYLIST_EXPIRE seconds (default 3024000, 35 days) after its last use.
 * A client network with $GREYLIST_AUTO_ALLOW passed triplets (default 5;
 * 0 = off) is allowed without greylisting while it keeps coming back.
 * The client network is $TCPREMOTEIP cut to $GREYLIST_PREFIX4 (24) or
 * $GREYLIST_PREFIX6 (64) bits.  Addresses are compared in lower case.
 * Skipped: relay clients ($RELAYCLIENT set), authenticated sessions,
 * sessions without a client address, $GREYLIST_DISABLE set (a mailrules
 * or per-listener switch).  Time is Redis's (TIME), so every front end
 * agrees.  Without Redis: $REDIS_FAIL (client.h).
 *
 * Version 4 module: safe for many sessions in one process.  State: one
 * struct greylist per session, the version-4 context (session_open
 * allocates it, session_close closes its Redis connection and frees it);
 * settings are read per session and per RCPT; the script is a constant. */
#include "lib/setting.h"
#include <mailfront/mailfront.h>
#include "redis/client.h"
#include <stdlib.h>
#include <string.h>

static RESPONSE(greylisted, 451, "4.7.1 Greylisted, please try again later");
static RESPONSE(config, 451, "4.3.5 Greylisting is misconfigured");

/* KEYS[1] triplet, KEYS[2] client network; ARGV delay, window, expire
 * (seconds), auto-allow count.  Returns {status, seconds left}: status
 * 0 new (refused), 1 too early (refused), 2 passed now, 3 known, 4 client
 * auto-allowed. */
static const struct redis_script triplet_script = { .text =
  "if redis.replicate_commands then pcall(redis.replicate_commands) end\n"
  "local t = redis.call('TIME')\n"
  "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
  "local delay, window = tonumber(ARGV[1]) * 1000, tonumber(ARGV[2])\n"
  "local expire, auto = tonumber(ARGV[3]), tonumber(ARGV[4])\n"
  "if auto > 0 then\n"
  "  local n = tonumber(redis.call('GET', KEYS[2]) or '0')\n"
  "  if n >= auto then redis.call('EXPIRE', KEYS[2], expire) return {4, 0} end\n"
  "end\n"
  "local first = redis.call('GET', KEYS[1])\n"
  "if first == 'pass' then redis.call('EXPIRE', KEYS[1], expire) return {3, 0} end\n"
  "if first and now - tonumber(first) < delay then\n"
  "  return {1, math.ceil((delay - (now - tonumber(first))) / 1000)}\n"
  "end\n"
  "if not first and delay > 0 then\n"
  "  redis.call('SET', KEYS[1], now, 'PX', delay + window * 1000)\n"
  "  return {0, math.ceil(delay / 1000)}\n"
  "end\n"
  "redis.call('SET', KEYS[1], 'pass', 'EX', expire)\n"
  "if auto > 0 then redis.call('INCR', KEYS[2]) redis.call('EXPIRE', KEYS[2], expire) end\n"
  "return {2, 0}\n" };

enum { ST_NEW, ST_EARLY, ST_PASSED, ST_KNOWN, ST_AUTO };

struct greylist
{
  struct redis redis;
  int configured;            /* redis_configure done (and succeeded) */
  str network;               /* "192.0.2.0/24" */
  str sender;                /* lower-cased envelope sender */
  str key[2], arg[4];
};

extern struct plugin plugin;

static const response* gl_open(void** ctx)
{
  *ctx = calloc(1, sizeof(struct greylist));
  return *ctx ? 0 : &resp_oom;
}

static void gl_close(void* ctx)
{
  struct greylist* gl = ctx;
  if (!gl) return;
  redis_close(&gl->redis);
  str_free(&gl->network);
  str_free(&gl->sender);
  for (size_t i = 0; i < sizeof gl->key / sizeof gl->key[0]; i++) str_free(&gl->key[i]);
  for (size_t i = 0; i < sizeof gl->arg / sizeof gl->arg[0]; i++) str_free(&gl->arg[i]);
  free(gl);
}

/* The numeric settings, by lib/setting.h's rule (0 or bad: the default,
 * unless 0 is documented as a value of its own). */
static const struct env_number delay_spec = { 300, 1, 0x7fffffffUL, 1 };          /* 0: off */
static const struct env_number window_spec = { 86400, 1, 0x7fffffffUL, 0 };
static const struct env_number expire_spec = { 35UL * 86400, 1, 0x7fffffffUL, 0 };
static const struct env_number auto_allow_spec = { 5, 1, 0x7fffffffUL, 1 };       /* 0: never */

static int skipped(const struct greylist* gl)
{
  return session_getenv("RELAYCLIENT") != 0 || session_getnum("authenticated", 0) != 0
    || session_getenv("GREYLIST_DISABLE") != 0 || gl->network.len == 0;
}

static const response* gl_init(void)
{
  struct greylist* gl = plugin_context(&plugin);
  if (!gl) return &resp_internal;
  (void)redis_client_network(&gl->network, "GREYLIST_PREFIX4", "GREYLIST_PREFIX6", 24, 64,
                             "greylist", "not greylisting");
  return 0;
}

static const response* gl_sender(str* address, str* params)
{
  (void)params;
  struct greylist* gl = plugin_context(&plugin);
  if (!gl) return &resp_internal;
  if (!str_copy(&gl->sender, address)) return &resp_oom;
  str_lower(&gl->sender);
  return 0;
}

static int set_num(str* s, unsigned long v) { s->len = 0; return str_catu(s, v); }

static const response* gl_recipient(str* address, str* params)
{
  (void)params;
  struct greylist* gl = plugin_context(&plugin);
  if (!gl) return &resp_internal;
  if (skipped(gl)) return 0;
  if (!gl->configured) {
    if (redis_configure(&gl->redis) < 0) {
      warn2("greylist: ", gl->redis.err.s);
      return &resp_config;
    }
    gl->configured = 1;
  }
  str* k = gl->key;
  k[0].len = k[1].len = 0;
  if (!str_cats(&k[0], "gl:t:") || !str_cat(&k[0], &gl->network) || !str_catc(&k[0], '|')
      || !str_cat(&k[0], &gl->sender) || !str_catc(&k[0], '|')) return &resp_oom;
  unsigned rl = k[0].len;
  if (!str_cat(&k[0], address)) return &resp_oom;
  for (unsigned i = rl; i < k[0].len; i++)
    if (k[0].s[i] >= 'A' && k[0].s[i] <= 'Z') k[0].s[i] = (char)(k[0].s[i] - 'A' + 'a');
  if (!str_cats(&k[1], "gl:c:") || !str_cat(&k[1], &gl->network)) return &resp_oom;
  if (!set_num(&gl->arg[0], env_setting("GREYLIST_DELAY", &delay_spec))
      || !set_num(&gl->arg[1], env_setting("GREYLIST_RETRY_WINDOW", &window_spec))
      || !set_num(&gl->arg[2], env_setting("GREYLIST_EXPIRE", &expire_spec))
      || !set_num(&gl->arg[3], env_setting("GREYLIST_AUTO_ALLOW", &auto_allow_spec))) return &resp_oom;
  long long res[REDIS_MAXRESULTS];
  unsigned n;
  if (redis_run(&gl->redis, &triplet_script, 2, gl->key, 4, gl->arg, res, &n) < 0 || n != 2)
    return redis_failed(&gl->redis, "greylist");
  switch (res[0]) {
  case ST_NEW:
  case ST_EARLY:
    return &resp_greylisted;
  default:
    return 0;
  }
}

struct plugin plugin = {
  .version = PLUGIN_VERSION_4,
  .init = gl_init,
  .sender = gl_sender,
  .recipient = gl_recipient,
  .session_open = gl_open,
  .session_close = gl_close,
};

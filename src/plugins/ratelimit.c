/* plugin-ratelimit -- rate limits on shared Redis state (docs/redis.md).
 *
 * Each limit is COUNT/SECONDS (e.g. 100/3600): at most COUNT events in any
 * sliding window of SECONDS, exactly, for every front end using the same
 * Redis.  Limits (a table below): $RATELIMIT_CONN_PER_IP (connections,
 * checked and counted at connect), $RATELIMIT_RCPTS_PER_IP and
 * $RATELIMIT_RCPTS_PER_DOMAIN (recipient domain; checked and counted at
 * RCPT), $RATELIMIT_MSGS_PER_IP, $RATELIMIT_MSGS_PER_SENDER (not for the
 * null sender) and $RATELIMIT_MSGS_PER_USER (authenticated user): checked
 * without counting at MAIL, checked and counted at end of data, so a
 * message counts when it is accepted by every plugin before the back end.
 * Every check of one event is one Lua script run (one round trip): all
 * its limits are checked first and counted only if none is over, so
 * concurrent front ends can neither over-admit nor lose a count.
 * The client is $TCPREMOTEIP cut to $RATELIMIT_PREFIX4 (32) or
 * $RATELIMIT_PREFIX6 (64) bits.  Over a limit: `451 4.7.0` (`421 4.7.0`
 * and the connection closed for connections).  $RATELIMIT_DISABLE set
 * skips every check.  Without Redis: $REDIS_FAIL (client.h).
 *
 * Algorithm: a sliding-window log, one sorted set per key with one member
 * per event scored by Redis's clock (microseconds); members older than the
 * window are trimmed at each check, the key expires after one window.
 *
 * Version 4 module: safe for many sessions in one process.  State: one
 * struct ratelimit per session, the version-4 context (session_open
 * allocates it, session_close closes its Redis connection and frees it);
 * limits are read per session at each event; the script is a constant. */
#include <mailfront/mailfront.h>
#include "redis/client.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static RESPONSE(config, 451, "4.3.5 Rate limiting is misconfigured");

#define MAX_COUNT 1000000UL
#define MAX_SECONDS (366UL * 86400)

/* KEYS: the limited keys; ARGV[1] "1" to count, "0" to check only;
 * ARGV[2] a member suffix unique to this front end and event; then per key
 * COUNT and SECONDS.  Returns {0, 0} when within every limit, else {i, s}:
 * key i is full for about s more seconds (nothing counted). */
static const struct redis_script window_script = { .text =
  "if redis.replicate_commands then pcall(redis.replicate_commands) end\n"
  "local t = redis.call('TIME')\n"
  "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
  "for i, k in ipairs(KEYS) do\n"
  "  local limit, win = tonumber(ARGV[2 * i + 1]), tonumber(ARGV[2 * i + 2]) * 1000000\n"
  "  redis.call('ZREMRANGEBYSCORE', k, '-inf', now - win)\n"
  "  if redis.call('ZCARD', k) >= limit then\n"
  "    local o = redis.call('ZRANGE', k, 0, 0, 'WITHSCORES')\n"
  "    local wait = 1\n"
  "    if o[2] then wait = math.max(1, math.ceil((tonumber(o[2]) + win - now) / 1000000)) end\n"
  "    return {i, wait}\n"
  "  end\n"
  "end\n"
  "if ARGV[1] == '1' then\n"
  "  local member = t[1] .. '.' .. t[2] .. ':' .. ARGV[2]\n"
  "  for i, k in ipairs(KEYS) do\n"
  "    redis.call('ZADD', k, now, member)\n"
  "    redis.call('EXPIRE', k, tonumber(ARGV[2 * i + 2]))\n"
  "  end\n"
  "end\n"
  "return {0, 0}\n" };

enum event { EV_CONN, EV_MSG, EV_RCPT };
enum subject { SUB_IP, SUB_SENDER, SUB_USER, SUB_DOMAIN };

struct limit_def
{
  const char* var;           /* COUNT/SECONDS */
  const char* tag;           /* key part and reply text */
  enum event ev;
  enum subject sub;
};

static const struct limit_def limits[] = {
  { "RATELIMIT_CONN_PER_IP", "conn-ip", EV_CONN, SUB_IP },
  { "RATELIMIT_MSGS_PER_IP", "msgs-ip", EV_MSG, SUB_IP },
  { "RATELIMIT_RCPTS_PER_IP", "rcpts-ip", EV_RCPT, SUB_IP },
  { "RATELIMIT_MSGS_PER_SENDER", "msgs-sender", EV_MSG, SUB_SENDER },
  { "RATELIMIT_MSGS_PER_USER", "msgs-user", EV_MSG, SUB_USER },
  { "RATELIMIT_RCPTS_PER_DOMAIN", "rcpts-domain", EV_RCPT, SUB_DOMAIN },
};
#define NLIMITS (sizeof limits / sizeof limits[0])

/* Reply texts by event. */
static const char* const over_text[] = {
  [EV_CONN] = "4.7.0 Too many connections from your network (",
  [EV_MSG] = "4.7.0 Message rate limit exceeded (",
  [EV_RCPT] = "4.7.0 Recipient rate limit exceeded (",
};

struct ratelimit
{
  struct redis redis;
  int configured;
  str network;               /* client network, "" when unknown */
  str sender;                /* lower-cased, "" for the null sender */
  str domain;                /* recipient domain of the current RCPT */
  str user;                  /* authenticated user, "" when none */
  str keys[NLIMITS], args[2 + 2 * NLIMITS];
  unsigned which[NLIMITS];   /* limits index of each key */
  unsigned long opened;      /* session start (monotonic ns): with the pid and */
  unsigned long seq;         /* the events of this session, a unique member */
  str text;
  response over;
};

extern struct plugin plugin;

static const response* rl_open(void** ctx)
{
  struct ratelimit* rl = calloc(1, sizeof *rl);
  *ctx = rl;
  if (!rl) return &resp_oom;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  rl->opened = (unsigned long)ts.tv_sec * 1000000000UL + (unsigned long)ts.tv_nsec;
  return 0;
}

static void rl_close(void* ctx)
{
  struct ratelimit* rl = ctx;
  if (!rl) return;
  redis_close(&rl->redis);
  str* const owned[] = { &rl->network, &rl->sender, &rl->domain, &rl->user, &rl->text };
  for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++) str_free(owned[i]);
  for (size_t i = 0; i < NLIMITS; i++) str_free(&rl->keys[i]);
  for (size_t i = 0; i < sizeof rl->args / sizeof rl->args[0]; i++) str_free(&rl->args[i]);
  free(rl);
}

/* Parse COUNT/SECONDS; 0 when unset, 1 when valid, -1 when invalid. */
int ratelimit_parse(const char* v, unsigned long* count, unsigned long* seconds);
int ratelimit_parse(const char* v, unsigned long* count, unsigned long* seconds)
{
  if (!v || !*v) return 0;
  char* end;
  if (*v < '0' || *v > '9') return -1;
  *count = strtoul(v, &end, 10);
  if (*end != '/' || end[1] < '0' || end[1] > '9') return -1;
  *seconds = strtoul(end + 1, &end, 10);
  if (*end || *count == 0 || *count > MAX_COUNT || *seconds == 0 || *seconds > MAX_SECONDS) return -1;
  return 1;
}

static const str* subject_value(struct ratelimit* rl, enum subject s)
{
  static const str none = { 0, 0, 0 };
  switch (s) {
  case SUB_IP: return &rl->network;
  case SUB_SENDER: return &rl->sender;
  case SUB_DOMAIN: return &rl->domain;
  case SUB_USER:
    if (!session_getnum("authenticated", 0)) return &none;
    const char* u = session_getstr("auth_user");
    if (!str_copys(&rl->user, u ? u : "")) return &none;
    return &rl->user;
  }
  return &none;
}

static int set_num(str* s, unsigned long v) { s->len = 0; return str_catu(s, v); }

static const response* over(struct ratelimit* rl, enum event ev, const struct limit_def* d, long long wait)
{
  rl->text.len = 0;
  if (!str_cats(&rl->text, over_text[ev]) || !str_cats(&rl->text, d->tag) || !str_cats(&rl->text, "), try again in ")
      || !str_catu(&rl->text, wait > 0 ? (unsigned long)wait : 1) || !str_cats(&rl->text, " seconds"))
    return &resp_oom;
  rl->over.number = ev == EV_CONN ? 421 : 451;
  rl->over.message = rl->text.s;
  return &rl->over;
}

/* Check (and with count, record) every configured limit of event ev. */
static const response* check(struct ratelimit* rl, enum event ev, int count)
{
  if (session_getenv("RATELIMIT_DISABLE")) return 0;
  unsigned n = 0;
  for (unsigned i = 0; i < NLIMITS; i++) {
    const struct limit_def* d = &limits[i];
    unsigned long c, s;
    if (d->ev != ev) continue;
    int p = ratelimit_parse(session_getenv(d->var), &c, &s);
    if (p < 0) { warn2("ratelimit: invalid $", d->var); return &resp_config; }
    const str* v = subject_value(rl, d->sub);
    if (p == 0 || v->len == 0) continue;
    str* k = &rl->keys[n];
    k->len = 0;
    if (!str_cats(k, "rl:") || !str_cats(k, d->tag) || !str_catc(k, ':') || !str_cat(k, v)) return &resp_oom;
    if (!set_num(&rl->args[2 + 2 * n], c) || !set_num(&rl->args[3 + 2 * n], s)) return &resp_oom;
    rl->which[n++] = i;
  }
  if (n == 0) return 0;
  if (!rl->configured) {
    if (redis_configure(&rl->redis) < 0) {
      warn2("ratelimit: ", rl->redis.err.s);
      return &resp_config;
    }
    rl->configured = 1;
  }
  if (!str_copys(&rl->args[0], count ? "1" : "0")) return &resp_oom;
  rl->args[1].len = 0;
  if (!str_catu(&rl->args[1], (unsigned long)getpid()) || !str_catc(&rl->args[1], '.')
      || !str_catu(&rl->args[1], rl->opened) || !str_catc(&rl->args[1], '.')
      || !str_catu(&rl->args[1], ++rl->seq)) return &resp_oom;
  long long res[REDIS_MAXRESULTS];
  unsigned nres;
  if (redis_run(&rl->redis, &window_script, n, rl->keys, 2 + 2 * n, rl->args, res, &nres) < 0 || nres != 2)
    return redis_failed(&rl->redis, "ratelimit");
  if (res[0] < 1 || res[0] > (long long)n) return 0;
  return over(rl, ev, &limits[rl->which[res[0] - 1]], res[1]);
}

static const response* rl_init(void)
{
  struct ratelimit* rl = plugin_context(&plugin);
  if (!rl) return &resp_internal;
  (void)redis_client_network(&rl->network, "RATELIMIT_PREFIX4", "RATELIMIT_PREFIX6", 32, 64,
                             "ratelimit", "no limits per address");
  return check(rl, EV_CONN, 1);
}

static const response* rl_sender(str* address, str* params)
{
  (void)params;
  struct ratelimit* rl = plugin_context(&plugin);
  if (!rl) return &resp_internal;
  if (!str_copy(&rl->sender, address)) return &resp_oom;
  str_lower(&rl->sender);
  return check(rl, EV_MSG, 0);
}

static const response* rl_recipient(str* address, str* params)
{
  (void)params;
  struct ratelimit* rl = plugin_context(&plugin);
  if (!rl) return &resp_internal;
  int at = str_findlast(address, '@');      /* -1 when there is none (bglibs) */
  rl->domain.len = 0;
  if (at >= 0 && !str_catb(&rl->domain, address->s + at + 1, address->len - (unsigned)at - 1)) return &resp_oom;
  str_lower(&rl->domain);
  return check(rl, EV_RCPT, 1);
}

static const response* rl_message_end(int fd)
{
  (void)fd;
  struct ratelimit* rl = plugin_context(&plugin);
  if (!rl) return &resp_internal;
  return check(rl, EV_MSG, 1);
}

struct plugin plugin = {
  .version = PLUGIN_VERSION_4,
  .init = rl_init,
  .sender = rl_sender,
  .recipient = rl_recipient,
  .message_end = rl_message_end,
  .session_open = rl_open,
  .session_close = rl_close,
};

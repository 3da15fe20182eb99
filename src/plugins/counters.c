/* plugin-counters -- per-session limits: message size, recipients per
 * message, messages per session, and mail loops (plugins.md "counters").
 *
 * Limits come from numeric-minimum lookups (driver.md "Variable lookup"):
 * $DATABYTES -> session number `maxdatabytes`, $MAXRCPTS -> `maxrcpts`,
 * $MAXMSGS -> `maxmsgs`, $MAXHOPS (default 100) -> `maxhops`.
 * $MAXRCPTS_REJECT (session lookup, set = on) refuses the whole message at
 * DATA / end of data when there were too many recipients.
 *
 * EHLO advertises `SIZE N`.  Deliberate fix of a reference quirk: the
 * mailrules reset deletes `maxdatabytes`, so the helo hook re-derives it
 * from $DATABYTES before advertising (the reference says `SIZE 0`).
 * When recipients per message or messages per session are limited, EHLO
 * also advertises `LIMITS RCPTMAX=n MAILMAX=n` (RFC 9422, only the limits
 * set), so that clients split their transactions; $SMTP_LIMITS=0 turns
 * that off.  With LIMITS on, a recipient beyond RCPTMAX gets the temporary
 * `452 4.5.3` of RFC 5321 4.5.3.1.10 / RFC 9422 (the client sends it in
 * another transaction) instead of the original's `550 5.5.3`.
 *
 * State: version 4; one `struct counters` per session, the context that
 * session_open allocates and session_close frees (plugin_context), so
 * one process may run many sessions and each starts with zero counts.
 * Hop counting scans header lines across data blocks with a
 * per-line matcher (no copy of the data).  Errors are static responses. */
#include <mailfront/mailfront.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static RESPONSE(too_many_msgs, 550, "5.5.0 Too many messages");
static RESPONSE(too_many_rcpts, 550, "5.5.3 Too many recipients");
static RESPONSE(rcpt_later, 452, "4.5.3 Too many recipients, send the rest in another transaction");
static RESPONSE(would_exceed, 552, "5.2.3 The message would exceed the maximum message size.");
static RESPONSE(too_big, 552, "5.2.3 Sorry, that message exceeds the maximum message length.");
static RESPONSE(looping, 554, "5.6.0 This message is looping, too many hops.");

#define DEFAULT_MAXHOPS 100

/* A header field name counted for loop detection, matched at line start. */
struct hop_field { const char* name; unsigned len; };
static const struct hop_field hop_fields[] = {
  { "received:", 9 },
  { "delivered-to:", 13 },
};
#define NFIELDS (sizeof hop_fields / sizeof hop_fields[0])

/* Header line matcher state, carried across data blocks. */
struct hopscan
{
  int in_header;               /* still before the first empty line */
  unsigned long linepos;       /* bytes of the current line seen so far */
  unsigned live;               /* bit i: line still matches hop_fields[i] */
  unsigned long count[NFIELDS];
};

struct counters
{
  unsigned long msgs;          /* messages completed in this session */
  unsigned long rcpts;         /* recipients seen in this message */
  unsigned long bytes;         /* data bytes seen in this message */
  unsigned long maxhops;
  struct hopscan hs;
};

extern struct plugin plugin;

static const response* c_open(void** ctx)
{
  *ctx = calloc(1, sizeof(struct counters));
  return *ctx ? 0 : &resp_oom;
}

static void c_close(void* ctx) { free(ctx); }

/* The session's counters; NULL outside a session (every hook then
 * answers resp_internal rather than count into nowhere). */
static struct counters* session_counters(void) { return plugin_context(&plugin); }

/* L(num, VAR) of the spec: keep the session number at the smallest
 * configured value; 0 when the variable gives no limit. */
static unsigned long limit(const char* num, const char* var)
{
  unsigned long v = session_getenvu(var);
  unsigned long cur;
  if (v == 0) return 0;
  if (!session_hasnum(num, &cur) || cur > v) {
    session_setnum(num, v);
    return v;
  }
  return cur;
}

static const response* check_msgs(const struct counters* cs)
{
  unsigned long m = limit("maxmsgs", "MAXMSGS");
  return (m > 0 && cs->msgs >= m) ? &resp_too_many_msgs : 0;
}

static const response* check_rcpts_reject(const struct counters* cs)
{
  if (!session_getenv("MAXRCPTS_REJECT")) return 0;
  unsigned long m = limit("maxrcpts", "MAXRCPTS");
  return (m > 0 && cs->rcpts > m) ? &resp_too_many_rcpts : 0;
}

static unsigned long current_maxdatabytes(void)
{
  unsigned long m;
  return session_hasnum("maxdatabytes", &m) ? m : 0;
}

/* Value of an all-digit `SIZE=n` ESMTP parameter, 0 if absent/invalid.
 * params: NUL-separated KEY=VALUE items. */
static unsigned long counters_size_param(const str* params)
{
  unsigned i = 0;
  while (params && i < params->len) {
    const char* item = params->s + i;
    size_t n = strnlen(item, params->len - i);
    if (n > 5 && strncasecmp(item, "SIZE=", 5) == 0) {
      unsigned long v = 0;
      size_t j;
      for (j = 5; j < n && item[j] >= '0' && item[j] <= '9'; j++) {
        unsigned d = (unsigned)(item[j] - '0');
        if (v > (~0UL - d) / 10) { v = ~0UL; continue; }   /* saturate */
        v = v * 10 + d;
      }
      if (j == n) return v;
    }
    i += (unsigned)n + 1;
  }
  return 0;
}

static void hopscan_start(struct hopscan* h)
{
  memset(h, 0, sizeof *h);
  h->in_header = 1;
  h->live = (1u << NFIELDS) - 1;
}

/* Feed bytes; returns 1 when a counter exceeds maxhops. */
static int counters_hopscan(struct hopscan* h, const char* b, unsigned long len, unsigned long maxhops)
{
  for (unsigned long i = 0; i < len && h->in_header; i++) {
    unsigned char c = (unsigned char)b[i];
    if (c == '\n') {
      if (h->linepos == 0) h->in_header = 0;
      h->linepos = 0;
      h->live = (1u << NFIELDS) - 1;
      continue;
    }
    if (h->live) {
      for (unsigned f = 0; f < NFIELDS; f++) {
        if (!(h->live & (1u << f))) continue;
        if (tolower(c) != (unsigned char)hop_fields[f].name[h->linepos]) {
          h->live &= ~(1u << f);
        } else if (h->linepos + 1 == hop_fields[f].len) {
          h->live &= ~(1u << f);
          if (++h->count[f] > maxhops) return 1;
        }
      }
    }
    h->linepos++;
  }
  return 0;
}

static const response* c_init(void)
{
  struct counters* cs = session_counters();
  if (!cs) return &resp_internal;
  memset(cs, 0, sizeof *cs);
  limit("maxdatabytes", "DATABYTES");
  return 0;
}

/* The LIMITS capability line (RFC 9422): one item per limit set, none
 * when no limit is set.  0 ok, -1 out of memory. */
struct limits_item { const char* keyword; const char* num; const char* var; };
static const struct limits_item limits_items[] = {
  { "RCPTMAX", "maxrcpts", "MAXRCPTS" },
  { "MAILMAX", "maxmsgs", "MAXMSGS" },
};

static int limits_on(void)
{
  const char* v = session_getenv("SMTP_LIMITS");
  return !(v && strcmp(v, "0") == 0);
}

static int cat_limits(str* caps)
{
  if (!limits_on()) return 0;
  int any = 0;
  for (size_t i = 0; i < sizeof limits_items / sizeof limits_items[0]; i++) {
    unsigned long m = limit(limits_items[i].num, limits_items[i].var);
    if (m == 0) continue;
    if (!(any ? str_catc(caps, ' ') : str_cats(caps, "LIMITS "))
        || !str_cat2s(caps, limits_items[i].keyword, "=") || !str_catu(caps, m))
      return -1;
    any = 1;
  }
  return any && !str_catc(caps, '\n') ? -1 : 0;
}

static const response* c_helo(str* hostname, str* capabilities)
{
  (void)hostname;
  limit("maxdatabytes", "DATABYTES");   /* re-derive after a mailrules reset */
  if (!str_cats(capabilities, "SIZE ") || !str_catu(capabilities, current_maxdatabytes())
      || !str_catc(capabilities, '\n') || cat_limits(capabilities) < 0)
    return &resp_oom;
  return 0;
}

static const response* c_reset(void)
{
  struct counters* cs = session_counters();
  if (!cs) return &resp_internal;
  limit("maxdatabytes", "DATABYTES");
  cs->rcpts = 0;
  return 0;
}

static const response* c_sender(str* address, str* params)
{
  (void)address;
  struct counters* cs = session_counters();
  if (!cs) return &resp_internal;
  const response* r = check_msgs(cs);
  if (r) return r;
  limit("maxdatabytes", "DATABYTES");
  limit("maxrcpts", "MAXRCPTS");
  unsigned long size = counters_size_param(params);
  unsigned long max = current_maxdatabytes();
  if (size > 0 && max > 0 && size > max) return &resp_would_exceed;
  return 0;
}

static const response* c_recipient(str* address, str* params)
{
  (void)address;
  (void)params;
  struct counters* cs = session_counters();
  if (!cs) return &resp_internal;
  unsigned long m = limit("maxrcpts", "MAXRCPTS");
  limit("maxdatabytes", "DATABYTES");
  cs->rcpts++;
  if (m == 0 || cs->rcpts <= m) return 0;
  return limits_on() ? &resp_rcpt_later : &resp_too_many_rcpts;
}

static const response* c_data_start(int fd)
{
  (void)fd;
  struct counters* cs = session_counters();
  if (!cs) return &resp_internal;
  const response* r = check_msgs(cs);
  if (r) return r;
  if ((r = check_rcpts_reject(cs)) != 0) return r;
  limit("maxdatabytes", "DATABYTES");
  unsigned long hops = session_getenvu("MAXHOPS");
  cs->maxhops = hops ? hops : DEFAULT_MAXHOPS;
  session_setnum("maxhops", cs->maxhops);
  cs->bytes = 0;
  hopscan_start(&cs->hs);
  return 0;
}

static const response* c_data_block(const char* bytes, unsigned long len)
{
  struct counters* cs = session_counters();
  if (!cs) return &resp_internal;
  cs->bytes = (cs->bytes > ~0UL - len) ? ~0UL : cs->bytes + len;
  unsigned long max = current_maxdatabytes();
  if (max > 0 && cs->bytes > max) return &resp_too_big;
  if (counters_hopscan(&cs->hs, bytes, len, cs->maxhops)) return &resp_looping;
  return 0;
}

static const response* c_message_end(int fd)
{
  (void)fd;
  struct counters* cs = session_counters();
  if (!cs) return &resp_internal;
  const response* r = check_rcpts_reject(cs);
  if (r) return r;
  cs->msgs++;
  return 0;
}

struct plugin plugin = {
  .version = PLUGIN_VERSION_4,
  .init = c_init,
  .helo = c_helo,
  .reset = c_reset,
  .sender = c_sender,
  .recipient = c_recipient,
  .data_start = c_data_start,
  .data_block = c_data_block,
  .message_end = c_message_end,
  .session_open = c_open,
  .session_close = c_close,
};

/* redis/client.c -- see client.h: configuration, the lazy connection with
 * AUTH/SELECT, script runs under one deadline, servers tried in order,
 * the fail-mode reply.  The SHA-1 of a script comes from nettle. */
#include "client.h"
#include "lib/setting.h"
#include <hiredis/hiredis.h>
#include <nettle/sha1.h>
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static RESPONSE(unavailable, 451, "4.3.0 Policy service unavailable, try again later");

#define DEFAULT_PORT 6379
#define DEFAULT_TIMEOUT_MS 1000
#define MAX_TIMEOUT_MS 60000
#define DEFAULT_RETRY_MS 10000

static void set_err(struct redis* r, const char* a, const char* b)
{
  r->err.len = 0;
  if (!str_cats(&r->err, a) || (b && !str_cats(&r->err, b))) str_copys(&r->err, "out of memory");
}

unsigned long redis_parse_ms(const char* v, int* ok)
{
  unsigned long whole = 0, frac = 0, scale = 1000;
  const char* p = v;
  *ok = 0;
  if (!p || !*p) return 0;
  for (; *p >= '0' && *p <= '9'; p++) {
    whole = whole * 10 + (unsigned long)(*p - '0');
    if (whole > MAX_TIMEOUT_MS) return 0;
  }
  if (*p == '.') {
    for (p++; *p >= '0' && *p <= '9'; p++) {
      if (scale > 1) { scale /= 10; frac += (unsigned long)(*p - '0') * scale; }
    }
  }
  if (*p || p == v) return 0;
  unsigned long ms = whole * 1000 + frac;
  if (ms == 0 || ms > MAX_TIMEOUT_MS) return 0;
  *ok = 1;
  return ms;
}

int redis_cat_network(str* out, const char* ip, unsigned prefix4, unsigned prefix6)
{
  unsigned char a[16];
  char text[INET6_ADDRSTRLEN];
  int fam = AF_INET;
  unsigned bits = prefix4 > 32 ? 32 : prefix4, size = 4;
  if (!ip) return 0;
  if (inet_pton(AF_INET, ip, a) != 1) {
    if (inet_pton(AF_INET6, ip, a) != 1) return 0;
    fam = AF_INET6;
    bits = prefix6 > 128 ? 128 : prefix6;
    size = 16;
  }
  for (unsigned i = 0; i < size; i++) {
    unsigned keep = bits >= (i + 1) * 8 ? 8 : bits > i * 8 ? bits - i * 8 : 0;
    a[i] &= (unsigned char)(0xff00u >> keep);
  }
  if (!inet_ntop(fam, a, text, sizeof text)) return 0;
  return str_cats(out, text) && str_catc(out, '/') && str_catu(out, bits);
}

int redis_client_network(str* out, const char* name4, const char* name6, unsigned dflt4, unsigned dflt6,
                         const char* plugin, const char* consequence)
{
  const struct env_number spec4 = { dflt4, 0, 32, 1 }, spec6 = { dflt6, 0, 128, 1 };
  const char* ip = getprotoenv("REMOTEIP");
  out->len = 0;
  if (!ip) return 0;
  if (redis_cat_network(out, ip, (unsigned)env_setting(name4, &spec4), (unsigned)env_setting(name6, &spec6)))
    return 1;
  out->len = 0;
  str line = {0, 0, 0};
  if (str_cat2s(&line, plugin, ": cannot parse client address '") && str_cat3s(&line, ip, "', ", consequence))
    msg1(line.s);
  str_free(&line);
  return -1;
}

/* ---- configuration ---- */

static int add_server(struct redis* r, const char* b, size_t n, int unix_socket, unsigned long dport)
{
  const char* host = b;
  size_t hl = n;
  unsigned long port = dport;
  if (!unix_socket) {
    const char* colon = 0;
    if (n > 0 && b[0] == '[') {                 /* [v6]:port or [v6] */
      const char* close = memchr(b, ']', n);
      if (!close) return -1;
      host = b + 1;
      hl = (size_t)(close - b) - 1;
      if ((size_t)(close - b) + 1 < n) {
        if (close[1] != ':') return -1;
        colon = close + 1;
      }
    } else {
      const char* c1 = memchr(b, ':', n);
      if (c1 && !memchr(c1 + 1, ':', n - (size_t)(c1 - b) - 1)) { colon = c1; hl = (size_t)(c1 - b); }
    }
    if (colon) {
      const char* end = b + n;
      const char* p = colon + 1;
      port = 0;
      if (p == end) return -1;
      for (; p < end; p++) {
        if (*p < '0' || *p > '9') return -1;
        port = port * 10 + (unsigned long)(*p - '0');
        if (port > 65535) return -1;
      }
    }
    if (port == 0 || hl == 0) return -1;
  }
  struct redis_server* s = realloc(r->servers, (r->nservers + 1) * sizeof *s);
  if (!s) return -1;
  r->servers = s;
  char* h = malloc(hl + 1);
  if (!h) return -1;
  memcpy(h, host, hl);
  h[hl] = 0;
  s[r->nservers].host = h;
  s[r->nservers].port = unix_socket ? 0 : (int)port;
  r->nservers++;
  return 0;
}

static int add_list(struct redis* r, const char* list, int unix_socket, unsigned long dport, const char* var)
{
  const char* s = list;
  while (s && *s) {
    s += strspn(s, " ,\t");
    size_t n = strcspn(s, " ,\t");
    if (n && add_server(r, s, n, unix_socket, dport) < 0) {
      set_err(r, "invalid $", var);
      return -1;
    }
    s += n;
  }
  return 0;
}

static const char* env(const char* name)
{
  const char* v = session_getenv(name);
  return v && *v ? v : 0;
}

/* The Redis settings refuse what they cannot use (documented: a
 * misconfigured client answers 451) instead of lib/progenv.h's lenient
 * rule: all digits, min..max, else -1. */
static int strict_number(const char* v, unsigned long min, unsigned long max, unsigned long* out)
{
  static const struct env_number spec = { 0, 0, ~0UL, 1 };
  size_t n = strspn(v, "0123456789");
  if (n == 0 || v[n] != 0 || n > 10) return -1;
  unsigned long x = env_number_parse(v, &spec);
  if (x < min || x > max) return -1;
  *out = x;
  return 0;
}

int redis_configure(struct redis* r)
{
  redis_close(r);
  unsigned long dport = DEFAULT_PORT;
  const char* v;
  if ((v = env("REDIS_PORT")) != 0 && strict_number(v, 1, 65535, &dport) < 0) {
    set_err(r, "invalid $REDIS_PORT", 0);
    return -1;
  }
  if (add_list(r, env("REDIS_PATH"), 1, dport, "REDIS_PATH") < 0) return -1;
  if (add_list(r, env("REDIS_HOST"), 0, dport, "REDIS_HOST") < 0) return -1;
  if (r->nservers == 0 && add_list(r, "127.0.0.1", 0, dport, "REDIS_HOST") < 0) return -1;
  r->timeout_ms = DEFAULT_TIMEOUT_MS;
  if ((v = env("REDIS_TIMEOUT")) != 0) {
    int ok;
    r->timeout_ms = redis_parse_ms(v, &ok);
    if (!ok) { set_err(r, "invalid $REDIS_TIMEOUT (seconds, at most 60)", 0); return -1; }
  }
  if ((v = env("REDIS_DB")) != 0 && strict_number(v, 0, 1000000, &r->db) < 0) {
    set_err(r, "invalid $REDIS_DB", 0);
    return -1;
  }
  v = session_getenv("REDIS_PREFIX");   /* set but empty: no prefix */
  if (!str_copys(&r->prefix, v ? v : "mailfront:")) { set_err(r, "out of memory", 0); return -1; }
  if ((v = env("REDIS_PASSWORD")) != 0 && !str_copys(&r->password, v)) { set_err(r, "out of memory", 0); return -1; }
  if ((v = env("REDIS_USERNAME")) != 0 && !str_copys(&r->username, v)) { set_err(r, "out of memory", 0); return -1; }
  r->retry_ms = DEFAULT_RETRY_MS;
  unsigned long sec;
  if ((v = env("REDIS_RETRY")) != 0) {
    if (strict_number(v, 0, 3600, &sec) < 0) { set_err(r, "invalid $REDIS_RETRY (seconds, at most 3600)", 0); return -1; }
    r->retry_ms = sec * 1000;
  }
  v = env("REDIS_FAIL");
  if (!v || strcasecmp(v, "open") == 0) r->fail = REDIS_FAIL_OPEN;
  else if (strcasecmp(v, "tempfail") == 0) r->fail = REDIS_FAIL_TEMPFAIL;
  else { set_err(r, "invalid $REDIS_FAIL (open or tempfail)", 0); return -1; }
  return 0;
}

void redis_close(struct redis* r)
{
  if (r->ctx) redisFree(r->ctx);
  for (unsigned i = 0; i < r->nservers; i++) free(r->servers[i].host);
  free(r->servers);
  str_free(&r->password);
  str_free(&r->username);
  str_free(&r->prefix);
  str_free(&r->err);
  memset(r, 0, sizeof *r);
}

/* ---- time ---- */

static long long now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Time left until deadline as a timeval; 0 when none is left. */
static int left(long long deadline, struct timeval* tv)
{
  long long ms = deadline - now_ms();
  if (ms <= 0) return 0;
  tv->tv_sec = (time_t)(ms / 1000);
  tv->tv_usec = (suseconds_t)((ms % 1000) * 1000);
  return 1;
}

/* ---- connection ---- */

static void drop(struct redis* r)
{
  if (r->ctx) redisFree(r->ctx);
  r->ctx = 0;
}

/* Errors that mean "this server cannot serve us now, try the next". */
static int next_server_error(const redisReply* y)
{
  static const char* const words[] = { "READONLY", "LOADING", "MASTERDOWN", "BUSY", "NOREPLICAS", "CLUSTERDOWN" };
  for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
    size_t n = strlen(words[i]);
    if (y->len >= n && strncmp(y->str, words[i], n) == 0) return 1;
  }
  return 0;
}

static void reply_err(struct redis* r, const char* what, const redisReply* y)
{
  r->err.len = 0;
  if (!str_cats(&r->err, what) || !str_cats(&r->err, ": ")) return;
  if (y && y->type == REDIS_REPLY_ERROR) {
    size_t n = y->len > 200 ? 200 : y->len;
    str_catb(&r->err, y->str, (unsigned)n);
  } else {
    str_cats(&r->err, "unexpected reply");
  }
}

static void io_err(struct redis* r, const char* what)
{
  const char* e = r->ctx && r->ctx->errstr[0] ? r->ctx->errstr : "connection failed";
  if (r->ctx && r->ctx->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK)) e = "timed out";
  set_err(r, what, 0);
  str_cats(&r->err, ": ");
  str_cats(&r->err, e);
}

/* "host:port" or the socket path, for messages. */
static void cat_server(str* out, const struct redis_server* s)
{
  str_cats(out, s->host);
  if (s->port) { str_catc(out, ':'); str_catu(out, (unsigned long)s->port); }
}

/* Connect to server i and authenticate/select (pipelined, one round trip).
 * 0 on success with r->ctx set. */
static int open_server(struct redis* r, unsigned i, long long deadline)
{
  struct timeval tv;
  const struct redis_server* s = &r->servers[i];
  if (!left(deadline, &tv)) { set_err(r, "timed out before connecting to ", 0); cat_server(&r->err, s); return -1; }
  r->ctx = s->port ? redisConnectWithTimeout(s->host, s->port, tv) : redisConnectUnixWithTimeout(s->host, tv);
  if (!r->ctx) { set_err(r, "out of memory", 0); return -1; }
  if (r->ctx->err) {
    set_err(r, "cannot connect to ", 0);
    cat_server(&r->err, s);
    str_cats(&r->err, ": ");
    str_cats(&r->err, r->ctx->errstr);
    drop(r);
    return -1;
  }
  unsigned pending = 0;
  if (r->password.len) {
    const char* argv[3] = { "AUTH", r->username.s, r->password.s };
    size_t lens[3] = { 4, r->username.len, r->password.len };
    if (r->username.len) redisAppendCommandArgv(r->ctx, 3, argv, lens);
    else { argv[1] = r->password.s; lens[1] = r->password.len; redisAppendCommandArgv(r->ctx, 2, argv, lens); }
    pending++;
  }
  if (r->db) {
    char num[24];
    snprintf(num, sizeof num, "%lu", r->db);
    const char* argv[2] = { "SELECT", num };
    size_t lens[2] = { 6, strlen(num) };
    redisAppendCommandArgv(r->ctx, 2, argv, lens);
    pending++;
  }
  int rc = 0;
  for (unsigned k = 0; k < pending; k++) {
    void* y = 0;
    if (!left(deadline, &tv) || redisSetTimeout(r->ctx, tv) != REDIS_OK) { set_err(r, "timed out talking to ", 0); cat_server(&r->err, s); rc = -1; break; }
    if (redisGetReply(r->ctx, &y) != REDIS_OK) { io_err(r, s->host); rc = -1; break; }
    redisReply* yr = y;
    if (yr->type == REDIS_REPLY_ERROR) {
      reply_err(r, k == 0 && r->password.len ? "AUTH refused" : "SELECT refused", yr);
      rc = -1;
    }
    freeReplyObject(y);
    if (rc < 0) break;
  }
  if (rc < 0) drop(r);
  return rc;
}

/* The script's SHA-1 in hex into sha (41 bytes). */
static void script_sha(const struct redis_script* s, char* sha)
{
  struct sha1_ctx c;
  uint8_t d[SHA1_DIGEST_SIZE];
  sha1_init(&c);
  sha1_update(&c, strlen(s->text), (const uint8_t*)s->text);
  sha1_digest(&c, sizeof d, d);
  for (unsigned i = 0; i < SHA1_DIGEST_SIZE; i++) snprintf(sha + 2 * i, 3, "%02x", d[i]);
}

/* One command on the open connection, bounded by deadline.  NULL on an
 * I/O failure or timeout (r->err set, connection dropped). */
static redisReply* command(struct redis* r, int argc, const char** argv, const size_t* lens, long long deadline)
{
  struct timeval tv;
  if (!left(deadline, &tv)) { set_err(r, "timed out", 0); drop(r); return 0; }
  redisSetTimeout(r->ctx, tv);
  redisReply* y = redisCommandArgv(r->ctx, argc, argv, lens);
  if (!y) { io_err(r, "redis"); drop(r); }
  return y;
}

/* Decode an integer or an array of integers. */
static int results(struct redis* r, const redisReply* y, long long* out, unsigned* nout)
{
  *nout = 0;
  if (y->type == REDIS_REPLY_INTEGER) { out[0] = y->integer; *nout = 1; return 0; }
  if (y->type == REDIS_REPLY_ARRAY && y->elements <= REDIS_MAXRESULTS) {
    for (size_t i = 0; i < y->elements; i++) {
      if (y->element[i]->type != REDIS_REPLY_INTEGER) break;
      out[i] = y->element[i]->integer;
      *nout = (unsigned)i + 1;
    }
    if (*nout == y->elements) return 0;
  }
  reply_err(r, "script", y);
  return -1;
}

/* Build the EVALSHA argument vector in a/lens (caller-sized). */
static int build_args(struct redis* r, const char* sha, unsigned nkeys, const str* keys,
                      unsigned nargs, const str* args, const char** a, size_t* lens, str* keybuf, char* nk)
{
  unsigned n = 0;
  snprintf(nk, 16, "%u", nkeys);
  a[n] = "EVALSHA"; lens[n++] = 7;
  a[n] = sha; lens[n++] = 40;
  a[n] = nk; lens[n++] = strlen(nk);
  keybuf->len = 0;
  for (unsigned i = 0; i < nkeys; i++)     /* prefixed keys, NUL-separated */
    if (!str_cat(keybuf, &r->prefix) || !str_cat(keybuf, &keys[i]) || !str_catc(keybuf, 0)) return -1;
  unsigned off = 0;
  for (unsigned i = 0; i < nkeys; i++) {
    a[n] = keybuf->s + off;
    lens[n] = r->prefix.len + keys[i].len;
    off += (unsigned)lens[n++] + 1;
  }
  for (unsigned i = 0; i < nargs; i++) { a[n] = args[i].s ? args[i].s : ""; lens[n++] = args[i].len; }
  return (int)n;
}

int redis_run(struct redis* r, const struct redis_script* s, unsigned nkeys, const str* keys,
              unsigned nargs, const str* args, long long* out, unsigned* nout)
{
  long long start = now_ms();
  if (start < r->down_until) return -1;    /* r->err still says why */
  long long deadline = start + (long long)r->timeout_ms;
  char sha[41];
  script_sha(s, sha);
  unsigned total = 3 + nkeys + nargs;
  const char** a = malloc(total * sizeof *a);
  size_t* lens = malloc(total * sizeof *lens);
  str keybuf = { 0, 0, 0 };
  char nk[16];
  int rc = -1;
  int argc = (a && lens) ? build_args(r, sha, nkeys, keys, nargs, args, a, lens, &keybuf, nk) : -1;
  if (argc < 0) { set_err(r, "out of memory", 0); goto done; }
  /* A kept connection may have been closed by the server: then each
   * server in order, from the first, within the same deadline. */
  unsigned next = 0;
  for (;;) {
    if (!r->ctx) {
      if (next >= r->nservers) break;
      if (open_server(r, next++, deadline) < 0) continue;
    }
    a[0] = "EVALSHA"; lens[0] = 7; a[1] = sha; lens[1] = 40;
    redisReply* y = command(r, argc, a, lens, deadline);
    if (y && y->type == REDIS_REPLY_ERROR && y->len >= 8 && strncmp(y->str, "NOSCRIPT", 8) == 0) {
      freeReplyObject(y);
      a[0] = "EVAL"; lens[0] = 4; a[1] = s->text; lens[1] = strlen(s->text);
      y = command(r, argc, a, lens, deadline);
    }
    if (!y) {                       /* dropped: next server, time permitting */
      if (now_ms() >= deadline) break;
      continue;
    }
    if (y->type == REDIS_REPLY_ERROR && next_server_error(y)) {
      reply_err(r, "server not usable", y);
      freeReplyObject(y);
      drop(r);
      continue;
    }
    rc = results(r, y, out, nout);
    freeReplyObject(y);
    break;
  }
done:
  free(a);
  free(lens);
  str_free(&keybuf);
  if (rc < 0) r->down_until = now_ms() + (long long)r->retry_ms;
  return rc;
}

const response* redis_failed(struct redis* r, const char* who)
{
  str line = { 0, 0, 0 };
  int tf = r->fail == REDIS_FAIL_TEMPFAIL;
  if (str_cats(&line, who) && str_cats(&line, ": redis error: ")
      && str_cats(&line, r->err.len ? r->err.s : "unavailable")
      && str_cats(&line, tf ? "; failing tempfail" : "; failing open"))
    warn1(line.s);
  str_free(&line);
  return tf ? &resp_unavailable : 0;
}

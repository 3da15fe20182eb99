/* Unit tests of the Redis client's parsers: $REDIS_TIMEOUT, server lists,
 * client networks; and ratelimit's COUNT/SECONDS. */
#include "../../src/plugins/redis/client.c"
#include "../../src/plugins/ratelimit.c"
#include "tap.h"
#include <stdlib.h>

/* The driver functions the two sources use, for this test alone. */
static const char* env_name;
static const char* env_value;
const char* session_getenv(const char* name) { return env_name && strcmp(name, env_name) == 0 ? env_value : getenv(name); }
unsigned long session_getenvu_dflt(const char* name, unsigned long d) { (void)name; return d; }
unsigned long session_getnum(const char* name, unsigned long d) { (void)name; return d; }
const char* session_getstr(const char* name) { (void)name; return 0; }
const char* getprotoenv(const char* name) { (void)name; return 0; }
void msg1(const char* a) { (void)a; }
void msg3(const char* a, const char* b, const char* c) { (void)a; (void)b; (void)c; }
void warn1(const char* a) { (void)a; }
void warn2(const char* a, const char* b) { (void)a; (void)b; }
const response resp_oom = { 451, "4.3.0 Out of memory" };
const response resp_internal = { 451, "4.3.0 Internal error." };
/* No session here: the plugin's hooks are not run by this test. */
void* plugin_context(const struct plugin* self) { (void)self; return 0; }

static int network(const char* ip, unsigned p4, unsigned p6, const char* want)
{
  str s = { 0, 0, 0 };
  int ok = redis_cat_network(&s, ip, p4, p6);
  int r = want ? ok && s.len == strlen(want) && memcmp(s.s, want, s.len) == 0 : !ok;
  str_free(&s);
  return r;
}

static int servers(const char* var, const char* value, unsigned n, const char* host0, int port0)
{
  struct redis r;
  memset(&r, 0, sizeof r);
  env_name = var;
  env_value = value;
  int rc = redis_configure(&r);
  int ok = n == 0 ? rc < 0 : rc == 0 && r.nservers == n && strcmp(r.servers[0].host, host0) == 0 && r.servers[0].port == port0;
  redis_close(&r);
  env_name = 0;
  return ok;
}

int main(void)
{
  /* $REDIS_TIMEOUT: text, milliseconds, accepted */
  static const struct { const char* text; unsigned long ms; int ok; const char* name; } timeouts[] = {
    { "1", 1000, 1, "timeout 1 s" },
    { "0.25", 250, 1, "timeout 0.25 s" },
    { "2.5", 2500, 1, "timeout 2.5 s" },
    { "60", 60000, 1, "timeout at the maximum" },
    { "61", 0, 0, "timeout over the maximum" },
    { "0", 0, 0, "timeout zero refused" },
    { "0.0001", 0, 0, "timeout below a millisecond refused" },
    { "", 0, 0, "empty timeout refused" },
    { ".", 0, 0, "lone dot refused" },
    { "1s", 0, 0, "unit suffix refused" },
    { "99999999999999999999", 0, 0, "huge timeout refused" },
  };
  for (size_t i = 0; i < sizeof timeouts / sizeof timeouts[0]; i++) {
    int ok;
    unsigned long ms = redis_parse_ms(timeouts[i].text, &ok);
    CHECK(ms == timeouts[i].ms && ok == timeouts[i].ok, timeouts[i].name);
  }

  /* client networks: address, IPv4 and IPv6 prefix, the network (0: refused) */
  static const struct { const char* ip; unsigned p4, p6; const char* want; const char* name; } networks[] = {
    { "192.0.2.77", 24, 64, "192.0.2.0/24", "IPv4 /24" },
    { "192.0.2.77", 32, 64, "192.0.2.77/32", "IPv4 /32" },
    { "192.0.2.77", 20, 64, "192.0.0.0/20", "IPv4 /20" },
    { "192.0.2.77", 99, 64, "192.0.2.77/32", "IPv4 prefix capped at 32" },
    { "2001:db8:1:2:3:4:5:6", 24, 64, "2001:db8:1:2::/64", "IPv6 /64" },
    { "2001:db8:1:2:3:4:5:6", 24, 56, "2001:db8:1::/56", "IPv6 /56" },
    { "::ffff:192.0.2.1", 24, 128, "::ffff:192.0.2.1/128", "IPv6 /128" },
    { "not an ip", 24, 64, 0, "garbage refused" },
    { "192.0.2.1 ", 24, 64, 0, "trailing space refused" },
  };
  for (size_t i = 0; i < sizeof networks / sizeof networks[0]; i++)
    CHECK(network(networks[i].ip, networks[i].p4, networks[i].p6, networks[i].want), networks[i].name);

  /* server lists: variable, value, servers (0: refused), the first one */
  static const struct { const char* var; const char* value; unsigned n; const char* host0; int port0; const char* name; } lists[] = {
    { "REDIS_HOST", "10.0.0.1", 1, "10.0.0.1", 6379, "host, default port" },
    { "REDIS_HOST", "10.0.0.1:7000, 10.0.0.2", 2, "10.0.0.1", 7000, "two hosts, comma" },
    { "REDIS_HOST", "[::1]:7001 h", 2, "::1", 7001, "bracketed IPv6 with port" },
    { "REDIS_HOST", "::1", 1, "::1", 6379, "bare IPv6, default port" },
    { "REDIS_HOST", "h:0", 0, 0, 0, "port 0 refused" },
    { "REDIS_HOST", "h:", 0, 0, 0, "empty port refused" },
    { "REDIS_HOST", "h:70000", 0, 0, 0, "port over 65535 refused" },
    { "REDIS_HOST", "[::1]x", 0, 0, 0, "junk after bracket refused" },
    { "REDIS_PATH", "/run/redis.sock", 1, "/run/redis.sock", 0, "UNIX socket" },
    { "REDIS_HOST", "", 1, "127.0.0.1", 6379, "default server" },
  };
  for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++)
    CHECK(servers(lists[i].var, lists[i].value, lists[i].n, lists[i].host0, lists[i].port0), lists[i].name);

  unsigned long c, s;
  CHECK(ratelimit_parse("100/3600", &c, &s) == 1 && c == 100 && s == 3600, "COUNT/SECONDS");
  CHECK(ratelimit_parse("", &c, &s) == 0 && ratelimit_parse(0, &c, &s) == 0, "unset");
  static const char* const bad[] = { "100", "100/", "/60", "0/60", "1/0", "1/60s", "-1/60", "1/-60", "1000001/60", "1/31622401", "x/1" };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) CHECK(ratelimit_parse(bad[i], &c, &s) == -1, bad[i]);
  return done();
}

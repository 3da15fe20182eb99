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
  int ok;
  CHECK(redis_parse_ms("1", &ok) == 1000 && ok, "timeout 1 s");
  CHECK(redis_parse_ms("0.25", &ok) == 250 && ok, "timeout 0.25 s");
  CHECK(redis_parse_ms("2.5", &ok) == 2500 && ok, "timeout 2.5 s");
  CHECK(redis_parse_ms("60", &ok) == 60000 && ok, "timeout at the maximum");
  CHECK(redis_parse_ms("61", &ok) == 0 && !ok, "timeout over the maximum");
  CHECK(redis_parse_ms("0", &ok) == 0 && !ok, "timeout zero refused");
  CHECK(redis_parse_ms("0.0001", &ok) == 0 && !ok, "timeout below a millisecond refused");
  CHECK(redis_parse_ms("", &ok) == 0 && !ok, "empty timeout refused");
  CHECK(redis_parse_ms(".", &ok) == 0 && !ok, "lone dot refused");
  CHECK(redis_parse_ms("1s", &ok) == 0 && !ok, "unit suffix refused");
  CHECK(redis_parse_ms("99999999999999999999", &ok) == 0 && !ok, "huge timeout refused");

  CHECK(network("192.0.2.77", 24, 64, "192.0.2.0/24"), "IPv4 /24");
  CHECK(network("192.0.2.77", 32, 64, "192.0.2.77/32"), "IPv4 /32");
  CHECK(network("192.0.2.77", 20, 64, "192.0.0.0/20"), "IPv4 /20");
  CHECK(network("192.0.2.77", 99, 64, "192.0.2.77/32"), "IPv4 prefix capped at 32");
  CHECK(network("2001:db8:1:2:3:4:5:6", 24, 64, "2001:db8:1:2::/64"), "IPv6 /64");
  CHECK(network("2001:db8:1:2:3:4:5:6", 24, 56, "2001:db8:1::/56"), "IPv6 /56");
  CHECK(network("::ffff:192.0.2.1", 24, 128, "::ffff:192.0.2.1/128"), "IPv6 /128");
  CHECK(network("not an ip", 24, 64, 0), "garbage refused");
  CHECK(network("192.0.2.1 ", 24, 64, 0), "trailing space refused");

  CHECK(servers("REDIS_HOST", "10.0.0.1", 1, "10.0.0.1", 6379), "host, default port");
  CHECK(servers("REDIS_HOST", "10.0.0.1:7000, 10.0.0.2", 2, "10.0.0.1", 7000), "two hosts, comma");
  CHECK(servers("REDIS_HOST", "[::1]:7001 h", 2, "::1", 7001), "bracketed IPv6 with port");
  CHECK(servers("REDIS_HOST", "::1", 1, "::1", 6379), "bare IPv6, default port");
  CHECK(servers("REDIS_HOST", "h:0", 0, 0, 0), "port 0 refused");
  CHECK(servers("REDIS_HOST", "h:", 0, 0, 0), "empty port refused");
  CHECK(servers("REDIS_HOST", "h:70000", 0, 0, 0), "port over 65535 refused");
  CHECK(servers("REDIS_HOST", "[::1]x", 0, 0, 0), "junk after bracket refused");
  CHECK(servers("REDIS_PATH", "/run/redis.sock", 1, "/run/redis.sock", 0), "UNIX socket");
  CHECK(servers("REDIS_HOST", "", 1, "127.0.0.1", 6379), "default server");

  unsigned long c, s;
  CHECK(ratelimit_parse("100/3600", &c, &s) == 1 && c == 100 && s == 3600, "COUNT/SECONDS");
  CHECK(ratelimit_parse("", &c, &s) == 0 && ratelimit_parse(0, &c, &s) == 0, "unset");
  static const char* const bad[] = { "100", "100/", "/60", "0/60", "1/0", "1/60s", "-1/60", "1/-60", "1000001/60", "1/31622401", "x/1" };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) CHECK(ratelimit_parse(bad[i], &c, &s) == -1, bad[i]);
  return done();
}

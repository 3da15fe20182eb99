/* Unit tests of plugin-counters: the SIZE= parameter parser, the header
 * hop scanner across block boundaries, and the L(num, VAR) limit rule.
 * The few ABI functions the plugin calls are provided here over a tiny
 * table (numbers) and setenv (variables). */
#include "../../src/plugins/counters.c"
#include "tap.h"

const response resp_oom = { 451, "4.3.0 Out of memory." };
const response resp_internal = { 451, "4.3.0 Internal error." };
void* plugin_context(const struct plugin* self) { (void)self; return 0; }   /* hooks unused here */
static struct { const char* name; unsigned long v; int set; } nums[8];
static int num_slot(const char* n)
{
  for (int i = 0; i < 8; i++) if (nums[i].name && strcmp(nums[i].name, n) == 0) return i;
  for (int i = 0; i < 8; i++) if (!nums[i].name) { nums[i].name = n; return i; }
  return 0;
}
int session_hasnum(const char* n, unsigned long* v)
{
  int i = num_slot(n);
  if (nums[i].set && v) *v = nums[i].v;
  return nums[i].set;
}
void session_setnum(const char* n, unsigned long v) { int i = num_slot(n); nums[i].v = v; nums[i].set = 1; }
const char* session_getenv(const char* n) { return getenv(n); }
unsigned long session_getenvu(const char* n) { const char* v = getenv(n); return v ? strtoul(v, 0, 10) : 0; }

static unsigned long size_of(const char* p, unsigned len)
{
  str s = { (char*)p, len, len };
  return counters_size_param(&s);
}

static int scan(const char* const* blocks, unsigned long maxhops)
{
  struct hopscan h;
  hopscan_start(&h);
  for (; *blocks; blocks++)
    if (counters_hopscan(&h, *blocks, strlen(*blocks), maxhops)) return 1;
  return 0;
}

int main(void)
{
  CHECK(size_of("SIZE=123", 9) == 123, "SIZE=123");
  CHECK(size_of("size=5", 7) == 5, "keyword case-insensitive");
  CHECK(size_of("BODY=8BITMIME\0SIZE=77", 22) == 77, "second parameter");
  CHECK(size_of("SIZE=12x", 9) == 0, "non-digit value ignored");
  CHECK(size_of("SIZE=", 6) == 0, "empty value ignored");
  CHECK(size_of("SIZEX=5", 8) == 0, "other keyword");
  CHECK(size_of("SIZE=99999999999999999999999", 28) == ~0UL, "huge value saturates");
  CHECK(size_of("", 0) == 0, "no parameters");

  const char* a[] = { "Received: a\nReceived: b\n", 0 };
  CHECK(scan(a, 1) == 1, "two Received over maxhops 1");
  CHECK(scan(a, 2) == 0, "two Received within maxhops 2");
  const char* b[] = { "Rece", "ived: a\nRECEIVED:", " b\n", 0 };
  CHECK(scan(b, 1) == 1, "field name split across blocks");
  const char* c[] = { "Received: a\n\nReceived: b\nReceived: c\n", 0 };
  CHECK(scan(c, 1) == 0, "body lines not counted");
  const char* d[] = { "Delivered-To: a\nReceived: b\ndelivered-to: c\n", 0 };
  CHECK(scan(d, 1) == 1, "Delivered-To counted separately");
  const char* e[] = { "X-Received: a\nReceived b\nReceived: c\n", 0 };
  CHECK(scan(e, 1) == 0, "only line-start full names count");
  const char* f[] = { "Subject: x\n", "\n", "Received: a\nReceived: b\n", 0 };
  CHECK(scan(f, 1) == 0, "empty line in its own block ends the header");

  unsetenv("DATABYTES");
  CHECK(limit("maxdatabytes", "DATABYTES") == 0, "unset variable: no limit");
  CHECK(!session_hasnum("maxdatabytes", 0), "unset variable stores nothing");
  setenv("DATABYTES", "100", 1);
  CHECK(limit("maxdatabytes", "DATABYTES") == 100, "limit stored");
  session_setnum("maxdatabytes", 50);
  CHECK(limit("maxdatabytes", "DATABYTES") == 50, "smaller stored number wins");
  session_setnum("maxdatabytes", 500);
  CHECK(limit("maxdatabytes", "DATABYTES") == 100, "larger stored number lowered");
  unsigned long v = 0;
  CHECK(session_hasnum("maxdatabytes", &v) && v == 100, "lowered value stored");
  unsetenv("DATABYTES");
  CHECK(limit("maxdatabytes", "DATABYTES") == 0, "variable 0: stored number ignored");
  return done();
}

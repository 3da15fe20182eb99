/* Unit tests of plugin-check-fqdn's address completion and domain list. */
#include "../../src/plugins/check-fqdn.c"
#include "tap.h"
#include <stdlib.h>

const response resp_oom = { 451, "4.3.0 Out of memory." };
const char* session_getenv(const char* n) { return getenv(n); }

static const char* complete(const char* in, const char* dh, const char* dd, const response** r)
{
  static str s;
  str_copys(&s, in);
  *r = fqdn_check(&s, dh, dd);
  return s.s;
}

int main(void)
{
  const response* r;
  CHECK(strcmp(complete("a", "h", "d", &r), "a@h.d") == 0 && !r, "a -> a@h.d");
  CHECK(strcmp(complete("a@b", "h", "d", &r), "a@b.d") == 0 && !r, "a@b -> a@b.d");
  CHECK(strcmp(complete("@b", "h", "d", &r), "@b@h.d") == 0 && !r, "@ first: host appended");
  CHECK(strcmp(complete("a@b.c", 0, 0, &r), "a@b.c") == 0 && !r, "fqdn unchanged");
  complete("a", 0, "d", &r);
  CHECK(r == &resp_no_domain, "no @, no DEFAULTHOST");
  complete("a@b", "h", 0, &r);
  CHECK(r == &resp_no_fqdn, "no dot, no DEFAULTDOMAIN");
  CHECK(strcmp(complete("x.y@b", 0, "d", &r), "x.y@b.d") == 0 && !r, "dot before @ does not count");
  CHECK(strcmp(complete("a@b@c.d", 0, 0, &r), "a@b@c.d") == 0 && !r, "last @ decides");
  CHECK(strcmp(complete("a", "", "", &r), "a@.") == 0 && !r, "empty defaults still set");

  CHECK(fqdn_in_list("b.c", 3, "x:B.C"), "case-insensitive element");
  CHECK(!fqdn_in_list("a.b.c", 5, "b.c"), "no subdomain matching");
  CHECK(!fqdn_in_list("", 0, "::"), "empty elements never match");
  CHECK(!fqdn_in_list("b", 1, ""), "empty list");
  CHECK(fqdn_in_list("x", 1, "::x:"), "element between empties");
  return done();
}

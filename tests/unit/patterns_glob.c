/* patterns_glob.c -- unit tests of the content-pattern glob used by
 * plugin-patterns (src/plugins/mailrules/glob.h; plugins.md "patterns"). */
#include "../../src/plugins/mailrules/glob.h"
#include "tap.h"

static int gm(const char* p, const char* s) { return glob_match(p, strlen(p), s, strlen(s)); }

int main(void)
{
  CHECK(gm("TVqQ*", "TVqQAAMAA") && !gm("TVqQ*", "tvqqAAMAA"), "case-sensitive prefix");
  CHECK(gm("*virus*", "a virus here") && !gm("*virus*", "a VIRUS here"), "infix");
  CHECK(!gm("abc", "abcd") && !gm("abc", "xabc"), "whole line");
  CHECK(gm("Subject: [!x]*", "Subject: hi") && !gm("Subject: [!x]*", "Subject: xi"), "negated set");
  CHECK(gm("a\\*", "a\\xyz"), "backslash outside a set is a character");
  CHECK(gm("[\\*]", "*") && !gm("[\\*]", "a"), "escape inside a set");
  CHECK(glob_match("a?c", 3, "a\0c", 3), "NUL bytes are data");
  return done();
}

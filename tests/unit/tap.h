/* tap.h -- minimal TAP-style assertions for the C unit tests.
 * CHECK(cond, name) prints `ok N - name` or `not ok N - name`; SKIP(name,
 * why) prints `ok N # SKIP name: why`, which tests/run.py counts as skipped,
 * never as passed; done() returns the exit status (1 if anything failed). */
#ifndef MF_TAP_H
#define MF_TAP_H
#include <stdio.h>
#include <string.h>
static int tap_n, tap_failed;
static void tap_check(int ok, const char* name, const char* file, int line)
{
  tap_n++;
  if (!ok) tap_failed++;
  printf("%s %d - %s%s", ok ? "ok" : "not ok", tap_n, name, ok ? "\n" : "");
  if (!ok) printf(" (%s:%d)\n", file, line);
}
#define SKIP(name, why) (tap_n++, printf("ok %d # SKIP %s: %s\n", tap_n, (name), (why)))
#define CHECK(c, name) tap_check(!!(c), (name), __FILE__, __LINE__)
#define CHECK_MEM(p, n, exp, name) CHECK((n) == sizeof(exp) - 1 && memcmp((p), (exp), (n)) == 0, name)
static int done(void) { return tap_failed ? 1 : 0; }
#endif

/* pop3_command.c -- unit tests of pop3front-maildir's command line parser:
 * splitting, verb matching and the message-number/line-count rules that
 * the reference applies (cases taken from runs of the 2.12 oracle). */
#include "tap.h"
#include <errno.h>
#include <stdlib.h>
#include "programs/pop3front-maildir/command.c"

#define S(lit) (lit), (sizeof(lit) - 1)

static enum pop3_arg num(const char* a, size_t len, unsigned long* n) { return pop3_msgnum(a, len, 4, n); }

static void test_split(void)
{
  struct pop3_cmdline c;
  pop3_split(S("LIST  1 2"), &c);
  CHECK(c.verblen == 4 && memcmp(c.verb, "LIST", 4) == 0, "split: verb");
  CHECK(c.arglen == 3 && memcmp(c.arg, "1 2", 3) == 0, "split: spaces after the verb skipped");
  pop3_split(S("STAT "), &c);
  CHECK(c.verblen == 4 && c.arglen == 0, "split: trailing space is no argument");
  pop3_split(S("TOP\t1 1"), &c);
  CHECK(c.verblen == 5, "split: TAB is not a separator");
  pop3_split(S(""), &c);
  CHECK(c.verblen == 0 && c.arglen == 0, "split: empty line");
  pop3_split(S(" STAT"), &c);
  CHECK(c.verblen == 0 && c.arglen == 4, "split: leading space gives an empty verb");
  pop3_split(S("noop"), &c);
  CHECK(pop3_verb_is(&c, "NOOP"), "verb: case folded");
  CHECK(!pop3_verb_is(&c, "NOO") && !pop3_verb_is(&c, "NOOPS"), "verb: exact length");
  pop3_split("STA\0", 4, &c);
  CHECK(!pop3_verb_is(&c, "STAT") && !pop3_verb_is(&c, "STA"), "verb: NUL byte is not ignored");
  pop3_split(S("\xe9t"), &c);
  CHECK(!pop3_verb_is(&c, "\xc9T"), "verb: only ASCII is folded");
}

static void test_parse_long(void)
{
  long v;
  CHECK(pop3_parse_long(S("12"), &v) == 2 && v == 12, "long: digits");
  CHECK(pop3_parse_long(S(" \t\v+7x"), &v) == 5 && v == 7, "long: white space and sign");
  CHECK(pop3_parse_long(S("-0"), &v) == 2 && v == 0, "long: -0");
  CHECK(pop3_parse_long(S("x"), &v) == 0 && v == 0, "long: no digits");
  CHECK(pop3_parse_long(S("+"), &v) == 0, "long: sign alone");
  CHECK(pop3_parse_long(S("99999999999999999999"), &v) == 20 && v == LONG_MAX, "long: saturates high");
  CHECK(pop3_parse_long(S("-99999999999999999999"), &v) == 21 && v == LONG_MIN, "long: saturates low");
  CHECK(pop3_parse_long(S("9223372036854775807"), &v) == 19 && v == LONG_MAX, "long: LONG_MAX");
  CHECK(pop3_parse_long(S("-9223372036854775808"), &v) == 20 && v == LONG_MIN, "long: LONG_MIN");
  CHECK(pop3_parse_long("12", 1, &v) == 1 && v == 1, "long: bounded by len");
}

static void test_msgnum(void)
{
  unsigned long n = 0;
  CHECK(num(S("1"), &n) == ARG_OK && n == 1, "msgnum: 1");
  CHECK(num(S("04"), &n) == ARG_OK && n == 4, "msgnum: leading zero");
  CHECK(num(S("+1"), &n) == ARG_OK && n == 1, "msgnum: plus sign");
  CHECK(num(S("\t1"), &n) == ARG_OK, "msgnum: leading TAB skipped (strtol)");
  CHECK(num(S("5"), &n) == ARG_RANGE, "msgnum: above count");
  CHECK(num(S("0"), &n) == ARG_RANGE, "msgnum: zero");
  CHECK(num(S("-0"), &n) == ARG_RANGE, "msgnum: -0 is zero");
  CHECK(num(S("-1"), &n) == ARG_SYNTAX, "msgnum: negative");
  CHECK(num(S("99999999999999999999"), &n) == ARG_RANGE, "msgnum: huge");
  CHECK(num(S("4294967297"), &n) == ARG_RANGE, "msgnum: no 32-bit wrap");
  CHECK(num(S("x"), &n) == ARG_SYNTAX, "msgnum: not a number");
  CHECK(num(S("1x"), &n) == ARG_SYNTAX, "msgnum: trailing garbage");
  CHECK(num(S("9x"), &n) == ARG_SYNTAX, "msgnum: garbage checked before range");
  CHECK(num(S("1 "), &n) == ARG_SYNTAX, "msgnum: trailing space");
  CHECK(num(S("1 2"), &n) == ARG_SYNTAX, "msgnum: two numbers");
  CHECK(num(S("\t"), &n) == ARG_SYNTAX, "msgnum: white space only");
  CHECK(num("1\0", 2, &n) == ARG_SYNTAX, "msgnum: embedded NUL is garbage");
}

static void test_retr(void)
{
  unsigned long n = 0, lines = 9;
  const char* rest;
  size_t rl;
  int lim;
  CHECK(pop3_retr_msgnum(S("x"), 4, &n, &rest, &rl) == ARG_RANGE, "retr: non-number counts as 0");
  CHECK(pop3_retr_msgnum(S("x x"), 4, &n, &rest, &rl) == ARG_RANGE, "retr: range checked first");
  CHECK(pop3_retr_msgnum(S("-1 0"), 4, &n, &rest, &rl) == ARG_SYNTAX, "retr: negative");
  CHECK(pop3_retr_msgnum(S("-0 1"), 4, &n, &rest, &rl) == ARG_RANGE, "retr: -0");
  CHECK(pop3_retr_msgnum(S("9 x"), 4, &n, &rest, &rl) == ARG_RANGE, "retr: out of range before lines");
  CHECK(pop3_retr_msgnum(S("2 10"), 4, &n, &rest, &rl) == ARG_OK && n == 2 && rl == 3, "retr: rest");
  CHECK(pop3_lines(rest, rl, &lim, &lines) == ARG_OK && lim && lines == 10, "lines: 10");
  CHECK(pop3_lines(S(""), &lim, &lines) == ARG_OK && !lim, "lines: none");
  CHECK(pop3_lines(S("  "), &lim, &lines) == ARG_OK && !lim, "lines: spaces only = none");
  CHECK(pop3_lines(S("\t1"), &lim, &lines) == ARG_OK && lim && lines == 1, "lines: TAB before number");
  CHECK(pop3_lines(S("\t"), &lim, &lines) == ARG_SYNTAX, "lines: TAB alone");
  CHECK(pop3_lines(S(" \t"), &lim, &lines) == ARG_SYNTAX, "lines: space TAB");
  CHECK(pop3_lines(S("x"), &lim, &lines) == ARG_SYNTAX, "lines: garbage right after number");
  CHECK(pop3_lines(S(" -1"), &lim, &lines) == ARG_SYNTAX, "lines: negative");
  CHECK(pop3_lines(S(" -0"), &lim, &lines) == ARG_OK && lim && lines == 0, "lines: -0");
  CHECK(pop3_lines(S(" +1"), &lim, &lines) == ARG_OK && lines == 1, "lines: plus");
  CHECK(pop3_lines(S(" 1 "), &lim, &lines) == ARG_SYNTAX, "lines: trailing space");
  CHECK(pop3_lines(S(" 1 2"), &lim, &lines) == ARG_SYNTAX, "lines: third argument");
  CHECK(pop3_lines(S(" 99999999999999999999"), &lim, &lines) == ARG_OK && lines == LONG_MAX, "lines: huge");
}

/* Random strings over a small alphabet: pop3_parse_long agrees with
 * strtol(3) on value and bytes consumed; the argument checkers never read
 * past len (ASAN build) and never return ARG_OK with n out of range. */
static void fuzz(void)
{
  static const char alphabet[] = " \t\v+-0123456789x9";
  unsigned seed = 12345;
  int bad = 0, bad_range = 0;
  for (int iter = 0; iter < 200000; iter++) {
    char buf[32];
    size_t len = 0;
    seed = seed * 1103515245u + 12345u;
    size_t want = (seed >> 16) % 24;
    while (len < want) {
      seed = seed * 1103515245u + 12345u;
      buf[len++] = alphabet[(seed >> 16) % (sizeof alphabet - 1)];
    }
    char* copy = malloc(len + 1);
    memcpy(copy, buf, len);
    copy[len] = 0;
    long v, w;
    char* end;
    size_t used = pop3_parse_long(copy, len, &v);
    errno = 0;
    w = strtol(copy, &end, 10);
    size_t sused = (size_t)(end - copy);
    if (used != sused || (used && v != w)) {
      bad++;
      if (bad < 5) printf("# parse_long(\"%s\"): %zu %ld, strtol %zu %ld\n", copy, used, v, sused, w);
    }
    unsigned long n = 0;
    const char* rest;
    size_t rl;
    int lim;
    unsigned long lines;
    if (pop3_msgnum(copy, len, 7, &n) == ARG_OK && (n < 1 || n > 7)) bad_range++;
    if (pop3_retr_msgnum(copy, len, 7, &n, &rest, &rl) == ARG_OK) {
      if (n < 1 || n > 7 || rest + rl != copy + len) bad_range++;
      (void)pop3_lines(rest, rl, &lim, &lines);
    }
    free(copy);
  }
  CHECK(bad == 0, "fuzz: pop3_parse_long agrees with strtol");
  CHECK(bad_range == 0, "fuzz: accepted numbers are in range");
}

int main(void)
{
  test_split();
  test_parse_long();
  test_msgnum();
  test_retr();
  fuzz();
  return done();
}

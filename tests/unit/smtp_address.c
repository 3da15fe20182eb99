/* smtp_address.c -- unit tests of the MAIL/RCPT argument parser
 * (protocols.md "Address argument parsing", rules 1-6, including the 2.22
 * bracket-less form and our fix for a trailing backslash). */
#include "tap.h"
#include "../../src/protocols/smtp/address.c"

static str addr, params;

static int parse(const char* arg) { return smtp_parse_address(arg, strlen(arg), &addr, &params); }

/* Parse arg and compare the address and the raw parameter bytes. */
static void ok_parse(const char* arg, const char* a, unsigned alen, const char* p, unsigned plen, const char* name)
{
  int r = parse(arg);
  CHECK(r == 0 && addr.len == alen && memcmp(addr.s, a, alen) == 0
        && params.len == plen && (plen == 0 || memcmp(params.s, p, plen) == 0), name);
  if (r != 0 || addr.len != alen || params.len != plen)
    printf("#   arg [%s]: r=%d addr[%.*s] len %u params len %u\n", arg, r, (int)addr.len, addr.s ? addr.s : "", addr.len, params.len);
}
#define OK(arg, a, p, name) ok_parse(arg, a, sizeof(a) - 1, p, sizeof(p) - 1, name)
#define BAD(arg, name) CHECK(parse(arg) < 0, name)

int main(void)
{
  /* Rule 1, bracket form. */
  OK("FROM:<a@b.c>", "a@b.c", "", "plain bracketed address");
  OK("FROM:<>", "", "", "null sender");
  OK("TO:<postmaster>", "postmaster", "", "local part only");
  OK("FROM: <a@b>", "a@b", "", "space before bracket");
  OK("FROM:x y<a@b>", "a@b", "", "text before the first < is ignored");
  OK("<a@b>", "a@b", "", "no FROM: keyword (not checked)");
  OK("FROM:<a<b@c>", "a<b@c", "", "address starts after the FIRST <");
  OK("FROM:<a@b>>", "a@b", ">", "terminator is the first unquoted >");
  BAD("FROM:<a@b", "missing > is a syntax error");
  BAD("FROM:<", "lone < is a syntax error");
  BAD("FROM:<\"a@b>", "unterminated quote hides the > (syntax error)");

  /* Rule 2: quotes and escapes. */
  OK("FROM:<\"a b\"@c>", "a b@c", "", "quotes dropped, space kept");
  OK("FROM:<\"a>b\"@c>", "a>b@c", "", "quoted > does not terminate");
  OK("FROM:<\"a b>\"@c> X", "a b>@c", "X", "quoted > and space, then a parameter");
  OK("FROM:<a\\>b@c>", "a>b@c", "", "escaped > is literal");
  OK("FROM:<a\\\\b>", "a\\b", "", "escaped backslash");
  OK("FROM:<a\\\"b>", "a\"b", "", "escaped quote is literal, not a toggle");
  OK("FROM:<\"\">", "", "", "empty quoted string");
  OK("FROM:<\"a\\\"b\"@c>", "a\"b@c", "", "escaped quote inside quotes");
  OK("FROM:<a\"b\"c>", "abc", "", "quotes in the middle are dropped");

  /* Rule 3: bracket-less forms (2.22) and the trailing backslash. */
  OK("FROM:a@b", "a@b", "", "bracket-less after colon");
  OK("FROM:   a@b", "a@b", "", "leading spaces skipped");
  OK("FROM:a@b SIZE=10", "a@b", "SIZE=10", "bracket-less with parameter");
  OK("FROM:a@b   SIZE=10  X", "a@b", "SIZE=10\0\0X", "bracket-less with spaced parameters");
  OK("FROM a@b", "a@b", "", "no colon: starts after the first space");
  OK("TO x y", "x", "y", "no colon: space-terminated, rest is parameters");
  OK("FROM:\"a b\"@c", "a b@c", "", "bracket-less quoted space");
  OK("FROM:a\\ b", "a b", "", "bracket-less escaped space");
  BAD("FROM:", "empty bracket-less address");
  BAD("FROM:   ", "only spaces after colon");
  BAD("a@b", "neither <, : nor space");
  BAD("", "empty argument");
  OK("FROM:a\\", "a\\", "", "trailing backslash is an ordinary character (no NUL)");
  CHECK(addr.len == 2 && memchr(addr.s, 0, addr.len) == 0, "no NUL copied for a trailing backslash");
  BAD("FROM:<a\\", "bracketed trailing backslash without > is a syntax error");
  OK("FROM:<a\\\\>", "a\\", "", "escaped backslash right before >");

  /* Rule 4: parameters. */
  OK("FROM:<a@b> SIZE=10 BODY=8BITMIME", "a@b", "SIZE=10\0BODY=8BITMIME", "two parameters, NUL separated");
  OK("FROM:<a@b> X=1  Y", "a@b", "X=1\0\0Y", "double space gives an empty entry");
  OK("FROM:<a@b>     X", "a@b", "X", "spaces after > are skipped");
  OK("FROM:<a@b> X ", "a@b", "X\0", "trailing space gives a trailing empty entry");
  OK("FROM:<a@b>   ", "a@b", "", "only spaces after >: no parameters");
  OK("FROM:<a@b>X=1", "a@b", "X=1", "parameter glued to >");
  OK("FROM:<a@b> A\tB", "a@b", "A\tB", "a TAB is not a separator");
  OK("FROM:<a@b> \"q p\"", "a@b", "\"q\0p\"", "parameters are not unquoted");

  /* Rule 5: source routes. */
  OK("FROM:<@r1,@r2:u@d>", "u@d", "", "source route removed");
  OK("FROM:<@r1,@r2:u@d> SIZE=1", "u@d", "SIZE=1", "source route with a parameter");
  OK("FROM:<@r1>", "@r1", "", "@ without colon is kept");
  OK("FROM:<@a:@b:u>", "@b:u", "", "only up to the first colon");
  OK("FROM:<@a:>", "", "", "route to nothing gives the empty address");
  OK("FROM:<u:@d>", "u:@d", "", "no route unless the address starts with @");
  /* The reference skips rule 5 for a bracket-less address that runs to the
   * end of the line (protocols.md rule 3), but not when a space ends it. */
  OK("FROM:@r:u@d", "@r:u@d", "", "bracket-less to end of line: route kept (rule 5 skipped)");
  OK("FROM:@r:u@d X", "u@d", "X", "bracket-less, space-terminated: route removed");

  /* Reuse: a second parse leaves nothing of the first. */
  OK("FROM:<long-address@example.org> A=1 B=2", "long-address@example.org", "A=1\0B=2", "first parse");
  OK("FROM:<x>", "x", "", "second parse into the same strings");
  CHECK(addr.s[addr.len] == 0, "address is NUL terminated");
  BAD("FROM:<y", "failed parse");
  CHECK(addr.len == 0 || params.len == 0, "failure leaves no parameters behind");

  /* Length and bytes. */
  {
    static char big[20010];
    memcpy(big, "FROM:<", 6);
    memset(big + 6, 'x', 20000);
    memcpy(big + 20006, ">", 2);
    CHECK(parse(big) == 0 && addr.len == 20000 && params.len == 0, "20000-byte address");
    const char bin[] = "FROM:<a\0b> P\0Q";
    CHECK(smtp_parse_address(bin, sizeof bin - 1, &addr, &params) == 0 && addr.len == 3
          && memcmp(addr.s, "a\0b", 3) == 0 && params.len == 3 && memcmp(params.s, "P\0Q", 3) == 0,
          "length-delimited input: embedded NULs are bytes");
    const char cut[] = "FROM:<a@b>";
    CHECK(smtp_parse_address(cut, 9, &addr, &params) < 0, "the length, not a NUL, ends the input");
  }
  str_free(&addr);
  str_free(&params);
  return done();
}

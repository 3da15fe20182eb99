/* imap_parse.c -- unit tests of imapfront-auth's IMAP command parser
 * (src/programs/imapfront-auth/parse.c): tags, command names, atoms,
 * quoted strings with escapes, literals {N} and {N+}, the argument limit,
 * every error text, embedded NULs and bounds. */
#include "tap.h"
#include "lib/linein.h"
#include "programs/imapfront-auth/parse.c"
#include <limits.h>

static struct imap_command c;

/* Parse one line (no line end) from a fresh command. */
static enum imap_parse_result parse(const char* line)
{
  imap_command_reset(&c);
  return imap_parse_line(&c, line, strlen(line));
}

static int arg_is(unsigned i, const char* s, size_t n)
{
  return i < c.nargs && c.args[i].len == n && memcmp(c.args[i].s, s, n) == 0;
}

static int err_is(const char* text) { return c.error && strcmp(c.error, text) == 0; }

/* Deterministic random lines over the parser's special bytes: every
 * result is a valid value, errors have a text, arguments stay <= 16 and
 * within the bytes given (ASan checks the reads). */
static void fuzz(unsigned rounds)
{
  static const char alphabet[] = "a1 \t\"\\{}+9\0x*";
  unsigned long seed = 12345;
  int bad = 0;
  char line[40];
  for (unsigned r = 0; r < rounds && !bad; r++) {
    imap_command_reset(&c);
    for (int step = 0; step < 4; step++) {
      seed = seed * 6364136223846793005UL + 1442695040888963407UL;
      size_t len = (seed >> 33) % sizeof line;
      for (size_t i = 0; i < len; i++) {
        seed = seed * 6364136223846793005UL + 1442695040888963407UL;
        line[i] = alphabet[(seed >> 35) % (sizeof alphabet - 1)];
      }
      enum imap_parse_result res = imap_parse_line(&c, line, len);
      if (c.nargs > IMAP_MAX_ARGS) bad = 1;
      if (res == IMAP_PARSE_ERROR && !c.error) bad = 1;
      if (res == IMAP_PARSE_LITERAL) {
        if (!imap_add_literal(&c, line, c.literal_len < len ? c.literal_len : len)) bad = 1;
        continue;
      }
      if (res != IMAP_PARSE_DONE && res != IMAP_PARSE_ERROR) bad = 1;
      break;
    }
  }
  CHECK(!bad, "random lines: valid results, bounded arguments");
}

int main(void)
{
  CHECK(parse("a1 NOOP") == IMAP_PARSE_DONE && str_diffs(&c.tag, "a1") == 0 && str_diffs(&c.name, "NOOP") == 0
        && c.nargs == 0, "tag and command");
  CHECK(parse(" \t a2\tlogin  x   \"y z\"  ") == IMAP_PARSE_DONE && str_diffs(&c.tag, "a2") == 0
        && str_diffs(&c.name, "login") == 0 && arg_is(0, "x", 1) && arg_is(1, "y z", 3) && c.nargs == 2,
        "whitespace anywhere, quoted string keeps spaces");
  CHECK(parse("") == IMAP_PARSE_ERROR && !c.has_tag && err_is("BAD Syntax error"), "empty line: no tag");
  CHECK(parse("   \t") == IMAP_PARSE_ERROR && !c.has_tag, "blank line: no tag");
  CHECK(parse("tag") == IMAP_PARSE_ERROR && c.has_tag && err_is("BAD Syntax error"), "tag only");
  CHECK(parse("tag   ") == IMAP_PARSE_ERROR && c.has_tag, "tag and spaces only");
  CHECK(parse("t X \"a\\\"b\\\\c\"") == IMAP_PARSE_DONE && arg_is(0, "a\"b\\c", 5), "backslash escapes");
  CHECK(parse("t X \"\"") == IMAP_PARSE_DONE && arg_is(0, "", 0) && c.nargs == 1, "empty quoted string is an argument");
  CHECK(parse("t X \"a\"b c") == IMAP_PARSE_DONE && c.nargs == 3 && arg_is(0, "a", 1) && arg_is(1, "b", 1),
        "quoted string ends an argument without a space");
  CHECK(parse("t X a\"b c") == IMAP_PARSE_DONE && c.nargs == 2 && arg_is(0, "a\"b", 3), "quote inside an atom");
  CHECK(parse("t X \"abc") == IMAP_PARSE_ERROR && err_is("BAD Syntax error: unterminated quoted string"),
        "unterminated quoted string");
  CHECK(parse("t X \"abc\\") == IMAP_PARSE_ERROR && err_is("BAD Syntax error: unterminated quoted string"),
        "backslash at end of line");
  CHECK(parse("t X a b c d e f g h i j k l m n o p") == IMAP_PARSE_DONE && c.nargs == 16, "16 arguments");
  CHECK(parse("t X a b c d e f g h i j k l m n o p q") == IMAP_PARSE_ERROR
        && err_is("BAD Too many command arguments"), "17 arguments");
  CHECK(parse("t X a b c d e f g h i j k l m n o p {3}") == IMAP_PARSE_ERROR
        && err_is("BAD Too many command arguments"), "17th argument a literal");

  /* literals */
  CHECK(parse("t LOGIN {5}") == IMAP_PARSE_LITERAL && c.literal_len == 5 && !c.literal_plus, "{5}");
  CHECK(imap_add_literal(&c, "al\0ce", 5) && arg_is(0, "al\0ce", 5), "literal bytes with NUL");
  CHECK(imap_parse_line(&c, " {0+}", 5) == IMAP_PARSE_LITERAL && c.literal_len == 0 && c.literal_plus,
        "continuation line with {0+}");
  CHECK(imap_add_literal(&c, "", 0) && arg_is(1, "", 0), "empty literal");
  CHECK(imap_parse_line(&c, " \"x\"", 4) == IMAP_PARSE_DONE && c.nargs == 3 && arg_is(2, "x", 1)
        && str_diffs(&c.tag, "t") == 0, "command completed after literals");
  CHECK(parse("t LOGIN {") == IMAP_PARSE_ERROR && err_is("BAD Syntax error: missing integer"), "{ at end");
  CHECK(parse("t LOGIN {}") == IMAP_PARSE_ERROR && err_is("BAD Syntax error: missing integer"), "{}");
  CHECK(parse("t LOGIN {x}") == IMAP_PARSE_ERROR && err_is("BAD Syntax error: missing integer"), "{x}");
  CHECK(parse("t LOGIN {+}") == IMAP_PARSE_ERROR && err_is("BAD Syntax error: missing integer"), "{+}");
  CHECK(parse("t LOGIN {3x}") == IMAP_PARSE_ERROR && err_is("BAD Syntax error: invalid integer"), "{3x}");
  CHECK(parse("t LOGIN {3+x}") == IMAP_PARSE_ERROR && err_is("BAD Syntax error: invalid integer"), "{3+x}");
  CHECK(parse("t LOGIN {3++}") == IMAP_PARSE_ERROR && err_is("BAD Syntax error: invalid integer"), "{3++}");
  CHECK(parse("t LOGIN {3") == IMAP_PARSE_ERROR && err_is("BAD Syntax error: missing LF after integer"), "{3");
  CHECK(parse("t LOGIN {3+") == IMAP_PARSE_ERROR && err_is("BAD Syntax error: invalid integer"), "{3+");
  CHECK(parse("t LOGIN {3} x") == IMAP_PARSE_ERROR && err_is("BAD Syntax error: missing LF after integer"), "{3} x");
  CHECK(parse("t LOGIN {3}\t") == IMAP_PARSE_ERROR && err_is("BAD Syntax error: missing LF after integer"), "{3} TAB");
  CHECK(parse("t LOGIN {99999999999999999999999}") == IMAP_PARSE_LITERAL && c.literal_len == ULONG_MAX,
        "overflowing size saturates");
  CHECK(parse("t LOGIN {4294967297}") == IMAP_PARSE_LITERAL && c.literal_len == 4294967297UL, "size above 32 bits");
  CHECK(parse("t LOGIN a{3}") == IMAP_PARSE_DONE && arg_is(1 - 1, "a{3}", 4), "brace inside an atom");

  /* embedded NUL and bounds: only len bytes are looked at */
  {
    const char line[] = "t\0x L\0GIN a\0b";
    imap_command_reset(&c);
    CHECK(imap_parse_line(&c, line, sizeof line - 1) == IMAP_PARSE_DONE && c.tag.len == 3 && c.name.len == 5
          && arg_is(0, "a\0b", 3), "NUL bytes are data");
    imap_command_reset(&c);
    CHECK(imap_parse_line(&c, "t X \"abc\" more", 8) == IMAP_PARSE_ERROR, "length bounds the quoted string");
  }
  CHECK(line_chomp("a\r\n", 3) == 1 && line_chomp("a\n", 2) == 1 && line_chomp("a", 1) == 1
        && line_chomp("a\r\r\n", 4) == 2 && line_chomp("\n", 1) == 0, "chomp (lib/linein.h)");
  imap_command_reset(&c);
  c.nargs = IMAP_MAX_ARGS;
  CHECK(!imap_add_literal(&c, "x", 1), "no 17th literal");
  fuzz(20000);
  imap_command_free(&c);
  CHECK(c.tag.s == 0 && c.nargs == 0, "free");
  return done();
}

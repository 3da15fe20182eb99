/* pop3_command.c -- fuzzes the POP3 command parsing of both POP3 programs:
 * the shared splitter (src/pop3/pop3cmd.c), pop3front-maildir's argument
 * parsers (message numbers, TOP line counts), the line-end rule of the
 * line-based programs (src/lib/linein.h) and the argument rules of the
 * command tables.  Invariants: the verb and argument lie inside the line;
 * a parsed message number is within 1..count; rest lies inside the
 * argument; an argument never fits a command that takes none while a
 * missing one never fits a command that requires one. */
#include "fuzz.h"
#include "pop3/pop3cmd.c"
#include "programs/pop3front-maildir/command.c"
#include "lib/linein.h"

static int inside(const char* base, size_t n, const char* p, size_t len)
{
  return len == 0 || (p >= base && p + len <= base + n);
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
  struct fuzz_in in = { data, size };
  unsigned long count = fuzz_byte(&in);
  char* line = fuzz_dup(in.p, in.n);
  size_t n = line_chomp(line, in.n);
  FUZZ_ASSERT(n <= in.n);
  struct pop3_cmdline c;
  pop3_split(line, n, &c);
  FUZZ_ASSERT(inside(line, n, c.verb, c.verblen));
  FUZZ_ASSERT(inside(line, n, c.arg, c.arglen));
  (void)pop3_verb_is(&c, "RETR");
  unsigned long num = 0;
  if (pop3_msgnum(c.arg, c.arglen, count, &num) == ARG_OK) FUZZ_ASSERT(num >= 1 && num <= count);
  const char* rest = 0;
  size_t restlen = 0;
  if (pop3_retr_msgnum(c.arg, c.arglen, count, &num, &rest, &restlen) == ARG_OK) {
    FUZZ_ASSERT(num >= 1 && num <= count);
    FUZZ_ASSERT(inside(c.arg, c.arglen, rest, restlen));
    int limited = 0;
    unsigned long lines = 0;
    (void)pop3_lines(rest, restlen, &limited, &lines);
  }
  long v;
  FUZZ_ASSERT(pop3_parse_long(c.arg, c.arglen, &v) <= c.arglen);
  FUZZ_ASSERT(pop3_arg_fits(POP3_TAKES_OPTIONAL, &c));
  FUZZ_ASSERT(!(c.arglen > 0 && pop3_arg_fits(POP3_TAKES_NONE, &c)));
  FUZZ_ASSERT(!(c.arglen == 0 && pop3_arg_fits(POP3_TAKES_REQUIRED, &c)));
  free(line);
  return 0;
}

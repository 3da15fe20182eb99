/* pop3cmd.c -- see pop3cmd.h.  Bounded by the given lengths; a NUL byte is
 * an ordinary byte. */
#include "pop3cmd.h"

void pop3_split(const char* line, size_t len, struct pop3_cmdline* out)
{
  size_t i = 0;
  while (i < len && line[i] != ' ') i++;
  out->verb = line;
  out->verblen = i;
  while (i < len && line[i] == ' ') i++;
  out->arg = line + i;
  out->arglen = len - i;
}

static char ascii_upper(char c) { return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c; }

int pop3_verb_is(const struct pop3_cmdline* c, const char* name)
{
  size_t i;
  for (i = 0; i < c->verblen; i++)
    if (name[i] == 0 || ascii_upper(c->verb[i]) != name[i]) return 0;
  return name[i] == 0;
}

int pop3_arg_fits(enum pop3_argmode mode, const struct pop3_cmdline* c)
{
  return !(mode == POP3_TAKES_NONE && c->arglen > 0) && !(mode == POP3_TAKES_REQUIRED && c->arglen == 0);
}

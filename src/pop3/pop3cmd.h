/* pop3cmd.h -- POP3 command-line splitting, shared by pop3front-auth and
 * pop3front-maildir.  Pure functions: no I/O, no allocation.
 *
 * A command line (line end already removed) is split into the command word
 * (bytes before the first SPACE; TAB is not a separator) and the argument
 * (the rest, after the SPACEs that follow the word; arglen 0 = none).
 * A command table says per command whether it takes an argument:
 * pop3_arg_fits is 0 when the argument breaks that rule (the reply is
 * `-ERR Syntax error`). */
#ifndef MF_POP3CMD_H
#define MF_POP3CMD_H

#include <stddef.h>

struct pop3_cmdline
{
  const char* verb;
  size_t verblen;
  const char* arg;     /* points into the line */
  size_t arglen;
};

void pop3_split(const char* line, size_t len, struct pop3_cmdline* out);
/* 1 if the command word equals NAME (NAME upper case; only ASCII is folded). */
int pop3_verb_is(const struct pop3_cmdline* c, const char* name);

enum pop3_argmode { POP3_TAKES_NONE, POP3_TAKES_OPTIONAL, POP3_TAKES_REQUIRED };
int pop3_arg_fits(enum pop3_argmode mode, const struct pop3_cmdline* c);

#endif

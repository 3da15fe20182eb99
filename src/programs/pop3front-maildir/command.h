/* command.h -- pop3front-maildir: splitting and checking command lines.
 *
 * Pure functions over length-bounded byte strings; nothing here allocates,
 * logs or touches the session.  A command line (LF and one trailing CR
 * already removed) is split into the command word (bytes before the first
 * SPACE; TAB is not a separator) and the argument (the rest, with the
 * SPACEs after the word skipped).  Message-number arguments are parsed the
 * way the original does (each rule stated below): the results are
 * values of enum pop3_arg, which the caller turns into replies. */
#ifndef POP3_COMMAND_H
#define POP3_COMMAND_H

#include <stddef.h>
#include "pop3/pop3cmd.h"   /* struct pop3_cmdline, pop3_split, pop3_verb_is */

enum pop3_arg
{
  ARG_OK = 0,
  ARG_SYNTAX,          /* -ERR Syntax error */
  ARG_RANGE            /* -ERR Message number out of range */
};

/* strtol(3) on s[0..len): white space, optional sign, decimal digits;
 * saturates at LONG_MIN/LONG_MAX.  Returns the bytes consumed, 0 when no
 * digit was found (then *value is 0). */
size_t pop3_parse_long(const char* s, size_t len, long* value);

/* Argument of LIST n, UIDL n, DELE n: the whole argument must be a number;
 * negative -> ARG_SYNTAX; 0 or > count -> ARG_RANGE. */
enum pop3_arg pop3_msgnum(const char* arg, size_t len, unsigned long count, unsigned long* n);

/* First argument of RETR/TOP: a leading number (no digits counts as 0);
 * negative -> ARG_SYNTAX; 0 or > count -> ARG_RANGE.  rest and restlen get
 * what follows the number. */
enum pop3_arg pop3_retr_msgnum(const char* arg, size_t len, unsigned long count,
                               unsigned long* n, const char** rest, size_t* restlen);

/* What follows the message number of RETR/TOP: after SPACEs, nothing ->
 * *limited = 0 (whole message); otherwise exactly one non-negative number
 * -> *limited = 1, *lines; anything else -> ARG_SYNTAX. */
enum pop3_arg pop3_lines(const char* rest, size_t len, int* limited, unsigned long* lines);

#endif

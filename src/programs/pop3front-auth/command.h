/* command.h -- pop3front-auth: command-line splitting and credential
 * checks, pure functions (no I/O, no allocation, no session).
 *
 * A command line (LF and one CR before it already removed) is split into
 * the command word (bytes before the first SPACE; TAB is not a separator)
 * and the argument (the rest, after the SPACEs that follow the word).
 * The word is compared case-insensitively (ASCII) with upper-case names. */
#ifndef POP3AUTH_COMMAND_H
#define POP3AUTH_COMMAND_H

#include <stddef.h>

struct pop3auth_cmdline
{
  const char* verb;
  size_t verblen;
  const char* arg;     /* points into the line; arglen 0 = no argument */
  size_t arglen;
};

void pop3auth_split(const char* line, size_t len, struct pop3auth_cmdline* out);
/* 1 if the command word equals NAME (upper case). */
int pop3auth_verb_is(const struct pop3auth_cmdline* c, const char* name);
/* Strip the line end: LF, then one CR before it.  Returns the new length. */
size_t pop3auth_chomp(const char* line, size_t len);
/* 1 when s[0..len) can be sent to a CVM as one credential: no NUL byte
 * (the C-string password call would silently truncate it) and at most
 * max bytes. */
int pop3auth_credential_ok(const char* s, size_t len, size_t max);
/* Length of the AUTH argument's mechanism word (up to the first SPACE),
 * for logging the command without the initial response. */
size_t pop3auth_mech_len(const char* arg, size_t len);

#endif

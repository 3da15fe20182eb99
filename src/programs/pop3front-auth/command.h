/* command.h -- pop3front-auth: line-end and credential checks, pure
 * functions (no I/O, no allocation, no session).  Command splitting is
 * shared with pop3front-maildir (pop3/pop3cmd.h). */
#ifndef POP3AUTH_COMMAND_H
#define POP3AUTH_COMMAND_H

#include <stddef.h>
#include "pop3/pop3cmd.h"   /* struct pop3_cmdline, pop3_split, pop3_verb_is */

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

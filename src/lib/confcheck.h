/* confcheck.h -- the findings of a configuration check (`--check` of
 * mailfront, its modules and the stand-alone programs), one home for the
 * checks they share.
 *
 * A struct confcheck names who reports (the line prefix, e.g.
 * "pop3front-auth --check" or "backend qmail"), where settings come from
 * (getenv_fn; NULL = the process environment) and counts the problems.
 * Each check function looks at one thing, writes one line per problem on
 * stderr, `WHO: LABEL PATH: REASON` (LABEL names the setting, e.g.
 * "$QMAILQUEUE"; REASON is the system's), and returns 0
 * when it is fine, -1 when it reported a problem.  Permission checks use
 * the caller's identity (access(2)): a service that runs as another user
 * may still be refused.  No allocation that can fail silently: a line
 * that cannot be built is still counted.  Nothing here exits. */
#ifndef MF_CONFCHECK_H
#define MF_CONFCHECK_H
#include <stddef.h>

struct confcheck
{
  const char* who;                           /* prefix of every line */
  const char* (*getenv_fn)(const char* name);  /* NULL: getenv */
  unsigned problems;
};

/* $NAME through the check's environment (NULL when unset). */
const char* confcheck_env(const struct confcheck* c, const char* name);
/* Report and count one problem: `WHO: WHAT: DETAIL` (detail may be NULL). */
void confcheck_problem(struct confcheck* c, const char* what, const char* detail);
/* PATH is a directory (writable: and the caller may create files in it). */
int confcheck_dir(struct confcheck* c, const char* what, const char* path, int writable);
/* PATH is a readable regular file. */
int confcheck_file(struct confcheck* c, const char* what, const char* path);
/* PATH is a UNIX socket the caller may connect to. */
int confcheck_socket(struct confcheck* c, const char* what, const char* path);
/* PROG is an executable file.  SEARCH set: as execvp(3) finds it (with a
 * '/' relative to BASE, NULL: the working directory; without one on
 * $PATH); SEARCH 0: as execve(2) does (relative to BASE or the working
 * directory). */
int confcheck_program(struct confcheck* c, const char* what, const char* prog, const char* base, int search);
/* The N bytes at TOK are host, host:port, [address] or [address]:port
 * (NEED_PORT: the port is required, and without brackets the last colon
 * separates it), port 1 to 65535, host 1 to 255 bytes.  NULL when they
 * are, else what is wrong.  Names are not resolved. */
const char* confcheck_hostport(const char* tok, size_t n, int need_port);
/* Each of the NULL-terminated NAMES, when set and not empty, is a decimal
 * number (leading blanks, then digits only, no overflow): the numeric
 * settings' rule (lib/progenv.h) reads "2x" as 2, which is a typo here.
 * Returns the number of problems found. */
unsigned confcheck_numbers(struct confcheck* c, const char* const* names);
/* The last line: "WHO: configuration OK" or "WHO: N problem(s) found";
 * returns the exit status, 0 or 1. */
int confcheck_verdict(const struct confcheck* c);

#endif

/* check.h -- `--check` of the stand-alone programs (src/auth/check.c,
 * src/pop3/check.c).  ARGV is the program's own argument vector without
 * the --check option (argv[0] the program); each returns the exit status:
 * 0 nothing found, 1 problems (one line each on stderr, then the verdict),
 * 100 usage.  Nothing is served, nothing exits. */
#ifndef MF_AUTH_CHECK_H
#define MF_AUTH_CHECK_H
/* pop3front-auth --check CVM PROGRAM [ARGS...] */
int pop3front_auth_check(int argc, char** argv);
/* imapfront-auth --check PROGRAM [ARGS...] */
int imapfront_auth_check(int argc, char** argv);
/* pop3front-maildir --check [DEFAULT-MAILDIR] */
int pop3front_maildir_check(int argc, char** argv);
#endif

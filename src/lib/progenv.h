/* progenv.h -- small helpers shared by the stand-alone programs
 * (pop3front-auth, pop3front-maildir, imapfront-auth): a monotonic clock
 * and bounded numeric environment variables.  No allocation, no I/O. */
#ifndef MF_PROGENV_H
#define MF_PROGENV_H

/* Milliseconds of CLOCK_MONOTONIC. */
long long mf_mono_ms(void);
/* Leading decimal digits of $NAME (0 when unset or none), at most max. */
unsigned long mf_env_number(const char* name, unsigned long max);
/* $FIRST when set, else $SECOND (e.g. AUTH_TIMEOUT over TIMEOUT). */
unsigned long mf_env_override(const char* first, const char* second, unsigned long max);

#endif

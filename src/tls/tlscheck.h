/* tlscheck.h -- the TLS part of a configuration check (src/tls/tlscheck.c). */
#ifndef MF_TLSCHECK_H
#define MF_TLSCHECK_H
#include "lib/confcheck.h"
/* When $TLS_CERTFILE is set: $TLS_CERTFILE, $TLS_KEYFILE and $TLS_DH_PARAMS
 * (those set) are readable files, then the credentials load as a session
 * would load them (tls_prepare, through c->getenv_fn).  Returns the number
 * of problems reported (0 or 1 per file, 1 for the credentials). */
unsigned tls_check(struct confcheck* c);
#endif

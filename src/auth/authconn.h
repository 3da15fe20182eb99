/* authconn.h -- the client connection of the authentication front ends
 * (pop3front-auth, imapfront-auth), set up the same way for both.
 *
 * authconn_open: an ibuf on fd 0 and an obuf on fd 1 (4 KiB buffers),
 * each read or write bounded by $AUTH_TIMEOUT, else $TIMEOUT (default
 * 1200 s), the whole session by $AUTH_SESSION_TIMEOUT, else
 * $SESSION_TIMEOUT (default 86400 s) through *deadline_ms; replies are
 * flushed before every wait for input; *tls is tls_prepare()'s result
 * (NULL when TLS is not configured; a configuration error is logged).
 * Returns 0, or -1 when out of memory.  The caller frees the streams.
 * The limits are also used by the relay (tlsrelay_second_stage). */
#ifndef MF_AUTHCONN_H
#define MF_AUTHCONN_H

#include "tls/tls.h"
#include <mailfront/iobuf.h>

#define AUTHCONN_DEFAULT_TIMEOUT 1200UL
#define AUTHCONN_DEFAULT_SESSION_TIMEOUT 86400UL
#define AUTHCONN_MAX_TIMEOUT 2000000UL             /* seconds; keeps ms in an unsigned */
#define AUTHCONN_MAX_SESSION_TIMEOUT 315360000UL   /* ten years */

int authconn_open(ibuf* in, obuf* out, long long* deadline_ms, struct tls** tls);

#endif

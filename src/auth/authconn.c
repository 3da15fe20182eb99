/* authconn.c -- see authconn.h. */
#include "auth/authconn.h"
#include "lib/log.h"
#include "lib/progenv.h"
#include "lib/clock.h"
#include <stdlib.h>

int authconn_open(ibuf* in, obuf* out, long long* deadline_ms, struct tls** tls)
{
  unsigned long t = mf_env_override("AUTH_TIMEOUT", "TIMEOUT", AUTHCONN_MAX_TIMEOUT);
  unsigned long st = mf_env_override("AUTH_SESSION_TIMEOUT", "SESSION_TIMEOUT", AUTHCONN_MAX_SESSION_TIMEOUT);
  if (ibuf_init(in, 0, 4096) < 0 || obuf_init(out, 1, 4096) < 0) return -1;
  in->timeout_ms = out->timeout_ms = (unsigned)((t ? t : AUTHCONN_DEFAULT_TIMEOUT) * 1000);
  *deadline_ms = clock_mono_ms() + (long long)(st ? st : AUTHCONN_DEFAULT_SESSION_TIMEOUT) * 1000;
  in->deadline_ms = out->deadline_ms = deadline_ms;
  in->tie = out;
  str err = {0, 0, 0};
  *tls = tls_prepare(0, &err);
  if (!*tls && err.len) log_parts(0, err.s, 0, 0, 0);
  str_free(&err);
  return 0;
}

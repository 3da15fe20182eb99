/* tlscheck.c -- the TLS settings of a configuration check (API:
 * tlscheck.h): each file named must open (reported with the system's
 * reason), then GnuTLS must accept their content and $TLS_PRIORITY
 * (reported with tls_prepare's log line).  Shared by `mailfront --check`
 * and the stand-alone programs' --check. */
#include "tls/tlscheck.h"
#include "tls/tls.h"

static const char* const tls_files[] = { "TLS_CERTFILE", "TLS_KEYFILE", "TLS_DH_PARAMS" };
static const char* const tls_labels[] = { "$TLS_CERTFILE", "$TLS_KEYFILE", "$TLS_DH_PARAMS" };

unsigned tls_check(struct confcheck* c)
{
  const char* cert = confcheck_env(c, "TLS_CERTFILE");
  if (!cert || !*cert) return 0;
  unsigned before = c->problems;
  for (size_t i = 0; i < sizeof tls_files / sizeof *tls_files; i++) {
    const char* path = confcheck_env(c, tls_files[i]);
    if (path && *path) confcheck_file(c, tls_labels[i], path);
  }
  if (c->problems > before) return c->problems - before;
  str err = {0, 0, 0};
  struct tls* t = tls_prepare(c->getenv_fn, &err);
  if (t) tls_free(t);
  else confcheck_problem(c, "TLS", err.len ? err.s : "TLS cannot be prepared");
  str_free(&err);
  return c->problems - before;
}

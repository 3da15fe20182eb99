/* tls.c -- the TLS facade (API: tls.h).
 *
 * The GnuTLS implementation (src/tls/gnutls.c) lives in mailfront-tls.so in
 * the module directory ($MODULE_PATH, else MODULE_DIR) and is dlopen()ed by
 * tls_prepare() only when $TLS_CERTFILE is set and non-empty, so plain-text
 * sessions never load GnuTLS.  Every other function works on a session made
 * by tls_prepare(), so the implementation is loaded whenever they run with
 * a non-NULL session.  A missing or broken mailfront-tls.so is reported as
 * a `TLS init failed: ...` log line and TLS is not offered. */
#include "tls/tls.h"
#include <dlfcn.h>
#include <stdlib.h>

struct tls_impl
{
  struct tls* (*prepare)(const char* (*)(const char*), str*);
  int (*start)(struct tls*, ibuf*, obuf*, unsigned long*, str*);
  void (*get_info)(const struct tls*, struct tls_info*);
  int (*params)(const struct tls*, str*);
  int (*active)(const struct tls*);
  int (*close)(struct tls*);
  void (*free)(struct tls*);
  struct tls* (*client_start)(const struct tls_client_opts*, ibuf*, obuf*, str*);
  int (*preload)(const char* (*)(const char*), str*);
};

static struct tls_impl impl;
static int loaded;

static int load(str* err)
{
  if (loaded) return 0;
  const char* dir = getenv("MODULE_PATH");
  if (!dir || !*dir) dir = MODULE_DIR;
  str path = {0, 0, 0};
  if (!str_cat2s(&path, dir, "/mailfront-tls.so")) return -1;
  void* h = dlopen(path.s, RTLD_NOW | RTLD_LOCAL);
  str_free(&path);
  static const char* const names[] = {
    "tls_prepare", "tls_start", "tls_get_info", "tls_params", "tls_active", "tls_close", "tls_free",
    "tls_client_start", "tls_preload"
  };
  enum { NFUNCS = sizeof names / sizeof names[0] };
  void* f[NFUNCS];
  for (int i = 0; h && i < NFUNCS; i++)
    if (!(f[i] = dlsym(h, names[i]))) { h = 0; break; }
  if (!h) {
    const char* e = dlerror();
    if (!str_copys(err, "TLS init failed: cannot load mailfront-tls.so: ") || !str_cats(err, e ? e : "unknown error"))
      err->len = 0;
    return -1;
  }
  /* POSIX guarantees that dlsym's object pointers convert to functions. */
  *(void**)&impl.prepare = f[0];
  *(void**)&impl.start = f[1];
  *(void**)&impl.get_info = f[2];
  *(void**)&impl.params = f[3];
  *(void**)&impl.active = f[4];
  *(void**)&impl.close = f[5];
  *(void**)&impl.free = f[6];
  *(void**)&impl.client_start = f[7];
  *(void**)&impl.preload = f[8];
  loaded = 1;
  return 0;
}

struct tls* tls_prepare(const char* (*getenv_fn)(const char* name), str* err)
{
  const char* cert = getenv_fn ? getenv_fn("TLS_CERTFILE") : getenv("TLS_CERTFILE");  /* NULL: getenv */
  err->len = 0;
  if (!cert || !*cert) return 0;
  if (load(err) < 0) return 0;
  return impl.prepare(getenv_fn, err);
}

int tls_preload(const char* (*getenv_fn)(const char* name), str* err)
{
  const char* cert = getenv_fn ? getenv_fn("TLS_CERTFILE") : getenv("TLS_CERTFILE");
  err->len = 0;
  if (!cert || !*cert) return 0;
  if (load(err) < 0) return -1;
  return impl.preload(getenv_fn, err);
}

int tls_start(struct tls* t, ibuf* in, obuf* out, unsigned long* dropped, str* err)
{
  if (!t) { str_copys(err, "TLS handshake failed: not configured"); return -1; }
  return impl.start(t, in, out, dropped, err);
}

void tls_get_info(const struct tls* t, struct tls_info* info)
{
  if (t) { impl.get_info(t, info); return; }
  info->protocol = info->keyex = info->cipher = info->mac = "unknown";
}

int tls_params(const struct tls* t, str* out) { return t ? impl.params(t, out) : (str_copys(out, "unknown unknown unknown unknown") ? 0 : -1); }
int tls_active(const struct tls* t) { return t ? impl.active(t) : 0; }
int tls_close(struct tls* t) { return t ? impl.close(t) : -1; }
void tls_free(struct tls* t) { if (t) impl.free(t); }

struct tls* tls_client_start(const struct tls_client_opts* o, ibuf* in, obuf* out, str* err)
{
  err->len = 0;
  if (load(err) < 0) return 0;
  return impl.client_start(o, in, out, err);
}

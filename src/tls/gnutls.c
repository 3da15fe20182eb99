/* gnutls.c -- server-side TLS with GnuTLS over ibuf/obuf (API: tls/tls.h).
 *
 * Built as its own shared object, mailfront-tls.so, loaded by the facade
 * src/tls/tls.c only when TLS is configured: GnuTLS and its dependencies
 * cost several million instructions to load and initialise, which every
 * plain-text connection would otherwise pay.  Linked with -Bsymbolic so its
 * own calls never bind to the facade's functions of the same names.
 *
 * Contract: protocols.md "Built-in STARTTLS (2.22; GnuTLS)".  The GnuTLS
 * session reads and writes the connection's descriptors through our own
 * pull/push functions, which wait with poll(2) no longer than the stream's
 * per-operation timeout and the session deadline (ETIMEDOUT otherwise), so
 * neither the handshake nor any later record I/O can block forever.  After
 * the handshake an io_transport is installed on both streams; protocols
 * keep using ibuf/obuf unchanged.  Errors are returned as log lines.
 * tls_start() sets TCP_NODELAY on a TCP connection (see there).
 * tls_client_start() is the client side, for the relay back ends (STARTTLS
 * to the next hop, with verification or SHA-256 pinning).
 * tls_preload() (a listener, once and on SIGHUP) loads the credentials
 * before the children fork; tls_prepare() then shares them (and a session
 * ticket key) when its configuration is the same, else loads its own. */
#include "tls/tls.h"
#include "lib/clock.h"
#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct tls
{
  gnutls_certificate_credentials_t cred;
  gnutls_priority_t prio;
  gnutls_dh_params_t dh;
  gnutls_session_t session;
  int compat;
  int shared;                  /* cred/prio/dh belong to the preloaded set */
  int active;
  int rfd, wfd;
  ibuf* in;                    /* the streams, for timeouts and deadline */
  obuf* out;
  struct io_transport tr;
};

static int global_ok;

/* The credentials tls_preload() made (a listener's parent, before it
 * forks): sessions whose configuration is the same (`id`) share them, and
 * the session ticket key, so a client may resume in another child. */
struct preload
{
  char* id;                    /* cert NUL key NUL priority NUL dh */
  size_t idlen;
  gnutls_certificate_credentials_t cred;
  gnutls_priority_t prio;
  gnutls_dh_params_t dh;
  gnutls_datum_t ticket_key;
};
static struct preload* preloaded;

/* Wait for fd like iobuf.c does: 1 ready, -1 with errno (ETIMEDOUT). */
static int wait_fd(int fd, short events, unsigned timeout_ms, const long long* deadline)
{
  long long end = timeout_ms ? clock_mono_ms() + timeout_ms : -1;
  if (deadline && *deadline > 0 && (end < 0 || *deadline < end)) end = *deadline;
  for (;;) {
    int wait = -1;
    if (end >= 0) {
      long long left = end - clock_mono_ms();
      if (left <= 0) { errno = ETIMEDOUT; return -1; }
      wait = left > 0x7fffffff ? 0x7fffffff : (int)left;
    }
    struct pollfd p = { fd, events, 0 };
    int r = poll(&p, 1, wait);
    if (r > 0) return 1;
    if (r < 0 && errno != EINTR) return -1;
  }
}

static ssize_t pull(gnutls_transport_ptr_t ptr, void* buf, size_t len)
{
  struct tls* t = ptr;
  for (;;) {
    if (wait_fd(t->rfd, POLLIN, t->in->timeout_ms, t->in->deadline_ms) < 0) {
      if (errno == ETIMEDOUT) t->in->timedout = 1;
      gnutls_transport_set_errno(t->session, errno);
      return -1;
    }
    ssize_t r = read(t->rfd, buf, len);
    if (r >= 0) return r;
    if (errno == EINTR || errno == EAGAIN) continue;
    gnutls_transport_set_errno(t->session, errno);
    return -1;
  }
}

static ssize_t push(gnutls_transport_ptr_t ptr, const void* buf, size_t len)
{
  struct tls* t = ptr;
  for (;;) {
    if (wait_fd(t->wfd, POLLOUT, t->out->timeout_ms, t->out->deadline_ms) < 0) {
      if (errno == ETIMEDOUT) t->out->timedout = 1;
      gnutls_transport_set_errno(t->session, errno);
      return -1;
    }
    ssize_t r = write(t->wfd, buf, len);
    if (r >= 0) return r;
    if (errno == EINTR || errno == EAGAIN) continue;
    gnutls_transport_set_errno(t->session, errno);
    return -1;
  }
}

/* ---- the io_transport installed after the handshake ---- */

static long tr_read(void* ctx, char* buf, unsigned long len)
{
  struct tls* t = ctx;
  for (;;) {
    ssize_t r = gnutls_record_recv(t->session, buf, len);
    if (r >= 0) return (long)r;
    switch (r) {
    case GNUTLS_E_INTERRUPTED:
    case GNUTLS_E_AGAIN:
      errno = EAGAIN;
      return -1;
    case GNUTLS_E_REHANDSHAKE:           /* refused: we never renegotiate */
      gnutls_alert_send(t->session, GNUTLS_AL_WARNING, GNUTLS_A_NO_RENEGOTIATION);
      continue;
    case GNUTLS_E_PREMATURE_TERMINATION: /* peer closed without close_notify */
      return 0;
    default:
      if (gnutls_error_is_fatal((int)r) == 0) continue;
      if (!t->in->timedout) errno = EIO;
      else errno = ETIMEDOUT;
      return -1;
    }
  }
}

static long tr_write(void* ctx, const char* buf, unsigned long len)
{
  struct tls* t = ctx;
  for (;;) {
    ssize_t r = gnutls_record_send(t->session, buf, len);
    if (r >= 0) return (long)r;
    if (r == GNUTLS_E_INTERRUPTED || r == GNUTLS_E_AGAIN) continue;  /* bounded by push */
    errno = t->out->timedout ? ETIMEDOUT : EIO;
    return -1;
  }
}

static int tr_pending(void* ctx)
{
  struct tls* t = ctx;
  return gnutls_record_check_pending(t->session) > 0;
}

/* ---- set-up ---- */

static int fail(str* err, const char* prefix, int code)
{
  err->len = 0;
  if (!str_cat2s(err, prefix, gnutls_strerror(code))) err->len = 0;
  return -1;
}

static const char* get(const char* (*getenv_fn)(const char*), const char* name)
{
  return getenv_fn ? getenv_fn(name) : getenv(name);
}

/* DH parameters from a PEM PKCS#3 file.  A file that cannot be opened is
 * reported in the system's words ("No such file or directory"), as the
 * original does; GnuTLS would only say "Error while reading file.". */
static int load_dh(struct tls* t, const char* file, str* err)
{
  gnutls_datum_t data = { 0, 0 };
  int fd = open(file, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    err->len = 0;
    if (!str_cat2s(err, "TLS error reading DH params: ", strerror(errno))) err->len = 0;
    return -1;
  }
  close(fd);
  int r = gnutls_load_file(file, &data);
  if (r < 0) return fail(err, "TLS error reading DH params: ", r);
  r = gnutls_dh_params_init(&t->dh);
  if (r >= 0) r = gnutls_dh_params_import_pkcs3(t->dh, &data, GNUTLS_X509_FMT_PEM);
  gnutls_free(data.data);
  if (r < 0) return fail(err, "TLS error parsing DH params: ", r);
  gnutls_certificate_set_dh_params(t->cred, t->dh);
  return 0;
}

/* The configuration as read from the environment. */
struct conf { const char *cert, *key, *prio, *dh; int compat; };

/* 0 not configured, 1 configured. */
static int read_conf(const char* (*getenv_fn)(const char*), struct conf* c)
{
  c->cert = get(getenv_fn, "TLS_CERTFILE");
  if (!c->cert || !*c->cert) return 0;
  c->key = get(getenv_fn, "TLS_KEYFILE");
  if (!c->key) c->key = c->cert;
  if (!*c->key) return 0;
  c->prio = get(getenv_fn, "TLS_PRIORITY");
  if (!c->prio || !*c->prio) c->prio = "NORMAL";
  c->dh = get(getenv_fn, "TLS_DH_PARAMS");
  if (!c->dh) c->dh = "";
  c->compat = get(getenv_fn, "TLS_COMPAT") != 0;
  return 1;
}

/* "cert NUL key NUL prio NUL dh" in *id (malloc'ed); -1 out of memory. */
static int conf_id(const struct conf* c, char** id, size_t* len)
{
  size_t l1 = strlen(c->cert) + 1, l2 = strlen(c->key) + 1, l3 = strlen(c->prio) + 1, l4 = strlen(c->dh);
  *len = l1 + l2 + l3 + l4;
  if (!(*id = malloc(*len + 1))) return -1;
  memcpy(*id, c->cert, l1);
  memcpy(*id + l1, c->key, l2);
  memcpy(*id + l1 + l2, c->prio, l3);
  memcpy(*id + l1 + l2 + l3, c->dh, l4 + 1);
  return 0;
}

static int global_init(str* err)
{
  int r;
  if (global_ok) return 0;
  if ((r = gnutls_global_init()) < 0) return fail(err, "TLS init failed: ", r);
  global_ok = 1;
  return 0;
}

/* Certificate, key, DH parameters and priorities into t. */
static int load_creds(struct tls* t, const struct conf* c, str* err)
{
  int r;
  if ((r = gnutls_certificate_allocate_credentials(&t->cred)) < 0
      || (r = gnutls_certificate_set_x509_key_file(t->cred, c->cert, c->key, GNUTLS_X509_FMT_PEM)) < 0)
    return fail(err, "TLS init failed: ", r);
  if (*c->dh && load_dh(t, c->dh, err) < 0) return -1;
  const char* where = 0;
  if ((r = gnutls_priority_init(&t->prio, c->prio, &where)) < 0) {
    t->prio = 0;
    return fail(err, "TLS priority error: ", r);
  }
  return 0;
}

/* GnuTLS initialised once, and an empty session struct; NULL with *err. */
static struct tls* tls_new(str* err)
{
  if (global_init(err) < 0) return 0;
  struct tls* t = calloc(1, sizeof *t);
  if (!t) { fail(err, "TLS init failed: ", GNUTLS_E_MEMORY_ERROR); return 0; }
  t->rfd = t->wfd = -1;
  return t;
}

/* The priorities and the GnuTLS session (side: GNUTLS_SERVER/CLIENT) with
 * t's credentials (the client's; a server's come from load_creds or the
 * preloaded set).  0, or -1 with the log line in *err. */
static int new_session(struct tls* t, const char* prio, unsigned side, str* err)
{
  const char* where = 0;
  int r;
  if ((r = gnutls_priority_init(&t->prio, prio, &where)) < 0) {
    t->prio = 0;
    return fail(err, "TLS priority error: ", r);
  }
  if ((r = gnutls_init(&t->session, side)) < 0
      || (r = gnutls_priority_set(t->session, t->prio)) < 0
      || (r = gnutls_credentials_set(t->session, GNUTLS_CRD_CERTIFICATE, t->cred)) < 0)
    return fail(err, "TLS init failed: ", r);
  return 0;
}

static void preload_free(struct preload* p)
{
  if (!p) return;
  if (p->prio) gnutls_priority_deinit(p->prio);
  if (p->cred) gnutls_certificate_free_credentials(p->cred);
  if (p->dh) gnutls_dh_params_deinit(p->dh);
  if (p->ticket_key.data) gnutls_free(p->ticket_key.data);
  free(p->id);
  free(p);
}

int tls_preload(const char* (*getenv_fn)(const char* name), str* err)
{
  struct conf c;
  err->len = 0;
  if (err->s) err->s[0] = 0;
  if (!read_conf(getenv_fn, &c)) return 0;
  if (global_init(err) < 0) return -1;
  struct preload* p = calloc(1, sizeof *p);
  struct tls t;
  memset(&t, 0, sizeof t);
  if (!p || conf_id(&c, &p->id, &p->idlen) < 0) {
    free(p);
    return fail(err, "TLS init failed: ", GNUTLS_E_MEMORY_ERROR);
  }
  int r = load_creds(&t, &c, err);
  p->cred = t.cred;
  p->prio = t.prio;
  p->dh = t.dh;
  if (r == 0 && (r = gnutls_session_ticket_key_generate(&p->ticket_key)) < 0) r = fail(err, "TLS init failed: ", r);
  if (r < 0) { preload_free(p); return -1; }   /* the previous set stays */
  preload_free(preloaded);
  preloaded = p;
  return 1;
}

struct tls* tls_prepare(const char* (*getenv_fn)(const char* name), str* err)
{
  struct conf c;
  err->len = 0;
  if (err->s) err->s[0] = 0;
  if (!read_conf(getenv_fn, &c)) return 0;
  int r;
  struct tls* t = tls_new(err);
  if (!t) return 0;
  t->compat = c.compat;
  char* id = 0;
  size_t idlen = 0;
  if (preloaded && conf_id(&c, &id, &idlen) == 0 && idlen == preloaded->idlen
      && memcmp(id, preloaded->id, idlen) == 0) {
    t->cred = preloaded->cred;
    t->prio = preloaded->prio;
    t->shared = 1;
  }
  free(id);
  if (!t->shared && load_creds(t, &c, err) < 0) goto bad;
  if ((r = gnutls_init(&t->session, GNUTLS_SERVER)) < 0
      || (r = gnutls_priority_set(t->session, t->prio)) < 0
      || (r = gnutls_credentials_set(t->session, GNUTLS_CRD_CERTIFICATE, t->cred)) < 0
      || (t->shared && (r = gnutls_session_ticket_enable_server(t->session, &preloaded->ticket_key)) < 0)) {
    fail(err, "TLS init failed: ", r);
    goto bad;
  }
  gnutls_certificate_server_set_request(t->session, GNUTLS_CERT_IGNORE);
  if (t->compat) gnutls_session_enable_compatibility_mode(t->session);
  return t;
bad:
  tls_free(t);
  return 0;
}

/* Attach t to the streams' descriptors and run the handshake (either
 * side).  0, or the negative GnuTLS code with the log line in *err. */
static int handshake(struct tls* t, ibuf* in, obuf* out, str* err)
{
  t->in = in;
  t->out = out;
  t->rfd = in->fd;
  t->wfd = out->fd;
  /* Each obuf flush becomes one TLS record in one write; without
   * TCP_NODELAY a record sent after an unacknowledged one (a handshake
   * flight, a session ticket) waits for the peer's delayed ACK (~40 ms).
   * Not a socket (pipes): the call fails harmlessly. */
  int one = 1;
  (void)setsockopt(t->wfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  gnutls_transport_set_ptr(t->session, t);
  gnutls_transport_set_pull_function(t->session, pull);
  gnutls_transport_set_push_function(t->session, push);
  int r;
  do r = gnutls_handshake(t->session);
  while (r < 0 && !gnutls_error_is_fatal(r));
  if (r < 0) {
    if (in->timedout || out->timedout) str_copys(err, "TLS handshake failed: timed out");
    else fail(err, "TLS handshake failed: ", r);
    return r;
  }
  return 0;
}

/* After the handshake: the TLS transport on both streams. */
static void install(struct tls* t, ibuf* in, obuf* out)
{
  t->tr.read = tr_read;
  t->tr.write = tr_write;
  t->tr.pending = tr_pending;
  t->tr.ctx = t;
  in->tr = &t->tr;
  out->tr = &t->tr;
  /* Anything the I/O layer saw before is gone: start clean. */
  in->head = in->tail = 0;
  in->eof = 0;
  t->active = 1;
}

int tls_start(struct tls* t, ibuf* in, obuf* out, unsigned long* dropped, str* err)
{
  err->len = 0;
  if (t->active || t->in) { str_copys(err, "TLS handshake failed: already started"); return -1; }
  /* The go-ahead reply must leave now, in plaintext, even though the I/O
   * layer would hold it back while pipelined input is buffered. */
  if (obuf_flush(out) < 0) { str_copys(err, "TLS handshake failed: cannot send reply"); return -1; }
  unsigned long n = ibuf_discard(in);
  if (dropped) *dropped = n;
  if (handshake(t, in, out, err) < 0) return -1;
  install(t, in, out);
  return 0;
}

static const char* nz(const char* s) { return s && *s ? s : "unknown"; }

void tls_get_info(const struct tls* t, struct tls_info* info)
{
  gnutls_session_t s = t->session;
  info->protocol = nz(gnutls_protocol_get_name(gnutls_protocol_get_version(s)));
  info->keyex = nz(gnutls_kx_get_name(gnutls_kx_get(s)));
  info->cipher = nz(gnutls_cipher_get_name(gnutls_cipher_get(s)));
  info->mac = nz(gnutls_mac_get_name(gnutls_mac_get(s)));
}

int tls_params(const struct tls* t, str* out)
{
  struct tls_info i;
  tls_get_info(t, &i);
  out->len = 0;
  return str_cat3s(out, i.protocol, " ", i.keyex) && str_cat3s(out, " ", i.cipher, " ")
    && str_cats(out, i.mac) ? 0 : -1;
}

int tls_active(const struct tls* t) { return t && t->active ? 1 : 0; }

int tls_close(struct tls* t)
{
  if (!t || !t->active) return -1;
  if (t->active == 2) return 0;
  int r = obuf_flush(t->out);
  t->active = 2;               /* closed: still counts as active */
  if (r < 0 || t->out->error || t->out->timedout) return -1;
  int g;
  do g = gnutls_bye(t->session, GNUTLS_SHUT_WR);
  while (g == GNUTLS_E_AGAIN || g == GNUTLS_E_INTERRUPTED);
  return g < 0 ? -1 : 0;
}

void tls_free(struct tls* t)
{
  if (!t) return;
  if (t->active == 1 && t->out && !t->out->error && !t->out->timedout)
    gnutls_bye(t->session, GNUTLS_SHUT_WR);
  if (t->in && t->in->tr == &t->tr) t->in->tr = 0;
  if (t->out && t->out->tr == &t->tr) t->out->tr = 0;
  if (t->session) gnutls_deinit(t->session);
  if (!t->shared) {
    if (t->prio) gnutls_priority_deinit(t->prio);
    if (t->cred) gnutls_certificate_free_credentials(t->cred);
    if (t->dh) gnutls_dh_params_deinit(t->dh);
  }
  free(t);
}

/* ---- client mode (tls_client_start, for the relay back ends) ---- */

static int hexval(char c)
{
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Is the 32-byte digest d one of the hex pins in the list? */
static int pin_listed(const char* pins, const unsigned char* d)
{
  const char* p = pins;
  while (*p) {
    while (*p == ' ' || *p == ',' || *p == '\t') p++;
    if (!*p) break;
    unsigned char v[32];
    int n = 0, half = -1, ok = 1;
    for (; *p && *p != ' ' && *p != ',' && *p != '\t'; p++) {
      if (*p == ':') continue;
      int h = hexval(*p);
      if (h < 0 || n >= 32) { ok = 0; continue; }
      if (half < 0) half = h;
      else { v[n++] = (unsigned char)(half << 4 | h); half = -1; }
    }
    if (ok && n == 32 && half < 0 && memcmp(v, d, 32) == 0) return 1;
  }
  return 0;
}

/* SHA-256 of the peer certificate and of its public key against the pins. */
static int check_pins(gnutls_session_t s, const char* pins, str* err)
{
  unsigned n = 0;
  const gnutls_datum_t* certs = gnutls_certificate_get_peers(s, &n);
  unsigned char d[32];
  if (!certs || n == 0) { str_copys(err, "TLS pin check failed: no server certificate"); return -1; }
  if (gnutls_hash_fast(GNUTLS_DIG_SHA256, certs[0].data, certs[0].size, d) == 0 && pin_listed(pins, d)) return 0;
  gnutls_x509_crt_t crt;
  gnutls_pubkey_t key;
  gnutls_datum_t spki = { 0, 0 };
  int ok = 0;
  if (gnutls_x509_crt_init(&crt) == 0) {
    if (gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER) == 0 && gnutls_pubkey_init(&key) == 0) {
      if (gnutls_pubkey_import_x509(key, crt, 0) == 0 && gnutls_pubkey_export2(key, GNUTLS_X509_FMT_DER, &spki) == 0) {
        ok = gnutls_hash_fast(GNUTLS_DIG_SHA256, spki.data, spki.size, d) == 0 && pin_listed(pins, d);
        gnutls_free(spki.data);
      }
      gnutls_pubkey_deinit(key);
    }
    gnutls_x509_crt_deinit(crt);
  }
  if (!ok) str_copys(err, "TLS pin check failed: the server certificate matches no pin");
  return ok ? 0 : -1;
}

/* SNI carries host names only, never address literals (RFC 6066 3). */
static int is_ip_literal(const char* s)
{
  unsigned char a[16];
  return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

struct tls* tls_client_start(const struct tls_client_opts* o, ibuf* in, obuf* out, str* err)
{
  int r;
  err->len = 0;
  struct tls* t = tls_new(err);
  if (!t) return 0;
  if ((r = gnutls_certificate_allocate_credentials(&t->cred)) < 0) { fail(err, "TLS init failed: ", r); goto bad; }
  if (o->verify) {
    r = o->cafile ? gnutls_certificate_set_x509_trust_file(t->cred, o->cafile, GNUTLS_X509_FMT_PEM)
                  : gnutls_certificate_set_x509_system_trust(t->cred);
    if (r <= 0) { if (r == 0) r = GNUTLS_E_NO_CERTIFICATE_FOUND; fail(err, "TLS cannot load trust anchors: ", r); goto bad; }
  }
  if (new_session(t, o->priority ? o->priority : "NORMAL", GNUTLS_CLIENT, err) < 0) goto bad;
  if (o->name && *o->name && !is_ip_literal(o->name))
    gnutls_server_name_set(t->session, GNUTLS_NAME_DNS, o->name, strlen(o->name));
  if (o->verify) gnutls_session_set_verify_cert(t->session, o->name && *o->name ? o->name : 0, 0);
  if (obuf_flush(out) < 0) { str_copys(err, "TLS handshake failed: cannot send"); goto bad; }
  (void)ibuf_discard(in);
  r = handshake(t, in, out, err);
  if (r == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR) {
    gnutls_datum_t msg = { 0, 0 };
    unsigned st = gnutls_session_get_verify_cert_status(t->session);
    if (gnutls_certificate_verification_status_print(st, GNUTLS_CRT_X509, &msg, 0) == 0) {
      str_copys(err, "TLS certificate verification failed: ");
      str_catb(err, (const char*)msg.data, msg.size);
      gnutls_free(msg.data);
    }
  }
  if (r < 0) goto bad;
  if (o->pins && *o->pins && check_pins(t->session, o->pins, err) < 0) goto bad;
  install(t, in, out);
  return t;
bad:
  tls_free(t);
  return 0;
}

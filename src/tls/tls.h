/* tls.h -- server-side TLS (GnuTLS) over the ibuf/obuf I/O layer.
 *
 * Behaves as the original mailfront 2.22's built-in STARTTLS (GnuTLS);
 * documented for administrators in docs/tls.md.  Used by the
 * SMTP protocol (STARTTLS, $TLS_IMMEDIATE) and by pop3front-auth (STLS) and
 * imapfront-auth (STARTTLS).  Linking anything that calls these functions
 * needs -lgnutls (mailfront itself already links src/lib whole).
 *
 * USE (any protocol):
 *
 *   str err = {0, 0, 0};
 *   struct tls* t = tls_prepare(getenv_fn, &err);   // at start-up
 *   if (!t && err.len) log the line err.s;         // TLS not offered
 *   ...  advertise STARTTLS/STLS only while t != NULL ...
 *   on the command: write the "go ahead" reply into out, then
 *   if (tls_start(t, in, out, &dropped, &err) != 0) { log err.s; exit 1; }
 *   // now in/out are encrypted; forget protocol state (RFC 3207 4.2,
 *   // RFC 2595 4); if dropped > 0 the client pipelined after the command.
 *
 * CONFIGURATION (read by tls_prepare through getenv_fn, NULL = getenv):
 *   TLS_CERTFILE   PEM certificate chain; unset or empty: TLS disabled
 *   TLS_KEYFILE    PEM private key; unset: the certificate file;
 *                  set but empty: TLS disabled
 *   TLS_PRIORITY   GnuTLS priority string, default "NORMAL"
 *   TLS_DH_PARAMS  PEM PKCS#3 DH parameter file (optional)
 *   TLS_COMPAT     set (even empty): GnuTLS compatibility mode
 *
 * ERRORS are values: functions return NULL/-1 and put one log line (no
 * newline, no program prefix) into *err, e.g. "TLS init failed: Error
 * while reading file.", "TLS priority error: ...", "TLS error reading DH
 * params: ...", "TLS error parsing DH params: ...", "TLS handshake failed:
 * ...".  Nothing here exits or writes to the log itself.
 *
 * DEADLINES: the handshake and every later encrypted read/write wait at
 * most in->timeout_ms / out->timeout_ms per operation and never past
 * *in->deadline_ms (the session deadline), exactly like plain ibuf/obuf.
 *
 * LIFETIME: the struct tls must outlive the streams it is attached to (the
 * exit handler still flushes through it); mailfront never frees it.
 * tls_free() is for programs that close the streams first. */
#ifndef MF_TLS_H
#define MF_TLS_H

#include <mailfront/iobuf.h>
#include <mailfront/str.h>

struct tls;   /* opaque: credentials, priorities, the GnuTLS session */

/* Read the configuration and load credentials/priorities.  Returns a
 * session ready for tls_start(), or NULL: with err->len == 0 when TLS is
 * simply not configured, else with the log line in *err. */
struct tls* tls_prepare(const char* (*getenv_fn)(const char* name), str* err);

/* For a listener that forks a child per session: load the credentials
 * (and GnuTLS itself) now, in the parent, so that every later
 * tls_prepare() with the same TLS_CERTFILE/TLS_KEYFILE/TLS_PRIORITY/
 * TLS_DH_PARAMS shares them (plus one session ticket key) instead of
 * reading the files again.  Called again (SIGHUP), it replaces them only
 * when the new ones load.  1 loaded, 0 TLS not configured (nothing
 * changes), -1 with the log line in *err (the previous set stays).  Not
 * for use while sessions run in this process (they may hold the old
 * set). */
int tls_preload(const char* (*getenv_fn)(const char* name), str* err);

/* Switch the connection to TLS: flush `out` (the go-ahead reply, in
 * plaintext), discard everything buffered in `in` (bytes pipelined after
 * the command must never be executed inside TLS: CVE-2011-0411; the count
 * goes to *dropped if dropped != NULL), run the server handshake on
 * in->fd / out->fd, then install the TLS transport on both streams
 * (in->tr, out->tr).  0 ok; -1 with the log line in *err ("TLS handshake
 * failed: ..."); the streams are then unusable.  Call at most once. */
int tls_start(struct tls* t, ibuf* in, obuf* out, unsigned long* dropped, str* err);

/* After a successful tls_start: the negotiated parameters as names
 * (static strings, never NULL; "unknown" when GnuTLS has no name). */
struct tls_info
{
  const char* protocol;   /* e.g. "TLS1.3" */
  const char* keyex;      /* e.g. "ECDHE-RSA" */
  const char* cipher;     /* e.g. "AES-256-GCM" */
  const char* mac;        /* e.g. "AEAD" */
};
void tls_get_info(const struct tls* t, struct tls_info* info);

/* "PROTO KX CIPHER MAC" (the four names joined by spaces) into *out, for
 * the log line "TLS handshake: ..." and the session item tls_params.
 * Returns 0, or -1 when out of memory. */
int tls_params(const struct tls* t, str* out);

/* 1 once tls_start() has succeeded. */
int tls_active(const struct tls* t);

/* After the last reply (QUIT): flush `out` and send the TLS close alert
 * (close_notify), best effort, bounded by the deadlines.  The streams stay
 * attached; later writes fail.  Returns 0 or -1. */
int tls_close(struct tls* t);

/* Send the TLS close alert (best effort, bounded by the deadlines),
 * detach from the streams and free everything.  NULL is accepted. */
void tls_free(struct tls* t);

/* CLIENT MODE (the relay back ends' STARTTLS to the next hop).  After the
 * server's 220 to STARTTLS: discard anything buffered in `in`, run the
 * client handshake on in->fd/out->fd (same deadlines as above) and install
 * the TLS transport on both streams.  verify: the chain must verify
 * against cafile (NULL: the system trust store) and match `name` (also
 * sent as SNI when it is a host name).  pins (NULL = none): hex SHA-256
 * digests, separated by spaces or commas (colons inside are ignored), of
 * the server certificate or of its public key (SubjectPublicKeyInfo); one
 * must match.  priority NULL: "NORMAL".  Returns the session (free it with
 * tls_free) or NULL with the log line in *err. */
struct tls_client_opts
{
  int verify;
  const char* cafile;
  const char* name;
  const char* pins;
  const char* priority;
};
struct tls* tls_client_start(const struct tls_client_opts* o, ibuf* in, obuf* out, str* err);

#endif

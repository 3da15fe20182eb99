/* Unit tests: tls/tls.c (tls.h) -- configuration errors as values, the
 * handshake over a socketpair against a real GnuTLS client in a child
 * process, the discard of pipelined plaintext (CVE-2011-0411), encrypted
 * ibuf/obuf I/O through the transport, the parameter names, and the
 * handshake deadline.  The key and self-signed certificate are generated
 * here with GnuTLS into a temporary directory. */
#include "tap.h"
#include "../../src/tls/gnutls.c"
#include <gnutls/x509.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/wait.h>

static char dir[64], certfile[128], keyfile[128];
static const char* env[16][2];

static void setenv_t(const char* n, const char* v)
{
  for (int i = 0; i < 16; i++)
    if (!env[i][0] || strcmp(env[i][0], n) == 0) { env[i][0] = n; env[i][1] = v; return; }
}
static void clearenv_t(void) { memset(env, 0, sizeof env); }
static const char* getenv_t(const char* n)
{
  for (int i = 0; i < 16 && env[i][0]; i++)
    if (strcmp(env[i][0], n) == 0) return env[i][1];
  return 0;
}

static int write_datum(const char* path, const gnutls_datum_t* d)
{
  FILE* f = fopen(path, "wb");
  if (!f) return -1;
  int ok = fwrite(d->data, 1, d->size, f) == d->size;
  return fclose(f) == 0 && ok ? 0 : -1;
}

static int make_cert(void)
{
  gnutls_x509_privkey_t key;
  gnutls_x509_crt_t crt;
  gnutls_datum_t out;
  unsigned char serial[1] = { 1 };
  time_t now = time(0);
  if (gnutls_x509_privkey_init(&key) < 0
      || gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0) < 0
      || gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &out) < 0
      || write_datum(keyfile, &out) < 0) return -1;
  gnutls_free(out.data);
  if (gnutls_x509_crt_init(&crt) < 0
      || gnutls_x509_crt_set_version(crt, 3) < 0
      || gnutls_x509_crt_set_serial(crt, serial, 1) < 0
      || gnutls_x509_crt_set_activation_time(crt, now - 60) < 0
      || gnutls_x509_crt_set_expiration_time(crt, now + 86400) < 0
      || gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, "mx.test", 7) < 0
      || gnutls_x509_crt_set_key(crt, key) < 0
      || gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0) < 0
      || gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &out) < 0
      || write_datum(certfile, &out) < 0) return -1;
  gnutls_free(out.data);
  gnutls_x509_crt_deinit(crt);
  gnutls_x509_privkey_deinit(key);
  return 0;
}

/* The client: handshake, send a line, expect the server's line back, then
 * close.  Exit status 0 when everything matched. */
static int client(int fd, const char* prio)
{
  gnutls_session_t s;
  gnutls_certificate_credentials_t cred;
  char buf[256];
  if (gnutls_certificate_allocate_credentials(&cred) < 0 || gnutls_init(&s, GNUTLS_CLIENT) < 0
      || gnutls_priority_set_direct(s, prio, 0) < 0
      || gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred) < 0) return 2;
  gnutls_transport_set_int(s, fd);
  gnutls_handshake_set_timeout(s, 10000);
  int r;
  do r = gnutls_handshake(s);
  while (r < 0 && !gnutls_error_is_fatal(r));
  if (r < 0) return 3;
  if (gnutls_record_send(s, "hello tls\r\n", 11) != 11) return 4;
  ssize_t n = 0, k;
  while (n < 13 && (k = gnutls_record_recv(s, buf + n, sizeof buf - (size_t)n)) > 0) n += k;
  if (n != 13 || memcmp(buf, "world, sealed", 13) != 0) return 5;
  gnutls_bye(s, GNUTLS_SHUT_WR);
  gnutls_deinit(s);
  gnutls_certificate_free_credentials(cred);
  return 0;
}

static void test_config_errors(void)
{
  str err = {0, 0, 0};
  clearenv_t();
  CHECK(tls_prepare(getenv_t, &err) == 0 && err.len == 0, "no TLS_CERTFILE: not configured, no error");
  setenv_t("TLS_CERTFILE", "");
  CHECK(tls_prepare(getenv_t, &err) == 0 && err.len == 0, "empty TLS_CERTFILE: not configured");
  setenv_t("TLS_CERTFILE", certfile);
  setenv_t("TLS_KEYFILE", "");
  CHECK(tls_prepare(getenv_t, &err) == 0 && err.len == 0, "empty TLS_KEYFILE: not configured");
  setenv_t("TLS_CERTFILE", "/nonexistent/cert.pem");
  setenv_t("TLS_KEYFILE", keyfile);
  CHECK(tls_prepare(getenv_t, &err) == 0 && err.len > 17 && strncmp(err.s, "TLS init failed: ", 17) == 0,
        "missing certificate: TLS init failed: ...");
  setenv_t("TLS_CERTFILE", certfile);
  setenv_t("TLS_KEYFILE", certfile);
  CHECK(tls_prepare(getenv_t, &err) == 0 && err.s && strncmp(err.s, "TLS init failed: ", 17) == 0,
        "certificate without key: TLS init failed");
  setenv_t("TLS_KEYFILE", keyfile);
  setenv_t("TLS_PRIORITY", "BOGUS:+NOTHING");
  CHECK(tls_prepare(getenv_t, &err) == 0 && err.s && strncmp(err.s, "TLS priority error: ", 20) == 0,
        "bad priority: TLS priority error: ...");
  setenv_t("TLS_PRIORITY", "NORMAL");
  setenv_t("TLS_DH_PARAMS", "/nonexistent/dh.pem");
  CHECK(tls_prepare(getenv_t, &err) == 0 && err.s && strncmp(err.s, "TLS error reading DH params: ", 29) == 0,
        "missing DH file: TLS error reading DH params: ...");
  setenv_t("TLS_DH_PARAMS", certfile);
  CHECK(tls_prepare(getenv_t, &err) == 0 && err.s && strncmp(err.s, "TLS error parsing DH params: ", 29) == 0,
        "not a DH file: TLS error parsing DH params: ...");
  setenv_t("TLS_DH_PARAMS", "");
  setenv_t("TLS_COMPAT", "");
  struct tls* t = tls_prepare(getenv_t, &err);
  CHECK(t != 0 && err.len == 0, "good configuration (empty DH, compat): prepared");
  CHECK(t && t->compat == 1, "TLS_COMPAT set but empty: compatibility mode");
  CHECK(!tls_active(t), "not active before tls_start");
  CHECK(tls_close(t) == -1, "tls_close before tls_start fails");
  tls_free(t);
  tls_free(0);
  str_free(&err);
}

static void test_handshake(const char* prio, const char* want_proto)
{
  str err = {0, 0, 0}, params = {0, 0, 0}, line = {0, 0, 0};
  int sv[2];
  char name[128];
  clearenv_t();
  setenv_t("TLS_CERTFILE", certfile);
  setenv_t("TLS_KEYFILE", keyfile);
  setenv_t("TLS_PRIORITY", prio);
  struct tls* t = tls_prepare(getenv_t, &err);
  CHECK(t != 0, "prepare for the handshake");
  if (!t || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) return;
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) { close(sv[0]); _exit(client(sv[1], "NORMAL")); }
  close(sv[1]);
  ibuf in;
  obuf out;
  ibuf_init(&in, sv[0], 4096);
  obuf_init(&out, sv[0], 4096);
  in.timeout_ms = out.timeout_ms = 10000;
  /* plaintext that arrived with the STARTTLS line must be thrown away */
  memcpy(in.buf, "RSET\r\nMAIL FROM:<x>\r\n", 21);
  in.tail = 21;
  obuf_puts(&out, "");
  unsigned long dropped = 0;
  int r = tls_start(t, &in, &out, &dropped, &err);
  snprintf(name, sizeof name, "%s: handshake ok (%s)", prio, err.s ? err.s : "");
  CHECK(r == 0, name);
  CHECK(dropped == 21, "pipelined plaintext discarded and counted");
  CHECK(tls_active(t) && in.tr && out.tr, "transport installed on both streams");
  int toolong;
  CHECK(ibuf_getline(&in, &line, 100, &toolong) == 1 && line.len == 11 && memcmp(line.s, "hello tls\r\n", 11) == 0,
        "encrypted line read through ibuf");
  CHECK(obuf_puts(&out, "world, sealed") == 0 && obuf_flush(&out) == 0, "encrypted reply through obuf");
  struct tls_info i;
  tls_get_info(t, &i);
  CHECK(strcmp(i.protocol, want_proto) == 0, want_proto);
  CHECK(tls_params(t, &params) == 0, "tls_params");
  char want[256];
  snprintf(want, sizeof want, "%s %s %s %s", i.protocol, i.keyex, i.cipher, i.mac);
  CHECK(strcmp(params.s, want) == 0, "tls_params = the four names joined by spaces");
  CHECK(strcmp(i.cipher, "unknown") != 0 && strcmp(i.keyex, "unknown") != 0, "cipher and key exchange named");
  CHECK(ibuf_getline(&in, &line, 100, &toolong) == 0, "close_notify from the client reads as EOF");
  CHECK(tls_start(t, &in, &out, 0, &err) == -1, "a second tls_start is refused");
  int status = -1;
  waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the client saw the server's reply");
  tls_free(t);
  ibuf_close(&in);
  obuf_close(&out);
  close(sv[0]);
  str_free(&err);
  str_free(&params);
  str_free(&line);
}

static void test_deadline(void)
{
  str err = {0, 0, 0};
  int sv[2];
  clearenv_t();
  setenv_t("TLS_CERTFILE", certfile);
  setenv_t("TLS_KEYFILE", keyfile);
  struct tls* t = tls_prepare(getenv_t, &err);
  if (!t || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) { CHECK(0, "deadline set-up"); return; }
  ibuf in;
  obuf out;
  ibuf_init(&in, sv[0], 1024);
  obuf_init(&out, sv[0], 1024);
  in.timeout_ms = out.timeout_ms = 200;      /* the silent client never says hello */
  int r = tls_start(t, &in, &out, 0, &err);
  CHECK(r == -1 && err.s && strcmp(err.s, "TLS handshake failed: timed out") == 0, "handshake bounded by the timeout");
  CHECK(in.timedout, "timeout flagged on the input stream");
  tls_free(t);
  ibuf_close(&in);
  obuf_close(&out);
  close(sv[0]);
  close(sv[1]);
  str_free(&err);
}

int main(void)
{
  signal(SIGPIPE, SIG_IGN);
  snprintf(dir, sizeof dir, "/tmp/mftls-unit.XXXXXX");
  if (!mkdtemp(dir)) { CHECK(0, "mkdtemp"); return done(); }
  snprintf(certfile, sizeof certfile, "%s/cert.pem", dir);
  snprintf(keyfile, sizeof keyfile, "%s/key.pem", dir);
  gnutls_global_init();
  CHECK(make_cert() == 0, "test certificate generated");
  test_config_errors();
  test_handshake("NORMAL", "TLS1.3");
  test_handshake("NORMAL:-VERS-TLS1.3", "TLS1.2");
  test_deadline();
  unlink(certfile);
  unlink(keyfile);
  rmdir(dir);
  gnutls_global_deinit();
  return done();
}

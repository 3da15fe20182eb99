/* cvm.c -- CVM protocol v2 client (see cvm.h for the full contract).
 *
 * Layers, bottom up: packet building/parsing (pure functions on bytes);
 * three transports (command, UNIX socket, UDP), each bounded by one
 * absolute CLOCK_MONOTONIC deadline and returning a CVME_* code plus the
 * raw reply bytes; the chain walker; the convenience calls (password,
 * split, setenv, switch user).  Errors are CVME_* values; nothing logs,
 * nothing exits (except _exit in a forked child whose exec failed).
 * Memory: every str here is owned by the function that declares it or by
 * the caller's struct cvm_reply. */
#include "cvm.h"
#include "lib/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char** environ;

#define DEFAULT_TIMEOUT_S 30
#define DEFAULT_RANDOM_BYTES 8
#define UDP_TRIES 4

/* ---- small helpers ---- */

/* Milliseconds left until deadline, clamped to [0, INT_MAX]. */
static int left_ms(long long deadline)
{
  long long d = deadline - clock_mono_ms();
  if (d < 0) return 0;
  if (d > INT_MAX) return INT_MAX;
  return (int)d;
}

/* A positive decimal environment value, else dflt. */
static unsigned long env_posnum(const char* name, unsigned long dflt)
{
  const char* v = getenv(name);
  if (v == 0 || *v == 0) return dflt;
  unsigned long n = 0;
  for (const char* p = v; *p; p++) {
    if (*p < '0' || *p > '9') return dflt;
    if (n > (ULONG_MAX - 9) / 10) return dflt;
    n = n * 10 + (unsigned long)(*p - '0');
  }
  return n;
}

unsigned cvm_timeout_ms(void)
{
  unsigned long s = env_posnum("CVM_TIMEOUT", DEFAULT_TIMEOUT_S);
  if (s == 0) s = DEFAULT_TIMEOUT_S;
  if (s > UINT_MAX / 1000) s = UINT_MAX / 1000;
  return (unsigned)(s * 1000);
}

void cvm_reply_free(struct cvm_reply* r)
{
  str* strs[] = { &r->username, &r->realname, &r->directory, &r->shell,
                  &r->groupname, &r->supp_gids, &r->sys_username,
                  &r->sys_directory, &r->domain, &r->mailbox };
  for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
    if (strs[i]->s) memset(strs[i]->s, 0, strs[i]->size);
    str_free(strs[i]);
  }
  memset(r, 0, sizeof *r);
}

/* ---- packets ---- */

int cvm_request_build(str* out, const unsigned char* rnd, unsigned rlen,
                      const struct cvm_credential* creds, unsigned n,
                      const char* lookup_secret)
{
  int has_account = 0, has_secret = 0;
  if (rlen > 255) return CVME_BAD_CLIDATA;
  for (unsigned i = 0; i < n; i++) {
    if (creds[i].type == 0 || creds[i].type > 255 || creds[i].len > 255)
      return CVME_BAD_CLIDATA;
    if (creds[i].type == CVM_CRED_ACCOUNT) has_account = 1;
    if (creds[i].type == CVM_CRED_SECRET) has_secret = 1;
  }
  if (!has_account) return CVME_BAD_CLIDATA;
  const char* secret = has_secret ? 0 : lookup_secret;
  size_t slen = secret ? strlen(secret) : 0;
  if (slen > 255) return CVME_BAD_CLIDATA;

  /* size check before building: 2 + rlen + sum(2 + len) + [2 + slen] + 1 */
  unsigned long total = 2ul + rlen + 1;
  for (unsigned i = 0; i < n; i++) total += 2ul + creds[i].len;
  if (secret) total += 2ul + slen;
  if (total > CVM_PACKET_MAX) return CVME_BAD_CLIDATA;

  if (!str_ready(out, (unsigned)total)) return CVME_GENERAL;
  out->len = 0;
  char hdr[2] = { 2, (char)rlen };
  str_catb(out, hdr, 2);
  if (rlen) str_catb(out, (const char*)rnd, rlen);
  for (unsigned i = 0; i < n; i++) {
    char th[2] = { (char)creds[i].type, (char)creds[i].len };
    str_catb(out, th, 2);
    if (creds[i].len) str_catb(out, creds[i].data, creds[i].len);
  }
  if (secret) {
    char th[2] = { CVM_CRED_SECRET, (char)slen };
    str_catb(out, th, 2);
    str_catb(out, secret, (unsigned)slen);
  }
  str_catc(out, 0);
  return CVME_OK;
}

/* Parse an unsigned decimal fact; 0 on syntax error/overflow. */
static int parse_uint(const char* p, unsigned len, unsigned long max, unsigned long* v)
{
  unsigned long n = 0;
  if (len == 0) return 0;
  for (unsigned i = 0; i < len; i++) {
    if (p[i] < '0' || p[i] > '9') return 0;
    unsigned d = (unsigned)(p[i] - '0');
    if (n > (max - d) / 10) return 0;
    n = n * 10 + d;
  }
  *v = n;
  return 1;
}

/* Where each string fact goes. */
static str* fact_str(struct cvm_reply* r, unsigned type)
{
  switch (type) {
  case CVM_FACT_USERNAME: return &r->username;
  case CVM_FACT_REALNAME: return &r->realname;
  case CVM_FACT_DIRECTORY: return &r->directory;
  case CVM_FACT_SHELL: return &r->shell;
  case CVM_FACT_GROUPNAME: return &r->groupname;
  case CVM_FACT_SYS_USERNAME: return &r->sys_username;
  case CVM_FACT_SYS_DIRECTORY: return &r->sys_directory;
  case CVM_FACT_DOMAIN: return &r->domain;
  case CVM_FACT_MAILBOX: return &r->mailbox;
  default: return 0;
  }
}

/* One fact of a successful reply.  CVME_OK or an error. */
static int store_fact(struct cvm_reply* r, unsigned type, const char* d, unsigned len)
{
  unsigned long v;
  str* s = fact_str(r, type);
  if (s) {
    if (memchr(d, 0, len)) return CVME_BAD_MODDATA;
    if (CVM_HAS(r, type)) return CVME_OK;          /* first one wins */
    if (!str_copyb(s, d, len)) return CVME_GENERAL;
  }
  else if (type == CVM_FACT_USERID || type == CVM_FACT_GROUPID) {
    /* (uid_t)-1 is "no change" for setuid: never accept it */
    if (!parse_uint(d, len, 0xfffffffeul, &v)) return CVME_BAD_MODDATA;
    if (CVM_HAS(r, type)) return CVME_OK;
    if (type == CVM_FACT_USERID) r->uid = v; else r->gid = v;
  }
  else if (type == CVM_FACT_SUPP_GROUPID) {
    if (!parse_uint(d, len, 0xfffffffeul, &v)) return CVME_BAD_MODDATA;
    if ((r->supp_gids.len && !str_catc(&r->supp_gids, ',')) || !str_catu(&r->supp_gids, v))
      return CVME_GENERAL;
  }
  else if (type == CVM_FACT_OUTOFSCOPE) {
    if (!parse_uint(d, len, ULONG_MAX, &v)) return CVME_BAD_MODDATA;
    if (CVM_HAS(r, type)) return CVME_OK;
    r->outofscope = v;
  }
  else
    return CVME_OK;                                /* unknown: ignored */
  if (type < 32) r->present |= 1u << type;
  return CVME_OK;
}

int cvm_reply_parse(const char* buf, unsigned long len,
                    const unsigned char* rnd, unsigned rlen,
                    struct cvm_reply* reply)
{
  const unsigned char* p = (const unsigned char*)buf;
  cvm_reply_free(reply);
  reply->result = CVME_BAD_MODDATA;
  if (len > CVM_PACKET_MAX || len < 3ul + rlen) return reply->result;
  if (p[1] != rlen || (rlen && memcmp(p + 2, rnd, rlen) != 0)) return reply->result;
  int code = p[0];
  unsigned long i = 2ul + rlen;
  int err = CVME_OK;
  for (;;) {
    if (i >= len) { err = CVME_BAD_MODDATA; break; }   /* no final 0 */
    unsigned type = p[i];
    if (type == 0) { if (i + 1 != len) err = CVME_BAD_MODDATA; break; }
    if (i + 2 > len || i + 2 + p[i + 1] > len) { err = CVME_BAD_MODDATA; break; }
    unsigned flen = p[i + 1];
    if (code == CVME_OK || type == CVM_FACT_OUTOFSCOPE) {
      int e = store_fact(reply, type, buf + i + 2, flen);
      if (e != CVME_OK) { err = e; break; }
    }
    i += 2ul + flen;
  }
  if (code != CVME_OK) {
    /* a failure stays a failure; its facts are advisory only */
    unsigned long oos = reply->outofscope;
    int had = CVM_HAS(reply, CVM_FACT_OUTOFSCOPE) && err == CVME_OK;
    cvm_reply_free(reply);
    if (had) { reply->outofscope = oos; reply->present = 1u << CVM_FACT_OUTOFSCOPE; }
    reply->result = code;
    return code;
  }
  if (err == CVME_OK) {
    const unsigned need = (1u << CVM_FACT_USERNAME) | (1u << CVM_FACT_USERID)
                        | (1u << CVM_FACT_GROUPID) | (1u << CVM_FACT_DIRECTORY);
    if ((reply->present & need) != need) err = CVME_BAD_MODDATA;
  }
  if (err != CVME_OK) {
    cvm_reply_free(reply);
    reply->result = err;
    return err;
  }
  reply->result = CVME_OK;
  return CVME_OK;
}

/* ---- I/O primitives with a deadline ---- */

/* Write all of buf to a non-blocking fd.  0 ok, -1 error/timeout. */
static int write_all(int fd, const char* buf, unsigned long len, long long deadline)
{
  while (len > 0) {
    ssize_t w = write(fd, buf, len);
    if (w > 0) { buf += w; len -= (unsigned long)w; continue; }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return -1;
    struct pollfd pf = { fd, POLLOUT, 0 };
    int t = left_ms(deadline);
    if (t == 0) { errno = ETIMEDOUT; return -1; }
    int pr = poll(&pf, 1, t);
    if (pr < 0 && errno != EINTR) return -1;
  }
  return 0;
}

/* Read from a non-blocking fd until EOF into buf (capacity cap).  Returns
 * the byte count (cap + 1 means "too long": reading stopped), -1 on
 * error/timeout. */
static long read_all(int fd, char* buf, unsigned long cap, long long deadline)
{
  unsigned long got = 0;
  for (;;) {
    if (got > cap) return (long)got;
    ssize_t r = read(fd, buf + got, cap + 1 - got);
    if (r == 0) return (long)got;
    if (r > 0) { got += (unsigned long)r; continue; }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
    struct pollfd pf = { fd, POLLIN, 0 };
    int t = left_ms(deadline);
    if (t == 0) { errno = ETIMEDOUT; return -1; }
    int pr = poll(&pf, 1, t);
    if (pr < 0 && errno != EINTR) return -1;
  }
}

/* ---- transports: each fills buf (capacity CVM_PACKET_MAX + 1) ---- */

/* One call's settings shared by the chain's elements. */
struct call
{
  const str* req;               /* the request packet */
  const unsigned char* rnd;     /* random bytes the reply must echo */
  unsigned rlen;
  long long deadline;
  char* const* envp;            /* environment of a command module */
};

/* Variables that put a CVM module into lookup mode (no password check). */
static const char* const lookup_vars[] = { "CVM_LOOKUP_SECRET=", "LOOKUP_SECRET=" };

static int is_lookup_var(const char* entry)
{
  for (size_t i = 0; i < sizeof lookup_vars / sizeof lookup_vars[0]; i++)
    if (strncmp(entry, lookup_vars[i], strlen(lookup_vars[i])) == 0) return 1;
  return 0;
}

/* The environment of a command module (built before the fork: the child
 * only execs): the process environment without the lookup variables, plus
 * CVM_LOOKUP_SECRET=secret when secret is non-NULL (a lookup).  A NULL
 * array (out of memory) is returned as 0; free with free() after wiping
 * *entry (it holds the secret). */
static char** module_env(const char* secret, str* entry)
{
  size_t n = 0;
  for (char** e = environ; e && *e; e++) n++;
  char** envp = malloc((n + 2) * sizeof *envp);
  if (envp == 0) return 0;
  size_t k = 0;
  for (char** e = environ; e && *e; e++)
    if (!is_lookup_var(*e)) envp[k++] = *e;
  if (secret) {
    if (!str_copys(entry, lookup_vars[0]) || !str_cats(entry, secret)) { free(envp); return 0; }
    envp[k++] = entry->s;
  }
  envp[k] = 0;
  return envp;
}

/* Run a program.  Returns CVME_OK with *len set, or the exit status
 * (non-zero) with *len set to what was read (maybe 0), or CVME_IO. */
static int via_command(const char* path, const struct call* c, char* buf, unsigned long* len)
{
  const str* req = c->req;
  long long deadline = c->deadline;
  int in[2], out[2];
  *len = 0;
  if (pipe2(in, O_CLOEXEC) != 0) return CVME_IO;
  if (pipe2(out, O_CLOEXEC) != 0) { close(in[0]); close(in[1]); return CVME_IO; }
  pid_t pid = fork();
  if (pid < 0) {
    close(in[0]); close(in[1]); close(out[0]); close(out[1]);
    return CVME_IO;
  }
  if (pid == 0) {
    /* child: request on fd 0, reply on fd 1, stderr shared */
    signal(SIGPIPE, SIG_DFL);
    if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0) _exit(CVME_IO);
    if (close_range(3, ~0u, 0) != 0) {
      long maxfd = sysconf(_SC_OPEN_MAX);
      if (maxfd < 0 || maxfd > 65536) maxfd = 65536;
      for (int fd = 3; fd < maxfd; fd++) close(fd);
    }
    char* argv[2] = { (char*)path, 0 };
    execve(path, argv, c->envp);
    _exit(CVME_IO);
  }
  close(in[0]);
  close(out[1]);
  fcntl(in[1], F_SETFL, O_NONBLOCK);
  fcntl(out[0], F_SETFL, O_NONBLOCK);
  int io_ok = write_all(in[1], req->s, req->len, deadline) == 0;
  close(in[1]);
  long got = io_ok ? read_all(out[0], buf, CVM_PACKET_MAX, deadline) : -1;
  close(out[0]);
  if (got < 0) io_ok = 0;
  else *len = (unsigned long)got;

  /* reap: wait until the deadline, then kill */
  int status = 0;
  for (;;) {
    pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) { status = -1; break; }
    if (left_ms(deadline) == 0 || !io_ok) {
      kill(pid, SIGKILL);
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
      io_ok = 0;
      break;
    }
    struct timespec ts = { 0, 5 * 1000 * 1000 };
    nanosleep(&ts, 0);
  }
  if (!io_ok || status == -1 || !WIFEXITED(status)) return CVME_IO;
  return WEXITSTATUS(status);
}

static int via_local(const char* path, const str* req, char* buf,
                     unsigned long* len, long long deadline)
{
  struct sockaddr_un sa;
  *len = 0;
  if (strlen(path) >= sizeof sa.sun_path) return CVME_CONFIG;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  strcpy(sa.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return CVME_IO;
  int rc = CVME_IO;
  if (connect(fd, (struct sockaddr*)&sa, sizeof sa) != 0) {
    if (errno != EINPROGRESS && errno != EAGAIN) goto done;
    struct pollfd pf = { fd, POLLOUT, 0 };
    if (poll(&pf, 1, left_ms(deadline)) != 1) goto done;
    int e = 0; socklen_t el = sizeof e;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) != 0 || e != 0) goto done;
  }
  if (write_all(fd, req->s, req->len, deadline) != 0) goto done;
  shutdown(fd, SHUT_WR);
  long got = read_all(fd, buf, CVM_PACKET_MAX, deadline);
  if (got < 0) goto done;
  *len = (unsigned long)got;
  rc = CVME_OK;
done:
  close(fd);
  return rc;
}

/* HOST:PORT or [HOST]:PORT into an address. */
static int udp_resolve(const char* spec, struct sockaddr_storage* ss, socklen_t* sl)
{
  const char* colon = strrchr(spec, ':');
  if (colon == 0 || colon[1] == 0) return CVME_CONFIG;
  size_t hl = (size_t)(colon - spec);
  if (hl >= 2 && spec[0] == '[' && spec[hl - 1] == ']') { spec++; hl -= 2; }
  if (hl == 0 || hl > 255) return CVME_CONFIG;
  char host[256];
  memcpy(host, spec, hl);
  host[hl] = 0;
  for (const char* p = colon + 1; *p; p++) if (*p < '0' || *p > '9') return CVME_CONFIG;
  struct addrinfo hints, *res = 0;
  memset(&hints, 0, sizeof hints);
  hints.ai_socktype = SOCK_DGRAM;
  hints.ai_flags = AI_NUMERICSERV;
  if (getaddrinfo(host, colon + 1, &hints, &res) != 0 || res == 0) return CVME_IO;
  memcpy(ss, res->ai_addr, res->ai_addrlen);
  *sl = res->ai_addrlen;
  freeaddrinfo(res);
  return CVME_OK;
}

static int via_udp(const char* spec, const str* req, const unsigned char* rnd,
                   unsigned rlen, char* buf, unsigned long* len, long long deadline)
{
  struct sockaddr_storage ss;
  socklen_t sl;
  *len = 0;
  int rc = udp_resolve(spec, &ss, &sl);
  if (rc != CVME_OK) return rc;
  int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return CVME_IO;
  rc = CVME_IO;
  if (connect(fd, (struct sockaddr*)&ss, sl) != 0) goto done;
  for (int attempt = 0; attempt < UDP_TRIES; attempt++) {
    if (send(fd, req->s, req->len, 0) != (ssize_t)req->len) goto done;
    long long until = clock_mono_ms() + (2000LL << attempt);
    if (until > deadline) until = deadline;
    for (;;) {
      struct pollfd pf = { fd, POLLIN, 0 };
      int t = left_ms(until);
      if (t == 0) break;
      int pr = poll(&pf, 1, t);
      if (pr < 0 && errno == EINTR) continue;
      if (pr <= 0) break;
      ssize_t r = recv(fd, buf, CVM_PACKET_MAX + 1, 0);
      if (r < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        goto done;                        /* e.g. ECONNREFUSED: nobody there */
      }
      /* anti-spoofing: ignore datagrams that do not echo our bytes */
      if ((size_t)r < 2u + rlen || (unsigned char)buf[1] != rlen
          || memcmp(buf + 2, rnd, rlen) != 0)
        continue;
      *len = (unsigned long)r;
      rc = CVME_OK;
      goto done;
    }
    if (left_ms(deadline) == 0) break;
  }
done:
  close(fd);
  return rc;
}

/* ---- the chain ---- */

static const char* strip_prefix(const char* s, const char* prefix)
{
  size_t n = strlen(prefix);
  return strncmp(s, prefix, n) == 0 ? s + n : 0;
}

/* One chain element.  Fills reply, returns the result. */
static int call_one(const char* elem, const struct call* c, struct cvm_reply* reply)
{
  const str* req = c->req;
  const unsigned char* rnd = c->rnd;
  unsigned rlen = c->rlen;
  long long deadline = c->deadline;
  char buf[CVM_PACKET_MAX + 1];
  unsigned long len = 0;
  const char* arg;
  int rc;
  int is_command = 0;
  cvm_reply_free(reply);
  if ((arg = strip_prefix(elem, "cvm-local:")) != 0)
    rc = via_local(arg, req, buf, &len, deadline);
  else if ((arg = strip_prefix(elem, "cvm-udp:")) != 0)
    rc = via_udp(arg, req, rnd, rlen, buf, &len, deadline);
  else {
    if ((arg = strip_prefix(elem, "cvm-command:")) == 0) arg = elem;
    if (*arg == 0) rc = CVME_CONFIG;
    else { rc = via_command(arg, c, buf, &len); is_command = 1; }
  }
  if (is_command && rc != CVME_OK && rc != CVME_IO) {
    /* the exit status is the result; keep OUTOFSCOPE if the reply has it */
    if (len > 0) cvm_reply_parse(buf, len, rnd, rlen, reply);
    unsigned long oos = reply->outofscope;
    int had = CVM_HAS(reply, CVM_FACT_OUTOFSCOPE) && reply->result != CVME_OK;
    cvm_reply_free(reply);
    if (had) { reply->outofscope = oos; reply->present = 1u << CVM_FACT_OUTOFSCOPE; }
    reply->result = rc;
    return rc;
  }
  if (rc != CVME_OK) { reply->result = rc; return rc; }
  return cvm_reply_parse(buf, len, rnd, rlen, reply);
}

static unsigned random_len(const char* modules)
{
  if (strstr(modules, "cvm-udp:") == 0) return 0;
  unsigned long n = env_posnum("CVM_RANDOM_BYTES", DEFAULT_RANDOM_BYTES);
  return n > 255 ? 255 : (unsigned)n;
}

static int fill_random(unsigned char* p, unsigned n)
{
  unsigned got = 0;
  while (got < n) {
    ssize_t r = getrandom(p + got, n - got, 0);
    if (r < 0) { if (errno == EINTR) continue; return -1; }
    got += (unsigned)r;
  }
  return 0;
}

/* An authentication (secret NULL) or a lookup (secret non-NULL). */
static int cvm_call(const char* modules, const struct cvm_credential* creds,
                    unsigned n, const char* secret, unsigned timeout_ms,
                    struct cvm_reply* reply)
{
  cvm_reply_free(reply);
  if (modules == 0 || *modules == 0) return reply->result = CVME_CONFIG;
  if (timeout_ms == 0) timeout_ms = cvm_timeout_ms();
  long long deadline = clock_mono_ms() + timeout_ms;

  unsigned char rnd[255];
  unsigned rlen = random_len(modules);
  if (rlen && fill_random(rnd, rlen) != 0) return reply->result = CVME_GENERAL;
  str req = {0, 0, 0};
  int rc = cvm_request_build(&req, rnd, rlen, creds, n, secret);
  if (rc != CVME_OK) { str_free(&req); return reply->result = rc; }
  str entry = {0, 0, 0};
  char** envp = module_env(secret, &entry);
  if (envp == 0) {
    memset(req.s, 0, req.size);
    str_free(&req);
    return reply->result = CVME_GENERAL;
  }
  struct call call = { &req, rnd, rlen, deadline, envp };

  /* SIGPIPE ignored (a module that quits early must not kill us);
   * SIGCHLD at its default (if it were ignored, as some parents leave it,
   * children would be reaped automatically and waitpid would fail) */
  struct sigaction ign, dfl, oldpipe, oldchld;
  memset(&ign, 0, sizeof ign);
  ign.sa_handler = SIG_IGN;
  sigemptyset(&ign.sa_mask);
  dfl = ign;
  dfl.sa_handler = SIG_DFL;
  sigaction(SIGPIPE, &ign, &oldpipe);
  sigaction(SIGCHLD, 0, &oldchld);
  int chld_ignored = oldchld.sa_handler == SIG_IGN || (oldchld.sa_flags & SA_NOCLDWAIT);
  if (chld_ignored) sigaction(SIGCHLD, &dfl, 0);

  str elem = {0, 0, 0};
  const char* p = modules;
  for (;;) {
    const char* comma = strchr(p, ',');
    size_t el = comma ? (size_t)(comma - p) : strlen(p);
    if (!str_copyb(&elem, p, (unsigned)el)) { rc = CVME_GENERAL; cvm_reply_free(reply); break; }
    rc = call_one(elem.s, &call, reply);
    if (rc != CVME_PERMFAIL) break;
    if (CVM_HAS(reply, CVM_FACT_OUTOFSCOPE) && reply->outofscope == 0) break;
    if (comma == 0) break;
    p = comma + 1;
  }
  reply->result = rc;
  sigaction(SIGPIPE, &oldpipe, 0);
  if (chld_ignored) sigaction(SIGCHLD, &oldchld, 0);
  str_free(&elem);
  memset(req.s, 0, req.size);
  str_free(&req);
  if (entry.s) memset(entry.s, 0, entry.size);
  str_free(&entry);
  free(envp);
  return rc;
}

int cvm_authenticate(const char* modules, const struct cvm_credential* creds,
                     unsigned n, unsigned timeout_ms, struct cvm_reply* reply)
{
  return cvm_call(modules, creds, n, 0, timeout_ms, reply);
}

int cvm_lookup(const char* modules, const struct cvm_credential* creds,
               unsigned n, const char* secret, unsigned timeout_ms,
               struct cvm_reply* reply)
{
  return cvm_call(modules, creds, n, secret ? secret : "", timeout_ms, reply);
}

/* ---- convenience calls ---- */

int cvm_split_account(str* account, str* domain)
{
  const char* chars = getenv("CVM_ACCOUNT_SPLIT_CHARS");
  if (chars == 0) chars = "@";
  if (*chars == 0 || account->len == 0) return 0;
  unsigned i = account->len;
  while (i > 0 && (account->s[i - 1] == 0 || strchr(chars, account->s[i - 1]) == 0)) i--;
  if (i == 0) return 0;
  if (!str_copyb(domain, account->s + i, account->len - i)) return -1;
  str_truncate(account, i - 1);
  return 1;
}

int cvm_authenticate_password(const char* modules, const char* account,
                              const char* domain, const char* password,
                              int split, unsigned timeout_ms,
                              struct cvm_reply* reply)
{
  str acc = {0, 0, 0}, dom = {0, 0, 0};
  int rc = CVME_GENERAL;
  cvm_reply_free(reply);
  if (account == 0) return reply->result = CVME_BAD_CLIDATA;
  if (strlen(account) > 255 || (domain && strlen(domain) > 255)
      || (password && strlen(password) > 255))
    return reply->result = CVME_BAD_CLIDATA;
  if (!str_copys(&acc, account) || !str_copys(&dom, domain ? domain : "")) goto out;
  if (split && cvm_split_account(&acc, &dom) < 0) goto out;
  struct cvm_credential c[3];
  unsigned n = 0;
  c[n++] = (struct cvm_credential){ CVM_CRED_ACCOUNT, acc.s, acc.len };
  if (dom.len) c[n++] = (struct cvm_credential){ CVM_CRED_DOMAIN, dom.s, dom.len };
  if (password && *password)
    c[n++] = (struct cvm_credential){ CVM_CRED_PASSWORD, password, (unsigned)strlen(password) };
  rc = cvm_authenticate(modules, c, n, timeout_ms, reply);
out:
  reply->result = rc;
  str_free(&acc);
  str_free(&dom);
  return rc;
}

static const char* process_getenv(const char* name) { return getenv(name); }

const char* cvm_ucspi_domain(void) { return cvm_ucspi_domain_env(process_getenv); }

const char* cvm_ucspi_domain_env(const char* (*get)(const char*))
{
  const char* proto = get("PROTO");
  if (proto == 0 || *proto == 0) proto = "TCP";
  size_t pl = strlen(proto);
  if (pl > 200) return 0;
  char name[216];
  memcpy(name, proto, pl);
  memcpy(name + pl, "LOCALHOST", 10);
  const char* v = get(name);
  return (v && *v) ? v : 0;
}

/* Keep in step with cvm_setenv below. */
const char* const cvm_env_names[] = {
  "USER", "UID", "GID", "HOME", "NAME", "SHELL", "GROUP", "DOMAIN", "MAIL", "MAILBOX", "MAILDIR", "GIDS", 0,
};

int cvm_setenv(const struct cvm_reply* r)
{
  str num = {0, 0, 0};
  int ok = setenv("USER", r->username.s ? r->username.s : "", 1) == 0;
  ok = ok && str_copys(&num, "") && str_catu(&num, r->uid) && setenv("UID", num.s, 1) == 0;
  ok = ok && str_copys(&num, "") && str_catu(&num, r->gid) && setenv("GID", num.s, 1) == 0;
  ok = ok && setenv("HOME", r->directory.s ? r->directory.s : "", 1) == 0;
  const struct { unsigned fact; const char* var; const str* val; } opt[] = {
    { CVM_FACT_REALNAME, "NAME", &r->realname },
    { CVM_FACT_SHELL, "SHELL", &r->shell },
    { CVM_FACT_GROUPNAME, "GROUP", &r->groupname },
    { CVM_FACT_DOMAIN, "DOMAIN", &r->domain },
    { CVM_FACT_MAILBOX, "MAIL", &r->mailbox },
    { CVM_FACT_MAILBOX, "MAILBOX", &r->mailbox },
    { CVM_FACT_MAILBOX, "MAILDIR", &r->mailbox },
    { CVM_FACT_SUPP_GROUPID, "GIDS", &r->supp_gids },
  };
  for (size_t i = 0; ok && i < sizeof opt / sizeof opt[0]; i++)
    if (CVM_HAS(r, opt[i].fact))
      ok = setenv(opt[i].var, opt[i].val->s ? opt[i].val->s : "", 1) == 0;
  str_free(&num);
  if (!ok) { if (errno == 0) errno = ENOMEM; return -1; }
  return 0;
}

int cvm_switch_user(const struct cvm_reply* r)
{
  if (setgid((gid_t)r->gid) != 0) return -1;
  if (setuid((uid_t)r->uid) != 0) return -1;
  if (chdir(r->directory.s ? r->directory.s : "") != 0) return -1;
  return 0;
}

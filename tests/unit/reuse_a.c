/* Unit test: the plugins of group "a" (add-received, check-fqdn, counters,
 * cvm-authenticate, cvm-validate, qmail-validate, starttls-ucspi, spf,
 * lua, and the audited patterns, mailrules, rbl) are version 4 and carry
 * nothing from one session into the next in one process.
 *
 * Each configuration is loaded once (mf_load, with this build's modules)
 * and runs several sessions through mf_session over socketpairs (fds 0/1
 * for starttls-ucspi, which needs them), each session with settings of
 * its own in mf_session's environment.  For every module the sessions are
 * chosen so that state kept from an earlier session would change a later
 * session's replies or queued message: counters reached in session 1,
 * an authentication, a Received header's address, a script's globals, a
 * rules or patterns file read for one session, an SPF or RBL verdict.
 * After every session the number of open fds is the one before it (a
 * cdb file, a pipe or a socket left open shows), the working directory and
 * the process environment are as before (qmail-validate's chdir,
 * cvm-authenticate's USER/HOME, starttls-ucspi's $UCSPITLS), and in the
 * sanitizer build LeakSanitizer runs at exit.
 *
 * Fakes, each bounded by alarm(): a DNS server on loopback UDP (TXT
 * answers for spf and rbl), the CVM is Debian's cvm-pwfile (command
 * mode, as the other CVM tests use it), the UCSPI-TLS wrapper is three
 * pipes.  Logs go to a file, shown after a failure.  A build without
 * tinycdb or Lua (make WITH_CDB=0 / WITH_LUA=0: REUSE_NO_CDB, REUSE_NO_LUA)
 * has no mailrules, qmail-validate or lua module: those parts say SKIP. */
#include "tap.h"
#include "sessions.h"
#include <arpa/inet.h>
#ifndef REUSE_NO_CDB
#include <cdb.h>
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
int __lsan_do_recoverable_leak_check(void);
#endif
const char* __asan_default_options(void);
const char* __asan_default_options(void) { return "detect_leaks=1"; }

static char tmp[256];          /* the test's directory */
static char qdir[300];         /* queuedir of the sessions */
static char modenv[PATH_MAX + 32];
static char qenv[400];
static char dnsenv[64], dnsport[64];
static int fds_base;           /* open fds between sessions */
static int fd_bad;             /* sessions after which the count differed */
static char cwd_base[PATH_MAX];
static int cwd_bad;

/* ---- small helpers ---- */

static int has(const struct buf* b, const char* s) { return b->s && strstr(b->s, s) != 0; }

static void write_file(const char* dir, const char* name, const char* text)
{
  char p[PATH_MAX];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  FILE* f = fopen(p, "w");
  if (!f) { perror(p); abort(); }
  fputs(text, f);
  fclose(f);
}

static struct mf_config* load(const char* plugins, const char* backend)
{
  char copy[256];
  snprintf(copy, sizeof copy, "%s", plugins);
  char* argv[] = { "smtp", (char*)backend, copy, 0 };
  char* env[] = { modenv, 0 };
  const response* err = 0;
  struct mf_config* cfg = mf_load(3, argv, env, &err);
  if (!cfg) {
    printf("# %s: %s\n", plugins, err && err->message ? err->message : "?");
    mf_error_free(err);
  }
  return cfg;
}

/* The environment of a session: qdir, no fsync, a local host name, then
 * the given entries (NULL-terminated), into env (32 entries). */
static char** session_env(char** extra, char** env)
{
  int n = 0;
  env[n++] = qenv;
  env[n++] = "QUEUEDIR_NOSYNC=1";
  env[n++] = "TCPLOCALHOST=mx.test";
  env[n++] = dnsenv;
  env[n++] = dnsport;
  for (int i = 0; extra && extra[i] && n < 31; i++) env[n++] = extra[i];
  env[n] = 0;
  return env;
}

/* After every session: fds and the working directory as before. */
static void after_session(void)
{
  if (count_fds() != fds_base) fd_bad++;
  char cwd[PATH_MAX];
  if (!getcwd(cwd, sizeof cwd) || strcmp(cwd, cwd_base) != 0) cwd_bad++;
}

/* One session: input text, session entries; replies into out (reset). */
static int session(struct mf_config* cfg, const char* input, char** extra, struct buf* out)
{
  struct buf in = { 0, 0, 0 };
  char* env[32];
  int status = -1;
  out->len = 0;
  if (out->s) out->s[0] = 0;
  put(&in, input, strlen(input));
  if (run_session(cfg, &in, out, session_env(extra, env), &status) < 0) status = -1;
  free(in.s);
  after_session();
  return status;
}

/* The one message in qdir/new (removed); 0 when not exactly one. */
static int take_message(struct buf* msg)
{
  char p[PATH_MAX];
  msg->len = 0;
  snprintf(p, sizeof p, "%s/new", qdir);
  DIR* d = opendir(p);
  if (!d) return 0;
  struct dirent* e;
  int n = 0;
  char name[PATH_MAX] = "";
  while ((e = readdir(d)))
    if (e->d_name[0] != '.') { n++; snprintf(name, sizeof name, "%s/new/%s", qdir, e->d_name); }
  closedir(d);
  if (n != 1) {
    /* remove whatever is there so the next check starts clean */
    d = opendir(p);
    while (d && (e = readdir(d)))
      if (e->d_name[0] != '.') { char q[PATH_MAX + 300]; snprintf(q, sizeof q, "%s/%s", p, e->d_name); unlink(q); }
    if (d) closedir(d);
    return 0;
  }
  int fd = open(name, O_RDONLY | O_CLOEXEC);
  char t[4096];
  ssize_t r;
  while (fd >= 0 && (r = read(fd, t, sizeof t)) > 0) put(msg, t, (size_t)r);
  if (fd >= 0) close(fd);
  unlink(name);
  /* the envelope's NULs become '|' so that strstr sees the whole file */
  for (size_t i = 0; i < msg->len; i++) if (msg->s[i] == 0) msg->s[i] = '|';
  return 1;
}

static int queue_empty(void)
{
  struct buf m = { 0, 0, 0 };
  char p[PATH_MAX];
  snprintf(p, sizeof p, "%s/new", qdir);
  DIR* d = opendir(p);
  int n = 0;
  struct dirent* e;
  while (d && (e = readdir(d))) if (e->d_name[0] != '.') n++;
  if (d) closedir(d);
  free(m.s);
  return n == 0;
}

/* ---- the fake DNS server (a child): TXT answers from a table ---- */

struct rr { const char* name; const char* txt; };
static const struct rr zone[] = {
  { "pass.test", "v=spf1 ip4:192.0.2.1 -all" },
  { "fail.test", "v=spf1 -all" },
  { "2.0.0.127.bl.test", "listed two" },
  { "4.0.0.127.bl.test", "listed four" },
};

/* The query's name (lower case, dotted) and where the question ends. */
static int query_name(const unsigned char* q, size_t n, char* name, size_t max, size_t* end)
{
  size_t i = 12, k = 0;
  while (i < n && q[i]) {
    size_t l = q[i++];
    if (l > 63 || i + l > n || k + l + 2 > max) return -1;
    if (k) name[k++] = '.';
    for (size_t j = 0; j < l; j++) {
      char c = (char)q[i + j];
      name[k++] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
    }
    i += l;
  }
  name[k] = 0;
  if (i + 5 > n) return -1;
  *end = i + 5;                         /* the root label, type, class */
  return (q[i + 1] << 8) | q[i + 2];
}

static void dns_serve(int fd)
{
  alarm(300);
  for (;;) {
    unsigned char q[1500], a[1500];
    struct sockaddr_in from;
    socklen_t fl = sizeof from;
    ssize_t n = recvfrom(fd, q, sizeof q, 0, (struct sockaddr*)&from, &fl);
    if (n < 12) continue;
    char name[300];
    size_t end;
    int type = query_name(q, (size_t)n, name, sizeof name, &end);
    if (type < 0) continue;
    const struct rr* hit = 0;
    int known = 0;
    for (size_t i = 0; i < sizeof zone / sizeof zone[0]; i++)
      if (strcmp(zone[i].name, name) == 0) { known = 1; if (type == 16) hit = &zone[i]; }
    memcpy(a, q, end);
    a[2] = 0x84 | (q[2] & 0x01);        /* QR, AA, RD copied */
    a[3] = known ? 0x80 : 0x83;         /* RA; NXDOMAIN when unknown */
    a[4] = 0; a[5] = 1;
    a[6] = 0; a[7] = hit ? 1 : 0;
    a[8] = a[9] = a[10] = a[11] = 0;
    size_t k = end;
    if (hit) {
      size_t tl = strlen(hit->txt);
      unsigned char rr[] = { 0xc0, 12, 0, 16, 0, 1, 0, 0, 0, 60, 0, (unsigned char)(tl + 1), (unsigned char)tl };
      memcpy(a + k, rr, sizeof rr);
      k += sizeof rr;
      memcpy(a + k, hit->txt, tl);
      k += tl;
    }
    sendto(fd, a, k, 0, (struct sockaddr*)&from, fl);
  }
}

static pid_t dns_start(void)
{
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t sl = sizeof sa;
  if (fd < 0 || bind(fd, (struct sockaddr*)&sa, sizeof sa) < 0 || getsockname(fd, (struct sockaddr*)&sa, &sl) < 0) return -1;
  snprintf(dnsenv, sizeof dnsenv, "DNSCACHEIP=127.0.0.1");
  snprintf(dnsport, sizeof dnsport, "DNSCACHEPORT=%u", ntohs(sa.sin_port));
  pid_t pid = fork();
  if (pid == 0) { dns_serve(fd); _exit(0); }
  close(fd);
  return pid;
}

/* ---- the modules ---- */

#define GREET "220 mx.test mailfront ESMTP\r\n"
#define MAIL_OK "250 2.1.0 Sender accepted.\r\n"
#define RCPT_OK "250 2.1.5 Recipient accepted.\r\n"

static void test_add_received(void)
{
  struct mf_config* cfg = load("add-received:accept", "queuedir");
  CHECK(cfg, "add-received: loads");
  if (!cfg) return;
  struct buf out = { 0, 0, 0 }, msg = { 0, 0, 0 };
  int bad = 0;
  for (int i = 1; i <= 4; i++) {
    char rip[64], rhost[64], input[256], want[256];
    snprintf(rip, sizeof rip, "TCPREMOTEIP=192.0.2.%d", i);
    snprintf(rhost, sizeof rhost, "TCPREMOTEHOST=h%d.test", i);
    char* fix[] = { rip, rhost, "TCPLOCALIP=10.0.0.1", "FIXUP_RECEIVED_HOST=fix.test", "FIXUP_RECEIVED_IP=10.9.9.9", 0 };
    char* plain[] = { rip, rhost, "TCPLOCALIP=10.0.0.1", 0 };
    snprintf(input, sizeof input, "HELO c%d\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nline %d\r\n.\r\nQUIT\r\n", i, i);
    int st = session(cfg, input, i == 2 ? fix : plain, &out);
    snprintf(want, sizeof want, "%cReceived: from c%d (h%d.test [192.0.2.%d])\n  by mx.test ([10.0.0.1])\n  with SMTP via TCP; ",
             i == 2 ? '\n' : '|', i, i, i);
    int ok = st == 0 && take_message(&msg) && has(&msg, want)
      && (i == 2) == has(&msg, "Received: from mx.test (mx.test [10.0.0.1])\n  by fix.test ([10.9.9.9]); ");
    for (int j = 1; j <= 4; j++) {
      char other[32];
      snprintf(other, sizeof other, "[192.0.2.%d]", j);
      if (j != i && has(&msg, other)) ok = 0;
    }
    if (!ok) { bad++; printf("# add-received session %d: %s\n", i, msg.s ? msg.s : ""); }
  }
  CHECK(bad == 0, "add-received: 4 sessions, each Received header has its own client, the fixup header only in session 2");
  free(out.s); free(msg.s);
  mf_free(cfg);
}

static void test_check_fqdn(void)
{
  struct mf_config* cfg = load("check-fqdn:accept", "queuedir");
  CHECK(cfg, "check-fqdn: loads");
  if (!cfg) return;
  struct buf out = { 0, 0, 0 }, msg = { 0, 0, 0 };
  char* s1[] = { "DEFAULTHOST=h1.test", "DEFAULTDOMAIN=dom1", 0 };
  char* s2[] = { "SENDER_DOMAINS=only.test", 0 };
  char* s3[] = { "DEFAULTHOST=h3", "DEFAULTDOMAIN=dom3", 0 };
  int st = session(cfg, "HELO x\r\nMAIL FROM:<u>\r\nRCPT TO:<v@w>\r\nDATA\r\nx\r\n.\r\nQUIT\r\n", s1, &out);
  CHECK(st == 0 && take_message(&msg) && msg.s && strncmp(msg.s, "u@h1.test|v@w.dom1|", 19) == 0,
        "check-fqdn: session 1 completes with its DEFAULTHOST and DEFAULTDOMAIN");
  st = session(cfg, "HELO x\r\nMAIL FROM:<u@h1.test>\r\nMAIL FROM:<u@only.test>\r\nRCPT TO:<v>\r\nQUIT\r\n", s2, &out);
  CHECK(st == 0 && has(&out, "\r\n554 5.1.2 Sender contains a disallowed domain\r\n" MAIL_OK
                        "554 5.1.2 Address is missing a domain name\r\n"),
        "check-fqdn: session 2 has its SENDER_DOMAINS and none of session 1's defaults");
  st = session(cfg, "HELO x\r\nMAIL FROM:<u@h1.test>\r\nRCPT TO:<v>\r\nDATA\r\nx\r\n.\r\nQUIT\r\n", s3, &out);
  CHECK(st == 0 && take_message(&msg) && msg.s && strncmp(msg.s, "u@h1.test|v@h3.dom3|", 20) == 0,
        "check-fqdn: session 3 completes with its own defaults, no SENDER_DOMAINS");
  free(out.s); free(msg.s);
  mf_free(cfg);
}

static void test_counters(void)
{
  struct mf_config* cfg = load("counters:accept", "queuedir");
  CHECK(cfg, "counters: loads");
  if (!cfg) return;
  struct buf out = { 0, 0, 0 }, msg = { 0, 0, 0 };
  const char* two = "EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nx\r\n.\r\n"
                    "MAIL FROM:<a@b>\r\nQUIT\r\n";
  char* lim[] = { "MAXMSGS=1", "DATABYTES=1000", 0 };
  int bad = 0;
  for (int i = 0; i < 3; i++) {
    int st = session(cfg, two, lim, &out);
    if (st != 0 || !has(&out, "250-SIZE 1000\r\n") || !has(&out, "LIMITS MAILMAX=1")
        || !has(&out, "\r\n250 2.6.0 Message accepted.\r\n550 5.5.0 Too many messages\r\n")
        || !take_message(&msg))
      { bad++; printf("# counters session %d:\n%s", i, out.s ? out.s : ""); }
  }
  CHECK(bad == 0, "counters: 3 sessions with MAXMSGS=1 each deliver one message, then refuse");
  char* rc[] = { "MAXRCPTS=2", 0 };
  int st = session(cfg, "EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c1@d>\r\nRCPT TO:<c2@d>\r\nRCPT TO:<c3@d>\r\nRSET\r\n"
                        "MAIL FROM:<a@b>\r\nRCPT TO:<c1@d>\r\nRCPT TO:<c2@d>\r\nQUIT\r\n", rc, &out);
  CHECK(st == 0 && has(&out, "250-SIZE 0\r\n") && !has(&out, "MAILMAX") && has(&out, "LIMITS RCPTMAX=2")
        && has(&out, RCPT_OK RCPT_OK "452 4.5.3 ") && has(&out, "250 2.3.0 OK\r\n" MAIL_OK RCPT_OK RCPT_OK "221"),
        "counters: session 4 has only its own limits (no size, no message limit), counts per message");
  st = session(cfg, "EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nx\r\n.\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\ny\r\n.\r\nQUIT\r\n", 0, &out);
  CHECK(st == 0 && !has(&out, "LIMITS") && !has(&out, "Too many") && take_message(&msg) == 0,
        "counters: session 5 without limits delivers two messages");
  free(out.s); free(msg.s);
  mf_free(cfg);
}

static char pwfile[PATH_MAX + 40];

static void test_cvm_authenticate(void)
{
  struct mf_config* cfg = load("cvm-authenticate:require-auth:accept", "queuedir");
  CHECK(cfg, "cvm-authenticate: loads");
  if (!cfg) return;
  struct buf out = { 0, 0, 0 };
  setenv("USER", "before-test", 1);
  setenv("HOME", "/before", 1);
  unsetenv("SHELL");
  char* sasl[] = { "CVM_SASL_PLAIN=/usr/bin/cvm-pwfile", 0 };
  /* AGFsaWNlAHNlY3JldA== is "\0alice\0secret", AGFsaWNlAHdyb25n "\0alice\0wrong" */
  int st = session(cfg, "EHLO x\r\nAUTH PLAIN AGFsaWNlAHNlY3JldA==\r\nMAIL FROM:<a@b>\r\nQUIT\r\n", sasl, &out);
  const char* user = getenv("USER");
  const char* home = getenv("HOME");
  int env_back = strcmp(user ? user : "", "before-test") == 0 && strcmp(home ? home : "", "/before") == 0
    && !getenv("SHELL");
  CHECK(st == 0 && has(&out, "250-AUTH LOGIN PLAIN\r\n") && has(&out, "235 2.7.0 Authentication succeeded.\r\n" MAIL_OK),
        "cvm-authenticate: session 1 authenticates and may send");
  CHECK(env_back, "cvm-authenticate: USER, HOME, SHELL of the process are as before session 1");
  st = session(cfg, "EHLO x\r\nMAIL FROM:<a@b>\r\nAUTH PLAIN AGFsaWNlAHdyb25n\r\nMAIL FROM:<a@b>\r\nQUIT\r\n", sasl, &out);
  CHECK(st == 0 && has(&out, "250-AUTH LOGIN PLAIN\r\n") && has(&out, "\r\n530 5.7.1 You must authenticate first.\r\n5")
        && !has(&out, "235") && has(&out, "\r\n530 5.7.1 You must authenticate first.\r\n221"),
        "cvm-authenticate: session 2 is not authenticated, a wrong password fails, require-auth refuses");
  st = session(cfg, "EHLO x\r\nAUTH PLAIN AGFsaWNlAHNlY3JldA==\r\nMAIL FROM:<a@b>\r\nQUIT\r\n", 0, &out);
  CHECK(st == 0 && !has(&out, "AUTH") && has(&out, "500 5.5.1 Not implemented.\r\n530 5.7.1 You must authenticate first.\r\n"),
        "cvm-authenticate: session 3 without $CVM_SASL_PLAIN offers no AUTH");
  st = session(cfg, "EHLO x\r\nAUTH PLAIN AGFsaWNlAHNlY3JldA==\r\nMAIL FROM:<a@b>\r\nQUIT\r\n", sasl, &out);
  CHECK(st == 0 && has(&out, "235 2.7.0 Authentication succeeded.\r\n" MAIL_OK),
        "cvm-authenticate: session 4 authenticates again");
  free(out.s);
  mf_free(cfg);
}

static void test_cvm_validate(void)
{
  struct mf_config* cfg = load("cvm-validate:accept", "queuedir");
  CHECK(cfg, "cvm-validate: loads");
  if (!cfg) return;
  struct buf out = { 0, 0, 0 };
  char* on[] = { "CVM_LOOKUP=/usr/bin/cvm-pwfile", "CVM_LOOKUP_SECRET=s3cret", 0 };
  const char* in = "HELO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<nobody@x.test>\r\nRCPT TO:<alice@x.test>\r\nQUIT\r\n";
  int st = session(cfg, in, on, &out);
  CHECK(st == 0 && has(&out, MAIL_OK "553 5.1.1 Sorry, that recipient does not exist.\r\n" RCPT_OK),
        "cvm-validate: session 1 looks recipients up");
  st = session(cfg, in, 0, &out);
  CHECK(st == 0 && has(&out, MAIL_OK RCPT_OK RCPT_OK), "cvm-validate: session 2 without $CVM_LOOKUP looks nothing up");
  st = session(cfg, in, on, &out);
  CHECK(st == 0 && has(&out, MAIL_OK "553 5.1.1 Sorry, that recipient does not exist.\r\n" RCPT_OK),
        "cvm-validate: session 3 looks recipients up again");
  free(out.s);
  mf_free(cfg);
}

#ifndef REUSE_NO_CDB
/* A qmail home with control files; more: a morercpthosts.cdb key. */
static void qmail_home(const char* home, const char* bad, const char* rcpthosts, const char* more)
{
  char p[PATH_MAX];
  mkdir(home, 0700);
  snprintf(p, sizeof p, "%s/control", home);
  mkdir(p, 0700);
  write_file(p, "badmailfrom", bad);
  write_file(p, "rcpthosts", rcpthosts);
  write_file(p, "badrcptto", "");
  if (!more) return;
  char cp[PATH_MAX + 40];
  snprintf(cp, sizeof cp, "%s/morercpthosts.cdb", p);
  int fd = open(cp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  struct cdb_make cm;
  if (fd < 0 || cdb_make_start(&cm, fd) < 0 || cdb_make_add(&cm, more, (unsigned)strlen(more), "", 0) < 0
      || cdb_make_finish(&cm) < 0) { perror(cp); abort(); }
  close(fd);
}

static void test_qmail_validate(void)
{
  struct mf_config* cfg = load("qmail-validate", "queuedir");
  CHECK(cfg, "qmail-validate: loads");
  if (!cfg) return;
  char a[PATH_MAX], b[PATH_MAX], ea[PATH_MAX + 16], eb[PATH_MAX + 16];
  snprintf(a, sizeof a, "%s/qmail-a", tmp);
  snprintf(b, sizeof b, "%s/qmail-b", tmp);
  qmail_home(a, "a@bad.test\n", "one.test\n", "more.test");
  qmail_home(b, "", "two.test\n", 0);
  snprintf(ea, sizeof ea, "QMAILHOME=%s", a);
  snprintf(eb, sizeof eb, "QMAILHOME=%s", b);
  char* sa[] = { ea, 0 };
  char* sb[] = { eb, 0 };
  const char* in = "HELO x\r\nMAIL FROM:<a@bad.test>\r\nRSET\r\nMAIL FROM:<ok@x>\r\nRCPT TO:<u@more.test>\r\n"
                   "RCPT TO:<u@one.test>\r\nRCPT TO:<u@two.test>\r\nQUIT\r\n";
  const char* want_a = "553 5.1.0 Sorry, your envelope sender is in my badmailfrom list.\r\n250 2.3.0 OK\r\n250 2.1.0 Sender accepted.\r\n"
                       "250 2.1.5 Recipient accepted.\r\n250 2.1.5 Recipient accepted.\r\n"
                       "550 5.1.0 Mail system is not configured to accept that recipient\r\n221";
  const char* want_b = "\r\n250 2.1.0 Sender accepted.\r\n250 2.3.0 OK\r\n250 2.1.0 Sender accepted.\r\n";
  struct buf out = { 0, 0, 0 };
  int fds_before = count_fds();
  int st = session(cfg, in, sa, &out);
  CHECK(st == 0 && has(&out, want_a), "qmail-validate: session 1 uses the control files of its QMAILHOME (and the cdb)");
  st = session(cfg, in, sb, &out);
  CHECK(st == 0 && has(&out, want_b) && has(&out, "550 5.1.0 Mail system is not configured to accept that recipient\r\n"
                                                    "550 5.1.0 Mail system is not configured to accept that recipient\r\n"
                                                    RCPT_OK "221"),
        "qmail-validate: session 2 has only its own control files");
  st = session(cfg, in, sa, &out);
  CHECK(st == 0 && has(&out, want_a), "qmail-validate: session 3 as session 1");
  CHECK(count_fds() == fds_before, "qmail-validate: the cdb is closed after each session");
  free(out.s);
  mf_free(cfg);
}

#endif

/* starttls-ucspi: the session on fds 0/1, the wrapper's three pipes. */
static int ucspi_session(struct mf_config* cfg, struct buf* plain, struct buf* tls, struct buf* ctl)
{
  int sv[2], c[2], ti[2], to[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 || pipe2(c, O_CLOEXEC) < 0
      || pipe2(ti, O_CLOEXEC) < 0 || pipe2(to, O_CLOEXEC) < 0) return -1;
  const char* before = "EHLO before\r\nSTARTTLS\r\n";
  const char* after = "EHLO after\r\nQUIT\r\n";
  if (write(sv[0], before, strlen(before)) < 0 || write(ti[1], after, strlen(after)) < 0) return -1;
  shutdown(sv[0], SHUT_WR);
  close(ti[1]);
  char e1[32], e2[32], e3[32];
  snprintf(e1, sizeof e1, "SSLCTLFD=%d", c[1]);
  snprintf(e2, sizeof e2, "SSLREADFD=%d", ti[0]);
  snprintf(e3, sizeof e3, "SSLWRITEFD=%d", to[1]);
  char* extra[] = { e1, e2, e3, 0 };
  char* env[32];
  fflush(stdout);
  int save0 = dup(0), save1 = dup(1);
  dup2(sv[1], 0);
  dup2(sv[1], 1);
  close(sv[1]);
  int status = mf_session(cfg, 0, 1, session_env(extra, env));
  dup2(save0, 0);
  dup2(save1, 1);
  close(save0);
  close(save1);
  close(c[1]);
  close(ti[0]);
  close(to[1]);
  struct { int fd; struct buf* b; } outs[] = { { sv[0], plain }, { to[0], tls }, { c[0], ctl } };
  for (int i = 0; i < 3; i++) {
    outs[i].b->len = 0;
    char t[4096];
    ssize_t r;
    while ((r = read(outs[i].fd, t, sizeof t)) > 0) put(outs[i].b, t, (size_t)r);
    close(outs[i].fd);
  }
  after_session();
  return status;
}

static void test_starttls_ucspi(void)
{
  struct mf_config* cfg = load("starttls-ucspi", "echo");
  CHECK(cfg, "starttls-ucspi: loads");
  if (!cfg) return;
  setenv("UCSPITLS", "", 1);
  struct buf plain = { 0, 0, 0 }, tls = { 0, 0, 0 }, ctl = { 0, 0, 0 };
  int bad = 0;
  for (int i = 0; i < 3; i++) {
    int st = ucspi_session(cfg, &plain, &tls, &ctl);
    if (st != 0 || !has(&plain, "250-STARTTLS\r\n") || !has(&plain, "\r\n220 2.0.0 Ready to start TLS\r\n")
        || !ctl.s || strcmp(ctl.s, "y") != 0 || !has(&tls, "250-mx.test\r\n") || has(&tls, "STARTTLS")
        || !has(&tls, "221 2.0.0 Good bye.\r\n") || !getenv("UCSPITLS")) {
      bad++;
      printf("# starttls-ucspi session %d (status %d): plain\n%s# tls\n%s", i, st, plain.s ? plain.s : "", tls.s ? tls.s : "");
    }
  }
  CHECK(bad == 0, "starttls-ucspi: 3 sessions each offer STARTTLS and switch; $UCSPITLS is back after each");
  unsetenv("UCSPITLS");
  int st = ucspi_session(cfg, &plain, &tls, &ctl);
  CHECK(st == 0 && !has(&plain, "STARTTLS\r\n") && has(&plain, "500 5.5.1 Not implemented.\r\n") && ctl.len == 0,
        "starttls-ucspi: a session without $UCSPITLS offers nothing");
  free(plain.s); free(tls.s); free(ctl.s);
  mf_free(cfg);
}

static void test_spf(void)
{
  struct mf_config* cfg = load("spf:accept", "queuedir");
  CHECK(cfg, "spf: loads");
  if (!cfg) return;
  struct buf out = { 0, 0, 0 }, msg = { 0, 0, 0 };
  /* (libspf2 passes any loopback client without looking: documentation
   * addresses here) */
  char* s1[] = { "TCPREMOTEIP=192.0.2.1", "SPF_AUTHSERV_ID=one.test", 0 };
  char* s2[] = { "TCPREMOTEIP=192.0.2.2", "SPF_AUTHSERV_ID=two.test", 0 };
  char* s3[] = { "TCPREMOTEIP=192.0.2.1", "SPF_DISABLE=1", 0 };
  const char* in = "HELO h.test\r\nMAIL FROM:<a@fail.test>\r\nMAIL FROM:<a@pass.test>\r\nRCPT TO:<r@x>\r\nDATA\r\nbody\r\n.\r\nQUIT\r\n";
  int st = session(cfg, in, s1, &out);
  int got1 = take_message(&msg);
  CHECK(st == 0 && has(&out, "550 5.7.23 SPF check failed for fail.test: fail\r\n" MAIL_OK) && got1
        && has(&msg, "Received-SPF: pass") && has(&msg, "receiver=one.test;") && has(&msg, "Authentication-Results: one.test;\n\tspf=pass"),
        "spf: session 1: fail refused, pass recorded with its authserv-id");
  st = session(cfg, in, s2, &out);
  CHECK(st == 0 && has(&out, "550 5.7.23 SPF check failed for fail.test: fail\r\n550 5.7.23 SPF check failed for pass.test: fail\r\n")
        && queue_empty(),
        "spf: session 2 checks its own client address (pass.test fails for it)");
  st = session(cfg, in, s3, &out);
  CHECK(st == 0 && has(&out, MAIL_OK MAIL_OK) && take_message(&msg) && !has(&msg, "SPF") && !has(&msg, "one.test"),
        "spf: session 3 with $SPF_DISABLE: no check, no header of an earlier session");
  free(out.s); free(msg.s);
  mf_free(cfg);
}

#ifndef REUSE_NO_LUA
static void test_lua(void)
{
  char script[PATH_MAX], e[PATH_MAX + 16];
  snprintf(script, sizeof script, "%s/s.lua", tmp);
  write_file(tmp, "s.lua",
             "count = 0\n"
             "function sender(a, p)\n"
             "  count = count + 1\n"
             "  if seen then return 451, 'seen ' .. seen end\n"
             "  seen = a\n"
             "  return 0\n"
             "end\n");
  snprintf(e, sizeof e, "LUA_SCRIPT=%s", script);
  struct mf_config* cfg = load("lua:accept", "queuedir");
  CHECK(cfg, "lua: loads");
  if (!cfg) return;
  struct buf out = { 0, 0, 0 };
  char* on[] = { e, 0 };
  const char* in = "HELO x\r\nMAIL FROM:<a@b>\r\nRSET\r\nMAIL FROM:<c@d>\r\nQUIT\r\n";
  int st = session(cfg, in, on, &out);
  CHECK(st == 0 && has(&out, MAIL_OK "250 2.3.0 OK\r\n451 seen a@b\r\n"), "lua: session 1 keeps its globals between hooks");
  st = session(cfg, in, 0, &out);
  CHECK(st == 0 && has(&out, MAIL_OK "250 2.3.0 OK\r\n" MAIL_OK), "lua: session 2 without $LUA_SCRIPT runs no script");
  st = session(cfg, in, on, &out);
  CHECK(st == 0 && has(&out, MAIL_OK "250 2.3.0 OK\r\n451 seen a@b\r\n") && !has(&out, "seen c@d"),
        "lua: session 3 starts with a fresh state");
  free(out.s);
  mf_free(cfg);
}

#endif

static void test_patterns(void)
{
  char pa[PATH_MAX], pb[PATH_MAX + 16], none[PATH_MAX + 16];
  write_file(tmp, "pat-a", "=A forbids\n*forbidden*\n");
  write_file(tmp, "pat-b", "=B bans\n*banned*\n");
  snprintf(pa, sizeof pa, "%s/pat-a", tmp);
  snprintf(pb, sizeof pb, "PATTERNS=%s/pat-b", tmp);
  snprintf(none, sizeof none, "PATTERNS=%s/pat-missing", tmp);
  setenv("PATTERNS", pa, 1);                  /* preloaded by mf_load */
  struct mf_config* cfg = load("patterns:accept", "queuedir");
  CHECK(cfg, "patterns: loads");
  if (!cfg) { unsetenv("PATTERNS"); return; }
  struct buf out = { 0, 0, 0 }, msg = { 0, 0, 0 };
  const char* in = "HELO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nbanned\r\n.\r\n"
                   "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nforbidden\r\n.\r\nQUIT\r\n";
  char* sb[] = { pb, 0 };
  char* sn[] = { none, 0 };
  int st = session(cfg, in, sb, &out);
  CHECK(st == 0 && has(&out, "554 B bans\r\n") && has(&out, "250 2.6.0 Message accepted.\r\n221") && take_message(&msg),
        "patterns: session 1 uses the file its $PATTERNS names");
  st = session(cfg, in, sn, &out);
  CHECK(st == 0 && !has(&out, "554") && queue_empty() == 0 && take_message(&msg) == 0,
        "patterns: session 2, whose file cannot be read, has no patterns of session 1");
  st = session(cfg, in, 0, &out);
  CHECK(st == 0 && has(&out, "\r\n250 2.6.0 Message accepted.\r\n") && has(&out, "554 A forbids\r\n221") && take_message(&msg),
        "patterns: session 3 uses the preloaded file");
  unsetenv("PATTERNS");
  free(out.s); free(msg.s);
  mf_free(cfg);
}

#ifndef REUSE_NO_CDB
static void test_mailrules(void)
{
  char ra[PATH_MAX], rb[PATH_MAX + 16];
  write_file(tmp, "rules-a", ":s\nd*@a.test:*:A says no\n");
  write_file(tmp, "rules-b", ":s\nd*@b.test:*:B says no\n");
  snprintf(ra, sizeof ra, "%s/rules-a", tmp);
  snprintf(rb, sizeof rb, "MAILRULES=%s/rules-b", tmp);
  setenv("MAILRULES", ra, 1);                 /* preloaded by mf_load */
  struct mf_config* cfg = load("mailrules:accept", "queuedir");
  CHECK(cfg, "mailrules: loads");
  if (!cfg) { unsetenv("MAILRULES"); return; }
  struct buf out = { 0, 0, 0 };
  const char* in = "HELO x\r\nMAIL FROM:<x@a.test>\r\nMAIL FROM:<x@b.test>\r\nQUIT\r\n";
  char* sb[] = { rb, 0 };
  int st = session(cfg, in, sb, &out);
  CHECK(st == 0 && has(&out, MAIL_OK "553 B says no\r\n"), "mailrules: session 1 uses the file its $MAILRULES names");
  st = session(cfg, in, 0, &out);
  CHECK(st == 0 && has(&out, "553 A says no\r\n" MAIL_OK), "mailrules: session 2 uses the preloaded file");
  st = session(cfg, in, sb, &out);
  CHECK(st == 0 && has(&out, MAIL_OK "553 B says no\r\n"), "mailrules: session 3 as session 1");
  unsetenv("MAILRULES");
  free(out.s);
  mf_free(cfg);
}

#endif

static void test_rbl(void)
{
  struct mf_config* cfg = load("rbl:accept", "queuedir");
  CHECK(cfg, "rbl: loads");
  if (!cfg) return;
  struct buf out = { 0, 0, 0 };
  const char* in = "HELO x\r\nMAIL FROM:<a@b>\r\nQUIT\r\n";
  char* s[3][3] = { { "RBL_BLACKLISTS=bl.test", "TCPREMOTEIP=127.0.0.2", 0 },
                    { "RBL_BLACKLISTS=bl.test", "TCPREMOTEIP=127.0.0.3", 0 },
                    { "RBL_BLACKLISTS=bl.test", "TCPREMOTEIP=127.0.0.4", 0 } };
  int st = session(cfg, in, s[0], &out);
  CHECK(st == 0 && has(&out, "451 Blocked: listed two\r\n"), "rbl: session 1's client is listed");
  st = session(cfg, in, s[1], &out);
  CHECK(st == 0 && has(&out, MAIL_OK) && !has(&out, "Blocked"), "rbl: session 2's client is not");
  st = session(cfg, in, s[2], &out);
  CHECK(st == 0 && has(&out, "451 Blocked: listed four\r\n") && !has(&out, "two"), "rbl: session 3 has its own text");
  free(out.s);
  mf_free(cfg);
}

int main(void)
{
  char exe[PATH_MAX], mods[PATH_MAX + 16];
  if (build_dir(exe, sizeof exe) < 0) { CHECK(0, "own path"); return done(); }
  snprintf(mods, sizeof mods, "%s/lib", exe);
  snprintf(modenv, sizeof modenv, "MODULE_PATH=%s", mods);
  char tmpl[] = "/tmp/mfreuse-a.XXXXXX";
  if (!mkdtemp(tmpl)) { CHECK(0, "temp dir"); return done(); }
  snprintf(tmp, sizeof tmp, "%s", tmpl);
  snprintf(qdir, sizeof qdir, "%s/queue", tmp);
  mkdir(qdir, 0700);
  char sub[PATH_MAX];
  snprintf(sub, sizeof sub, "%s/tmp", qdir); mkdir(sub, 0700);
  snprintf(sub, sizeof sub, "%s/new", qdir); mkdir(sub, 0700);
  snprintf(qenv, sizeof qenv, "QUEUEDIR=%s", qdir);
  signal(SIGPIPE, SIG_IGN);
  setenv("TMPDIR", tmp, 1);
  /* cvm-pwfile (command mode) reads its file from the process
   * environment, which the CVM client passes to it. */
  write_file(tmp, "passwd", "alice:secret:1000:1000:Alice:/home/alice:/bin/sh\n");
  snprintf(pwfile, sizeof pwfile, "%s/passwd", tmp);
  setenv("CVM_PWFILE_PATH", pwfile, 1);
  pid_t dns = dns_start();
  CHECK(dns > 0, "the fake DNS server runs");

  char logpath[PATH_MAX];
  snprintf(logpath, sizeof logpath, "%s/log", tmp);
  fflush(stdout);
  int saved_err = dup(2);
  int logfd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (logfd >= 0) dup2(logfd, 2);
  if (!getcwd(cwd_base, sizeof cwd_base)) cwd_base[0] = 0;
  fds_base = count_fds();

  test_add_received();
  test_check_fqdn();
  test_counters();
  test_cvm_authenticate();
  test_cvm_validate();
#ifndef REUSE_NO_CDB
  test_qmail_validate();
#else
  SKIP("qmail-validate", "not built (WITH_CDB=0)");
#endif
  test_starttls_ucspi();
  test_spf();
#ifndef REUSE_NO_LUA
  test_lua();
#else
  SKIP("lua", "not built (WITH_LUA=0)");
#endif
  test_patterns();
#ifndef REUSE_NO_CDB
  test_mailrules();
#else
  SKIP("mailrules", "not built (WITH_CDB=0)");
#endif
  test_rbl();

  CHECK(fd_bad == 0, "the number of open fds is the same after every session");
  CHECK(cwd_bad == 0, "the working directory is the same after every session");
  if (fd_bad) printf("# %d sessions changed the fd count\n", fd_bad);

  if (saved_err >= 0) { dup2(saved_err, 2); close(saved_err); }
  if (logfd >= 0) close(logfd);
  if (tap_failed) {                 /* the sessions' logs help to see why */
    FILE* f = fopen(logpath, "r");
    char line[1024];
    while (f && fgets(line, sizeof line, f)) printf("# log: %s", line);
    if (f) fclose(f);
  }
  if (dns > 0) { kill(dns, SIGTERM); waitpid(dns, 0, 0); }
  char cmd[PATH_MAX + 16];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
  if (system(cmd) != 0) printf("# could not remove %s\n", tmp);
#if defined(__SANITIZE_ADDRESS__)
  CHECK(__lsan_do_recoverable_leak_check() == 0, "LeakSanitizer finds no leak");
#endif
  return done();
}

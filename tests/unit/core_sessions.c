/* Unit test: 10,000 SMTP sessions in one process through mf_load/mf_session
 * (core/mf.h) over socketpairs, with the real protocol-smtp.so, the
 * queuedir back end and built-in plugins of this build ($BUILD/lib, found
 * from this program's path).
 *
 * Each session's whole client transcript is written at once (every
 * command pipelined), the client side is shut down for writing, the
 * session runs, then every reply byte is compared with the expected reply
 * stream and every queued file with its expected content (then removed).
 * Transcripts: a full EHLO transaction with dot-stuffing; two messages
 * and an RSET in one session; protocol errors (RCPT before MAIL, unknown
 * command, DATA without RCPT, over-long line); a sender refused through
 * the per-session environment of mf_session; a message through a
 * temporary file (force-file).  The test also checks that the number of
 * open fds does not grow, and (in the sanitizer build) LeakSanitizer runs
 * at exit: any leak fails the test. */
#include "tap.h"
#include "sessions.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define SESSIONS_DFLT 10000

#if defined(__SANITIZE_ADDRESS__)
int __lsan_do_recoverable_leak_check(void);
#endif
const char* __asan_default_options(void);
const char* __asan_default_options(void) { return "detect_leaks=1"; }

static char qdir[256];

static void show_fds(int before)
{
  DIR* d = opendir("/proc/self/fd");
  struct dirent* e;
  char p[300], t[300];
  printf("# fds before: %d, now:\n", before);
  while (d && (e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    snprintf(p, sizeof p, "/proc/self/fd/%s", e->d_name);
    ssize_t n = readlink(p, t, sizeof t - 1);
    t[n > 0 ? n : 0] = 0;
    printf("#   %s -> %s\n", e->d_name, t);
  }
  if (d) closedir(d);
}

/* Growable byte buffer for transcripts and expectations. */
static void puts_(struct buf* b, const char* s) { put(b, s, strlen(s)); }

static void putf(struct buf* b, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct buf* b, const char* fmt, ...)
{
  char tmp[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  put(b, tmp, (size_t)n);
}

static int cmp_names(const void* a, const void* b) { return strcmp(*(char* const*)a, *(char* const*)b); }

/* The files in qdir/new, sorted, compared with want[0..n) and removed. */
static int check_queue(const struct buf* want, int n)
{
  char path[PATH_MAX];
  char* names[8];
  int k = 0, ok = 1;
  snprintf(path, sizeof path, "%s/new", qdir);
  DIR* d = opendir(path);
  if (!d) return 0;
  struct dirent* e;
  while ((e = readdir(d)))
    if (e->d_name[0] != '.') {
      if (k == 8) { ok = 0; break; }
      names[k++] = strdup(e->d_name);
    }
  closedir(d);
  if (k != n) ok = 0;
  qsort(names, (size_t)k, sizeof *names, cmp_names);
  for (int i = 0; i < k; i++) {
    snprintf(path, sizeof path, "%s/new/%s", qdir, names[i]);
    if (ok && i < n) {
      struct buf got = {0, 0, 0};
      int fd = open(path, O_RDONLY | O_CLOEXEC);
      char tmp[4096];
      ssize_t r;
      while (fd >= 0 && (r = read(fd, tmp, sizeof tmp)) > 0) put(&got, tmp, (size_t)r);
      if (fd >= 0) close(fd);
      if (got.len != want[i].len || (got.len && memcmp(got.s, want[i].s, got.len) != 0)) ok = 0;
      free(got.s);
    }
    unlink(path);
    free(names[i]);
  }
  snprintf(path, sizeof path, "%s/tmp", qdir);
  if ((d = opendir(path))) {
    while ((e = readdir(d))) if (e->d_name[0] != '.') ok = 0;   /* nothing left behind */
    closedir(d);
  }
  return ok;
}

static const char* const ehlo_reply =
  "220 mx.test mailfront ESMTP\r\n250-mx.test\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 SMTPUTF8\r\n";
#define R_SENDER "250 2.1.0 Sender accepted.\r\n"
#define R_RCPT "250 2.1.5 Recipient accepted.\r\n"
#define R_354 "354 End your message with a period on a line by itself.\r\n"
#define R_MSG "250 2.6.0 Message accepted.\r\n"
#define R_250OK "250 2.3.0 OK\r\n"
#define R_BYE "221 2.0.0 Good bye.\r\n"
#define R_MAIL_FIRST "503 5.5.1 You must send MAIL FROM: first\r\n"
#define R_RCPT_FIRST "503 5.5.1 You must send RCPT TO: first\r\n"

enum kind { K_FULL, K_TWO, K_ERRORS, K_REFUSED, K_FILE, K_KINDS };

/* Build the transcript of session i of kind k: input, expected replies,
 * expected queued files (*nfiles), and which configuration it uses. */
static int build(int i, enum kind k, struct buf* in, struct buf* out, struct buf* files, int* nfiles)
{
  *nfiles = 0;
  switch (k) {
  case K_FULL:
    putf(in, "EHLO c%d.test\r\nMAIL FROM:<s%d@a.test>\r\nRCPT TO:<r%d@b.test>\r\nRCPT TO:<x@c.test>\r\nDATA\r\n"
             "Subject: %d\r\n\r\n..dot line\r\nbody %d\r\n.\r\nQUIT\r\n", i, i, i, i, i);
    puts_(out, ehlo_reply);
    puts_(out, R_SENDER R_RCPT R_RCPT R_354 R_MSG R_BYE);
    putf(&files[0], "s%d@a.test%cr%d@b.test%cx@c.test%c%cSubject: %d\n\n.dot line\nbody %d\n", i, 0, i, 0, 0, 0, i, i);
    *nfiles = 1;
    return 0;
  case K_TWO:
    putf(in, "HELO c.test\r\nMAIL FROM:<a%d@t>\r\nRCPT TO:<b@t>\r\nDATA\r\none\r\n.\r\n"
             "MAIL FROM:<z@t>\r\nRCPT TO:<y@t>\r\nRSET\r\nRCPT TO:<w@t>\r\n"
             "MAIL FROM:<>\r\nRCPT TO:<c%d@t>\r\nDATA\r\ntwo\r\n.\r\nQUIT\r\n", i, i);
    puts_(out, "220 mx.test mailfront ESMTP\r\n250 mx.test\r\n");
    puts_(out, R_SENDER R_RCPT R_354 R_MSG R_SENDER R_RCPT R_250OK R_MAIL_FIRST R_SENDER R_RCPT R_354 R_MSG R_BYE);
    putf(&files[0], "a%d@t%cb@t%c%cone\n", i, 0, 0, 0);
    putf(&files[1], "%cc%d@t%c%ctwo\n", 0, i, 0, 0);
    *nfiles = 2;
    return 0;
  case K_ERRORS: {
    char longline[5001];
    memset(longline, 'x', sizeof longline - 1);
    longline[sizeof longline - 1] = 0;
    putf(in, "RCPT TO:<a@b>\r\nFOO%d\r\nMAIL FROM:<a@b>\r\nDATA\r\nNOOP ", i);
    puts_(in, longline);
    puts_(in, "\r\nNOOP\r\nQUIT\r\n");
    puts_(out, "220 mx.test mailfront ESMTP\r\n");
    puts_(out, R_MAIL_FIRST "500 5.5.1 Not implemented.\r\n" R_SENDER R_RCPT_FIRST
               "500 5.5.2 Line too long.\r\n" R_250OK R_BYE);
    return 0;
  }
  case K_REFUSED:
    /* no QUIT: the session ends at end of input */
    putf(in, "HELO c\r\nMAIL FROM:<a%d@b>\r\nRCPT TO:<c@d>\r\n", i);
    puts_(out, "220 mx.test mailfront ESMTP\r\n250 mx.test\r\n553 no mail today\r\n" R_MAIL_FIRST);
    return 1;
  case K_FILE:
    putf(in, "EHLO x\r\nMAIL FROM:<f%d@t>\r\nRCPT TO:<g@t>\r\nDATA\r\nline\r\n.\r\nMAIL FROM:<h@t>\r\nRCPT TO:<i@t>\r\nRSET\r\nQUIT\r\n", i);
    puts_(out, ehlo_reply);
    puts_(out, R_SENDER R_RCPT R_354 R_MSG R_SENDER R_RCPT R_250OK R_BYE);
    putf(&files[0], "f%d@t%cg@t%c%cline\n", i, 0, 0, 0);
    *nfiles = 1;
    return 2;
  case K_KINDS: break;
  }
  return 0;
}

int main(int argc, char** argv)
{
  (void)argc;
  const char* ns = getenv("MF_SESSIONS");     /* for debugging: fewer sessions */
  int sessions = ns && atoi(ns) > 0 ? atoi(ns) : SESSIONS_DFLT;
  char exe[PATH_MAX], mods[PATH_MAX + 16];
  if (build_dir(exe, sizeof exe) < 0) { CHECK(0, "own path"); return done(); }
  snprintf(mods, sizeof mods, "%s/lib", exe);
  char tmpl[] = "/tmp/mfsessions.XXXXXX";
  if (!mkdtemp(tmpl)) { CHECK(0, "temp dir"); return done(); }
  snprintf(qdir, sizeof qdir, "%s", tmpl);
  char sub[300];
  snprintf(sub, sizeof sub, "%s/tmp", qdir); mkdir(sub, 0700);
  snprintf(sub, sizeof sub, "%s/new", qdir); mkdir(sub, 0700);
  signal(SIGPIPE, SIG_IGN);
  setenv("TMPDIR", qdir, 1);

  /* Logs of 10,000 sessions go to a file, not to the test's output. */
  char logpath[300];
  snprintf(logpath, sizeof logpath, "%s/log", qdir);
  int saved_err = dup(2);
  int logfd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

  char modenv[PATH_MAX + 32];
  snprintf(modenv, sizeof modenv, "MODULE_PATH=%s", mods);
  char* loadenv[] = { modenv, 0 };
  char* a1[] = { "smtp", "queuedir", "accept", 0 };
  char* a2[] = { "smtp", "queuedir", "reject:accept", 0 };
  char* a3[] = { "smtp", "queuedir", "accept", "force-file", 0 };
  const response* err = 0;
  struct mf_config* cfgs[3] = { mf_load(3, a1, loadenv, &err), mf_load(3, a2, loadenv, &err), mf_load(4, a3, loadenv, &err) };
  CHECK(cfgs[0] && cfgs[1] && cfgs[2], "three configurations load");
  if (!cfgs[0] || !cfgs[1] || !cfgs[2]) { printf("# %s\n", err ? err->message : "?"); return done(); }
  char* a4[] = { "smtp", "no-such-backend", 0 };
  err = 0;
  CHECK(mf_load(2, a4, loadenv, &err) == 0 && err && err->number == 451
        && strstr(err->message, "Error loading backend no-such-backend"), "a missing back end fails with 451");
  mf_error_free(err);

  char qenv[300];
  snprintf(qenv, sizeof qenv, "QUEUEDIR=%s", qdir);
  char* env_plain[] = { qenv, "QUEUEDIR_NOSYNC=1", "TCPLOCALHOST=mx.test", 0 };
  char* env_reject[] = { qenv, "QUEUEDIR_NOSYNC=1", "TCPLOCALHOST=mx.test", "SMTPREJECT=-no mail today", 0 };

  if (logfd >= 0) dup2(logfd, 2);
  int fds_before = count_fds();
  int bad_reply = 0, bad_file = 0, bad_status = 0, bad_io = 0, fd_growth = 0;
  int first_bad = -1;
  struct buf in = {0, 0, 0}, want = {0, 0, 0}, got = {0, 0, 0}, files[2] = {{0, 0, 0}, {0, 0, 0}};
  for (int i = 0; i < sessions; i++) {
    int nfiles, status = -1;
    in.len = want.len = got.len = files[0].len = files[1].len = 0;
    enum kind k = (enum kind)(i % K_KINDS);
    int c = build(i, k, &in, &want, files, &nfiles);
    if (run_session(cfgs[c], &in, &got, k == K_REFUSED ? env_reject : env_plain, &status) < 0) { bad_io++; continue; }
    int ok = 1;
    if (got.len != want.len || memcmp(got.s, want.s, got.len) != 0) { bad_reply++; ok = 0; }
    if (!check_queue(files, nfiles)) { bad_file++; ok = 0; }
    if (status != 0) { bad_status++; ok = 0; }
    if (i % 1000 == 999 && count_fds() != fds_before) { fd_growth++; ok = 0; }
    if (!ok && first_bad < 0) {
      first_bad = i;
      dprintf(saved_err, "session %d (kind %d, status %d): sent\n%s\nwanted\n%s\ngot\n%s\n", i, k, status, in.len < 2000 ? in.s : "(long)", want.s, got.s ? got.s : "");
    }
  }
  int fds_after = count_fds();
  CHECK(bad_io == 0, "every session ran over its socketpair");
  CHECK(bad_reply == 0, "every reply stream is exact");
  CHECK(bad_file == 0, "every queued file is exact, nothing else queued or left in tmp/");
  CHECK(bad_status == 0, "every session exits 0");
  CHECK(fd_growth == 0 && fds_after == fds_before, "no fd growth");
  if (first_bad >= 0) printf("# first failing session: %d\n", first_bad);
  if (fds_after != fds_before) show_fds(fds_before);

  /* The log holds one bytes line per session. */
  FILE* f = fopen(logpath, "r");
  char line[8192];
  int bytes_lines = 0;
  while (f && fgets(line, sizeof line, f)) if (strstr(line, ": bytes in: ")) bytes_lines++;
  if (f) fclose(f);
  CHECK(bytes_lines == sessions, "one bytes line per session");
  unlink(logpath);

  /* The qmail back end changes nothing in this process: directory, signal
   * mask and SIGPIPE disposition stay as they were. */
  char script[400], home[300], cwd_before[PATH_MAX], cwd_after[PATH_MAX];
  snprintf(home, sizeof home, "%s/qmail", qdir);
  mkdir(home, 0700);
  snprintf(script, sizeof script, "%s/qq.sh", home);
  FILE* sf = fopen(script, "w");
  if (sf) { fputs("#!/bin/sh\ncat > msg && cat <&1 > env\n", sf); fclose(sf); }
  chmod(script, 0700);
  char qhome[400], qprog[500];
  snprintf(qhome, sizeof qhome, "QMAILHOME=%s", home);
  snprintf(qprog, sizeof qprog, "QMAILQUEUE=%s", script);
  char* env_qmail[] = { qhome, qprog, "TCPLOCALHOST=mx.test", 0 };
  char* a5[] = { "smtp", "qmail", "accept", 0 };
  struct mf_config* qcfg = mf_load(3, a5, loadenv, &err);
  CHECK(qcfg != 0, "the qmail configuration loads");
  sigset_t mask_before, mask_after;
  sigprocmask(SIG_SETMASK, 0, &mask_before);
  if (!getcwd(cwd_before, sizeof cwd_before)) cwd_before[0] = 0;
  int qbad = 0;
  for (int i = 0; qcfg && i < 20; i++) {
    int status = -1;
    in.len = want.len = got.len = 0;
    putf(&in, "HELO x\r\nMAIL FROM:<q%d@t>\r\nRCPT TO:<r@t>\r\nDATA\r\nhi %d\r\n.\r\nQUIT\r\n", i, i);
    if (run_session(qcfg, &in, &got, env_qmail, &status) < 0 || status != 0) { qbad++; continue; }
    char msgpath[400], envpath[400], tmp[256];
    snprintf(msgpath, sizeof msgpath, "%s/msg", home);
    snprintf(envpath, sizeof envpath, "%s/env", home);
    struct buf m = {0, 0, 0}, e = {0, 0, 0}, wm = {0, 0, 0}, we = {0, 0, 0};
    FILE* fm = fopen(msgpath, "rb");
    FILE* fe = fopen(envpath, "rb");
    size_t k;
    while (fm && (k = fread(tmp, 1, sizeof tmp, fm)) > 0) put(&m, tmp, k);
    while (fe && (k = fread(tmp, 1, sizeof tmp, fe)) > 0) put(&e, tmp, k);
    if (fm) fclose(fm);
    if (fe) fclose(fe);
    putf(&wm, "hi %d\n", i);
    putf(&we, "Fq%d@t%cTr@t%c%c", i, 0, 0, 0);
    if (!got.s || !strstr(got.s, "250 2.6.0 Accepted message qp ") || !strstr(got.s, "\r\n221 2.0.0 Good bye.\r\n")
        || m.len != wm.len || (m.len && memcmp(m.s, wm.s, m.len)) || e.len != we.len || (e.len && memcmp(e.s, we.s, e.len))) qbad++;
    free(m.s); free(e.s); free(wm.s); free(we.s);
    unlink(msgpath);
    unlink(envpath);
  }
  sigprocmask(SIG_SETMASK, 0, &mask_after);
  struct sigaction pipe_now;
  sigaction(SIGPIPE, 0, &pipe_now);
  if (!getcwd(cwd_after, sizeof cwd_after)) cwd_after[0] = 1;
  CHECK(qbad == 0, "20 messages through qmail-queue: replies, message and envelope exact");
  CHECK(strcmp(cwd_before, cwd_after) == 0, "the working directory is unchanged");
  int same_mask = 1;
  for (int sig = 1; sig < NSIG; sig++) if (sigismember(&mask_before, sig) != sigismember(&mask_after, sig)) same_mask = 0;
  if (!same_mask || pipe_now.sa_handler != SIG_IGN) printf("# mask same %d, SIGPIPE ignored %d\n", same_mask, pipe_now.sa_handler == SIG_IGN);
  CHECK(same_mask && pipe_now.sa_handler == SIG_IGN,
        "the signal mask and SIGPIPE's disposition are unchanged");
  unlink(script);
  rmdir(home);
  mf_free(qcfg);

  /* ABI version 4 through the example plugin (build/examples): load reads
   * $TEMPLATE_BLOCK once, mf_reload again; the recipient count is kept per
   * session (session_open/session_close, plugin_context). */
  char vdir[300], link_to[PATH_MAX + 64], link_at[400];
  snprintf(vdir, sizeof vdir, "%s/v4mods", qdir);
  mkdir(vdir, 0700);
  const char* const links[][2] = { { "lib/protocol-smtp.so", "protocol-smtp.so" },
                                   { "lib/backend-queuedir.so", "backend-queuedir.so" },
                                   { "examples/plugin-template.so", "plugin-template.so" } };
  for (int i = 0; i < 3; i++) {
    snprintf(link_to, sizeof link_to, "%s/%s", exe, links[i][0]);
    snprintf(link_at, sizeof link_at, "%s/%s", vdir, links[i][1]);
    if (symlink(link_to, link_at) < 0) CHECK(0, "symlink");
  }
  char vmodenv[400];
  snprintf(vmodenv, sizeof vmodenv, "MODULE_PATH=%s", vdir);
  char* vloadenv[] = { vmodenv, 0 };
  char* a6[] = { "smtp", "queuedir", "template:accept", 0 };
  setenv("TEMPLATE_BLOCK", "blocked", 1);
  struct mf_config* vcfg = mf_load(3, a6, vloadenv, &err);
  CHECK(vcfg != 0, "a version-4 plugin loads beside version-3 ones");
  setenv("TEMPLATE_BLOCK", "other", 1);            /* not seen until reload */
  int vbad = 0;
  for (int i = 0; vcfg && i < 200; i++) {
    int status = -1, nr = 1 + i % 3;
    struct buf file = {0, 0, 0};
    in.len = want.len = got.len = 0;
    puts_(&in, "HELO x\r\nMAIL FROM:<a@t>\r\nRCPT TO:<blocked@t>\r\n");
    puts_(&want, "220 mx.test mailfront ESMTP\r\n250 mx.test\r\n" R_SENDER
                 "553 5.7.1 That recipient is blocked by the template plugin.\r\n");
    putf(&file, "a@t%c", 0);
    for (int k = 0; k < nr; k++) {
      putf(&in, "RCPT TO:<r%d@t>\r\n", k);
      puts_(&want, R_RCPT);
      putf(&file, "r%d@t%c", k, 0);
    }
    putf(&file, "%cX-Template-Recipients: %d\nx\n", 0, nr);
    puts_(&in, "DATA\r\nx\r\n.\r\nQUIT\r\n");
    puts_(&want, R_354 R_MSG R_BYE);
    if (run_session(vcfg, &in, &got, env_plain, &status) < 0 || status != 0
        || got.len != want.len || memcmp(got.s, want.s, got.len) != 0 || !check_queue(&file, 1)) {
      if (!vbad) dprintf(saved_err, "v4 session %d: got\n%s\n", i, got.s ? got.s : "");
      vbad++;
    }
    free(file.s);
  }
  CHECK(vbad == 0, "200 sessions: per-session counts, the block read by load");
  CHECK(vcfg && mf_reload(vcfg, &err) == 0, "mf_reload runs the reload hook");
  if (vcfg) {
    int status = -1;
    in.len = got.len = 0;
    puts_(&in, "HELO x\r\nMAIL FROM:<a@t>\r\nRCPT TO:<blocked@t>\r\nRCPT TO:<other@t>\r\nQUIT\r\n");
    run_session(vcfg, &in, &got, env_plain, &status);
    CHECK(got.s && strstr(got.s, "\r\n250 2.1.5 Recipient accepted.\r\n553 5.7.1 That recipient is blocked"),
          "after reload the new block applies");
  }
  unsetenv("TEMPLATE_BLOCK");
  mf_free(vcfg);
  for (int i = 0; i < 3; i++) {
    snprintf(link_at, sizeof link_at, "%s/%s", vdir, links[i][1]);
    unlink(link_at);
  }
  rmdir(vdir);
  if (saved_err >= 0) { dup2(saved_err, 2); close(saved_err); }
  if (logfd >= 0) close(logfd);

  CHECK(mf_reload(cfgs[0], &err) == 0, "reload without reload hooks succeeds");
  for (int i = 0; i < 3; i++) mf_free(cfgs[i]);
  free(in.s); free(want.s); free(got.s); free(files[0].s); free(files[1].s);
  snprintf(sub, sizeof sub, "%s/tmp", qdir); rmdir(sub);
  snprintf(sub, sizeof sub, "%s/new", qdir); rmdir(sub);
  rmdir(qdir);
  (void)argv;
#if defined(__SANITIZE_ADDRESS__)
  CHECK(__lsan_do_recoverable_leak_check() == 0, "LeakSanitizer finds no leak");
#endif
  return done();
}

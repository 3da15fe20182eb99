/* Unit test: relay sessions one after another in one process share no
 * state (issue 11: the relay back end's state is a per-session context).
 *
 * The real backend-smtp.so of this build is loaded once (mf_load, as
 * core_sessions.c does) and runs several sessions through mf_session over
 * socketpairs.  Each session relays to a fake next hop of its own, a
 * child process that serves SMTP on a Unix socket ($RELAY_SOCKET, given in
 * the session's environment) and writes every line it receives, with
 * connection markers, to a transcript file.  Checked: each session's
 * replies; that each next hop saw exactly one connection with exactly its
 * session's envelope and body (a connection or recipient list kept from
 * an earlier session would show up at the wrong hop or twice); that each
 * connection ended with QUIT when its session ended (session_close), and
 * that two transactions of one session share one connection (state
 * within a session is kept).  The fd count does not grow. */
#include "tap.h"
#include "sessions.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define HOPS 3

/* ---- the fake next hop (a child process) ---- */

static void say(int fd, const char* s) { (void)!write(fd, s, strlen(s)); }

static void hop_serve(int lfd, const char* logpath)
{
  FILE* log = fopen(logpath, "w");
  if (!log) _exit(1);
  alarm(60);
  for (;;) {
    int c = accept(lfd, 0, 0);
    if (c < 0) _exit(0);
    fprintf(log, "CONNECT\n");
    fflush(log);
    say(c, "220 hop.test ESMTP\r\n");
    char line[2048];
    int data = 0;
    while (read_line(c, line, sizeof line)) {
      fprintf(log, "%s\n", line);
      fflush(log);
      if (data) {
        if (strcmp(line, ".") == 0) { data = 0; say(c, "250 2.0.0 queued\r\n"); }
        continue;
      }
      if (strncasecmp(line, "EHLO", 4) == 0) say(c, "250 hop.test\r\n");
      else if (strncasecmp(line, "DATA", 4) == 0) { data = 1; say(c, "354 go ahead\r\n"); }
      else if (strncasecmp(line, "QUIT", 4) == 0) { say(c, "221 bye\r\n"); break; }
      else say(c, "250 ok\r\n");
    }
    fprintf(log, "CLOSE\n");
    fflush(log);
    close(c);
  }
}

static pid_t hop_start(const char* sock, const char* logpath)
{
  int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un sun;
  memset(&sun, 0, sizeof sun);
  sun.sun_family = AF_UNIX;
  snprintf(sun.sun_path, sizeof sun.sun_path, "%s", sock);
  if (lfd < 0 || bind(lfd, (struct sockaddr*)&sun, sizeof sun) < 0 || listen(lfd, 8) < 0) return -1;
  pid_t pid = fork();
  if (pid == 0) hop_serve(lfd, logpath);
  close(lfd);
  return pid;
}

/* ---- sessions ---- */

static const char* const one_message =
  "EHLO client.test\r\nMAIL FROM:<a%d@x.test>\r\nRCPT TO:<r%d@y.test>\r\nDATA\r\nSubject: %d\r\n\r\nbody %d\r\n.\r\nQUIT\r\n";

int main(void)
{
  char exe[PATH_MAX], mods[PATH_MAX + 16];
  if (build_dir(exe, sizeof exe) < 0) { CHECK(0, "own path"); return done(); }
  snprintf(mods, sizeof mods, "%s/lib", exe);
  char dir[] = "/tmp/mfrelaysess.XXXXXX";
  if (!mkdtemp(dir)) { CHECK(0, "temp dir"); return done(); }
  signal(SIGPIPE, SIG_IGN);
  setenv("TMPDIR", dir, 1);

  char sock[HOPS][300], logs[HOPS][300];
  pid_t pids[HOPS];
  for (int i = 0; i < HOPS; i++) {
    snprintf(sock[i], sizeof sock[i], "%s/hop%d.sock", dir, i);
    snprintf(logs[i], sizeof logs[i], "%s/hop%d.log", dir, i);
    pids[i] = hop_start(sock[i], logs[i]);
  }
  CHECK(pids[0] > 0 && pids[1] > 0 && pids[2] > 0, "three fake next hops started");

  char modenv[PATH_MAX + 32];
  snprintf(modenv, sizeof modenv, "MODULE_PATH=%s", mods);
  char* loadenv[] = { modenv, 0 };
  char* argv[] = { "smtp", "smtp", "accept", 0 };
  const response* err = 0;
  struct mf_config* cfg = mf_load(3, argv, loadenv, &err);
  CHECK(cfg != 0, "smtp + backend-smtp load once");
  if (!cfg) { printf("# %s\n", err && err->message ? err->message : "?"); return done(); }

  int fds_before = count_fds();
  struct buf out = {0, 0, 0}, got = {0, 0, 0};
  char in[2048], renv[HOPS][1000];
  for (int i = 0; i < HOPS; i++) {
    snprintf(renv[i], sizeof renv[i], "RELAY_SOCKET=%s", sock[i]);
    char* env[] = { renv[i], "TCPLOCALHOST=mx.test", "RELAY_HELO=front.test", 0 };
    if (i < 2) snprintf(in, sizeof in, one_message, i, i, i, i);
    else        /* two transactions in one session: one connection */
      snprintf(in, sizeof in,
               "EHLO client.test\r\nMAIL FROM:<a2@x.test>\r\nRCPT TO:<r2@y.test>\r\nDATA\r\nSubject: 2\r\n\r\nbody 2\r\n.\r\n"
               "MAIL FROM:<b2@x.test>\r\nRCPT TO:<s2@y.test>\r\nDATA\r\nSubject: 2b\r\n\r\nbody 2b\r\n.\r\nQUIT\r\n");
    struct buf input = {0, 0, 0};
    put(&input, in, strlen(in));
    int status = -1;
    out.len = 0;
    if (run_session(cfg, &input, &out, env, &status) < 0) status = -1;
    free(input.s);
    char name[80];
    snprintf(name, sizeof name, "session %d ends with status 0", i);
    CHECK(status == 0, name);
    snprintf(name, sizeof name, "session %d: the next hop's acceptance is the reply", i);
    CHECK(strstr(out.s ? out.s : "", "250 2.0.0 queued\r\n") != 0, name);
    if (!strstr(out.s ? out.s : "", "250 2.0.0 queued")) printf("# %s\n", out.s ? out.s : "");
  }
  CHECK(count_fds() == fds_before, "no fd left open by the sessions");

  usleep(200000);   /* let the hops write their CLOSE lines */
  static const char* const want[HOPS] = {
    "CONNECT\nEHLO front.test\nMAIL FROM:<a0@x.test>\nRCPT TO:<r0@y.test>\nDATA\nSubject: 0\n\nbody 0\n.\nQUIT\nCLOSE\n",
    "CONNECT\nEHLO front.test\nMAIL FROM:<a1@x.test>\nRCPT TO:<r1@y.test>\nDATA\nSubject: 1\n\nbody 1\n.\nQUIT\nCLOSE\n",
    "CONNECT\nEHLO front.test\nMAIL FROM:<a2@x.test>\nRCPT TO:<r2@y.test>\nDATA\nSubject: 2\n\nbody 2\n.\n"
    "MAIL FROM:<b2@x.test>\nRCPT TO:<s2@y.test>\nDATA\nSubject: 2b\n\nbody 2b\n.\nQUIT\nCLOSE\n",
  };
  for (int i = 0; i < HOPS; i++) {
    slurp(logs[i], &got);
    char name[120];
    snprintf(name, sizeof name, "next hop %d saw one connection with only its session's transaction(s), then QUIT", i);
    CHECK(strcmp(got.s, want[i]) == 0, name);
    if (strcmp(got.s, want[i]) != 0) printf("# hop %d got:\n%s# want:\n%s", i, got.s, want[i]);
  }

  mf_free(cfg);
  for (int i = 0; i < HOPS; i++) {
    if (pids[i] > 0) { kill(pids[i], SIGTERM); waitpid(pids[i], 0, 0); }
    unlink(sock[i]);
    unlink(logs[i]);
  }
  rmdir(dir);
  free(out.s);
  free(got.s);
  return done();
}

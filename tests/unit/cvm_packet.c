/* cvm_packet -- unit tests of src/auth/cvm.c: request packets (the example
 * of protocol-2.html), reply parsing (strictness, required facts, failures
 * with OUTOFSCOPE), account splitting, and whole calls to small shell
 * modules written at run time (success, rejection, exit status, chains,
 * a hanging module and its deadline, an ignored SIGCHLD), cvm_setenv. */
#include "../../src/auth/cvm.c"
#include "tap.h"
#include <stdio.h>
#include <sys/stat.h>

static char dir[] = "/tmp/cvmunit.XXXXXX";

/* Write an executable shell module; returns its path (static buffer). */
static const char* module(const char* name, const char* body)
{
  static char path[16][256];
  static int k;
  char* p = path[k++ % 16];
  snprintf(p, 256, "%s/%s", dir, name);
  FILE* f = fopen(p, "w");
  fprintf(f, "#!/bin/sh\n%s\n", body);
  fclose(f);
  chmod(p, 0755);
  return p;
}

#define OKREPLY "cat >/dev/null; printf '\\000\\000\\001\\005alice\\002\\0041000\\003\\0041001\\005\\004/tmp\\016\\006ex.org\\010\\0041001\\010\\0012\\000'"

int main(void)
{
  str s = {0, 0, 0};
  struct cvm_reply r;
  memset(&r, 0, sizeof r);
  unsetenv("CVM_LOOKUP_SECRET");
  unsetenv("CVM_ACCOUNT_SPLIT_CHARS");

  /* request: the example of protocol-2.html */
  const unsigned char rnd[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
  struct cvm_credential c[3] = {
    { CVM_CRED_ACCOUNT, "username", 8 }, { CVM_CRED_DOMAIN, "localhost", 9 }, { CVM_CRED_PASSWORD, "password", 8 } };
  CHECK(cvm_request_build(&s, rnd, 8, c, 3, 0) == CVME_OK, "build example");
  CHECK_MEM(s.s, s.len, "\x02\x08\x01\x02\x03\x04\x05\x06\x07\x08\x01\x08username\x02\x09localhost\x03\x08password\x00",
            "example packet bytes");
  CHECK(cvm_request_build(&s, rnd, 0, c, 1, "sec") == CVME_OK, "build with lookup secret");
  CHECK_MEM(s.s, s.len, "\x02\x00\x01\x08username\x04\x03sec\x00", "lookup secret added");
  struct cvm_credential cs[2] = { { CVM_CRED_ACCOUNT, "u", 1 }, { CVM_CRED_SECRET, "mine", 4 } };
  CHECK(cvm_request_build(&s, rnd, 0, cs, 2, "sec") == CVME_OK && s.len == 12, "explicit secret kept, not duplicated");
  CHECK(cvm_request_build(&s, rnd, 0, c, 1, "") == CVME_OK && s.len == 15 && s.s[12] == 4 && s.s[13] == 0,
        "empty lookup secret sent as empty SECRET");
  /* issue 10 item 7: the environment never adds a SECRET to a request */
  setenv("CVM_LOOKUP_SECRET", "sec", 1);
  CHECK(cvm_request_build(&s, rnd, 0, c, 1, 0) == CVME_OK && s.len == 13, "$CVM_LOOKUP_SECRET not sent");
  unsetenv("CVM_LOOKUP_SECRET");
  char big[300];
  memset(big, 'x', sizeof big);
  struct cvm_credential cb[3] = { { CVM_CRED_ACCOUNT, big, 256 } };
  CHECK(cvm_request_build(&s, rnd, 0, cb, 1, 0) == CVME_BAD_CLIDATA, "credential > 255 rejected");
  cb[0].len = 255;
  cb[1] = (struct cvm_credential){ CVM_CRED_PASSWORD, big, 255 };
  CHECK(cvm_request_build(&s, rnd, 0, cb, 2, 0) == CVME_BAD_CLIDATA, "packet > 512 rejected");
  cb[1].len = 250;
  CHECK(cvm_request_build(&s, rnd, 0, cb, 2, 0) == CVME_OK && s.len == 512, "packet of exactly 512 accepted");
  CHECK(cvm_request_build(&s, rnd, 0, c + 1, 1, 0) == CVME_BAD_CLIDATA, "no ACCOUNT rejected");

  /* replies */
  static const char ok[] = "\x00\x02\xaa\xbb\x01\x05" "alice\x02\x04" "1000\x03\x04" "1001\x05\x04/tmp\x04\x01R\x00";
  const unsigned char rr[2] = { 0xaa, 0xbb };
  CHECK(cvm_reply_parse(ok, sizeof ok - 1, rr, 2, &r) == CVME_OK, "parse success");
  CHECK(strcmp(r.username.s, "alice") == 0 && r.uid == 1000 && r.gid == 1001 && strcmp(r.directory.s, "/tmp") == 0
        && CVM_HAS(&r, CVM_FACT_REALNAME) && !CVM_HAS(&r, CVM_FACT_DOMAIN), "facts");
  CHECK(cvm_reply_parse(ok, sizeof ok - 1, (const unsigned char*)"\xaa\xbc", 2, &r) == CVME_BAD_MODDATA,
        "wrong random echo");
  CHECK(cvm_reply_parse(ok, sizeof ok - 2, rr, 2, &r) == CVME_BAD_MODDATA, "missing final NUL");
  CHECK(cvm_reply_parse(ok, sizeof ok, rr, 2, &r) == CVME_BAD_MODDATA, "data after final NUL");
  for (unsigned n = 0; n < sizeof ok - 1; n++)
    if (cvm_reply_parse(ok, n, rr, 2, &r) != CVME_BAD_MODDATA) { CHECK(0, "every truncation is bad"); break; }
  static const char nodir[] = "\x00\x00\x01\x05" "alice\x02\x04" "1000\x03\x04" "1001\x00";
  CHECK(cvm_reply_parse(nodir, sizeof nodir - 1, 0, 0, &r) == CVME_BAD_MODDATA, "missing DIRECTORY");
  static const char baduid[] = "\x00\x00\x01\x01u\x02\x02" "1x\x03\x01" "1\x05\x01/\x00";
  CHECK(cvm_reply_parse(baduid, sizeof baduid - 1, 0, 0, &r) == CVME_BAD_MODDATA, "non-decimal uid");
  static const char minus1[] = "\x00\x00\x01\x01u\x02\x0a" "4294967295\x03\x01" "1\x05\x01/\x00";
  CHECK(cvm_reply_parse(minus1, sizeof minus1 - 1, 0, 0, &r) == CVME_BAD_MODDATA, "uid (uid_t)-1 refused");
  static const char nul[] = "\x00\x00\x01\x03u\x00v\x02\x01" "1\x03\x01" "1\x05\x01/\x00";
  CHECK(cvm_reply_parse(nul, sizeof nul - 1, 0, 0, &r) == CVME_BAD_MODDATA, "NUL in a string fact");
  static const char fail[] = "\x64\x00\x10\x01" "1\x00";
  CHECK(cvm_reply_parse(fail, sizeof fail - 1, 0, 0, &r) == CVME_PERMFAIL
        && CVM_HAS(&r, CVM_FACT_OUTOFSCOPE) && r.outofscope == 1, "failure with OUTOFSCOPE");
  static const char failfacts[] = "\x64\x00\x01\x05" "alice\x00";
  CHECK(cvm_reply_parse(failfacts, sizeof failfacts - 1, 0, 0, &r) == CVME_PERMFAIL && r.username.len == 0
        && r.present == 0, "facts of a failure ignored");
  static const char temp[] = "\x07\x00\x00";
  CHECK(cvm_reply_parse(temp, sizeof temp - 1, 0, 0, &r) == 7, "temporary code returned");
  CHECK(cvm_reply_parse("", 0, 0, 0, &r) == CVME_BAD_MODDATA, "empty reply");

  /* split */
  str a = {0, 0, 0}, d = {0, 0, 0};
  str_copys(&a, "a@b@c"); str_copys(&d, "dflt");
  CHECK(cvm_split_account(&a, &d) == 1 && strcmp(a.s, "a@b") == 0 && strcmp(d.s, "c") == 0, "split at last @");
  str_copys(&a, "plain"); str_copys(&d, "dflt");
  CHECK(cvm_split_account(&a, &d) == 0 && strcmp(d.s, "dflt") == 0, "no split char");
  setenv("CVM_ACCOUNT_SPLIT_CHARS", "%+", 1);
  str_copys(&a, "a%b+c@d");
  CHECK(cvm_split_account(&a, &d) == 1 && strcmp(a.s, "a%b") == 0 && strcmp(d.s, "c@d") == 0, "custom split chars");
  setenv("CVM_ACCOUNT_SPLIT_CHARS", "", 1);
  str_copys(&a, "a@b");
  CHECK(cvm_split_account(&a, &d) == 0, "empty split chars: never split");
  unsetenv("CVM_ACCOUNT_SPLIT_CHARS");
  str_copyb(&a, "a\0b", 3);
  CHECK(cvm_split_account(&a, &d) == 0, "NUL is not a split char");

  /* whole calls */
  if (!mkdtemp(dir)) return 1;
  const char* m_ok = module("ok", OKREPLY);
  CHECK(cvm_authenticate(m_ok, c, 3, 5000, &r) == CVME_OK && strcmp(r.username.s, "alice") == 0
        && strcmp(r.supp_gids.s, "1001,2") == 0 && strcmp(r.domain.s, "ex.org") == 0, "command module success");
  CHECK(cvm_setenv(&r) == 0 && strcmp(getenv("USER"), "alice") == 0 && strcmp(getenv("UID"), "1000") == 0
        && strcmp(getenv("GID"), "1001") == 0 && strcmp(getenv("HOME"), "/tmp") == 0
        && strcmp(getenv("DOMAIN"), "ex.org") == 0 && strcmp(getenv("GIDS"), "1001,2") == 0, "cvm_setenv");
  const char* m_rej = module("rej", "cat >/dev/null; printf '\\144\\000\\000'; exit 100");
  CHECK(cvm_authenticate(m_rej, c, 3, 5000, &r) == CVME_PERMFAIL, "rejection");
  const char* m_exit = module("exit", OKREPLY "; exit 100");
  CHECK(cvm_authenticate(m_exit, c, 3, 5000, &r) == CVME_PERMFAIL && r.username.len == 0,
        "exit status overrides a success reply");
  const char* m_t = module("tmp", "cat >/dev/null; exit 6");
  CHECK(cvm_authenticate(m_t, c, 3, 5000, &r) == 6, "exit status without reply");
  CHECK(cvm_authenticate("/nonexistent/x", c, 3, 5000, &r) != CVME_OK, "missing program fails");
  CHECK(cvm_authenticate("", c, 3, 5000, &r) == CVME_CONFIG, "empty module name");
  s.len = 0;
  str_cat3s(&s, m_rej, ",cvm-command:", m_ok);
  CHECK(cvm_authenticate(s.s, c, 3, 5000, &r) == CVME_OK, "chain: rejection falls through");
  const char* m_oos0 = module("oos0", "cat >/dev/null; printf '\\144\\000\\020\\0010\\000'; exit 100");
  s.len = 0;
  str_cat3s(&s, m_oos0, ",", m_ok);
  CHECK(cvm_authenticate(s.s, c, 3, 5000, &r) == CVME_PERMFAIL, "chain: OUTOFSCOPE=0 stops");
  s.len = 0;
  str_cat3s(&s, m_t, ",", m_ok);
  CHECK(cvm_authenticate(s.s, c, 3, 5000, &r) == 6, "chain: temporary error stops");

  const char* m_hang = module("hang", "exec sleep 30");
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  CHECK(cvm_authenticate(m_hang, c, 3, 300, &r) == CVME_IO, "hanging module: CVME_IO at the deadline");
  clock_gettime(CLOCK_MONOTONIC, &t1);
  CHECK(t1.tv_sec - t0.tv_sec < 10, "deadline honoured");
  CHECK(waitpid(-1, 0, WNOHANG) < 0 && errno == ECHILD, "hung child was reaped");
  const char* m_big = module("big", "cat >/dev/null; head -c 600 /dev/zero");
  CHECK(cvm_authenticate(m_big, c, 3, 5000, &r) == CVME_BAD_MODDATA, "reply > 512 bytes");

  signal(SIGCHLD, SIG_IGN);
  CHECK(cvm_authenticate(m_ok, c, 3, 5000, &r) == CVME_OK, "works with SIGCHLD ignored by the parent");
  struct sigaction sa;
  sigaction(SIGCHLD, 0, &sa);
  CHECK(sa.sa_handler == SIG_IGN, "SIGCHLD disposition restored");
  signal(SIGCHLD, SIG_DFL);
  sigaction(SIGPIPE, 0, &sa);
  CHECK(sa.sa_handler == SIG_DFL, "SIGPIPE disposition restored");

  CHECK(cvm_authenticate("cvm-local:/nonexistent/sock", c, 3, 1000, &r) == CVME_IO, "missing socket");
  CHECK(cvm_authenticate("cvm-udp:127.0.0.1", c, 3, 1000, &r) == CVME_CONFIG, "udp without port");
  CHECK(cvm_authenticate_password(m_ok, "alice@dom", "d", "pw", 1, 5000, &r) == CVME_OK, "password call");

  /* switch user (only meaningful as root) */
  if (getuid() == 0) {
    pid_t pid = fork();
    if (pid == 0) {
      struct cvm_reply u;
      memset(&u, 0, sizeof u);
      u.uid = 65534; u.gid = 65534;
      str_copys(&u.directory, "/");
      _exit(cvm_switch_user(&u) == 0 && getuid() == 65534 && getgid() == 65534 ? 0 : 1);
    }
    int st = 1;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "cvm_switch_user: setgid, setuid, chdir");
  }
  else
    CHECK(1, "cvm_switch_user skipped (not root)");

  cvm_reply_free(&r);
  str_free(&s); str_free(&a); str_free(&d);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0) return 1;
  return done();
}

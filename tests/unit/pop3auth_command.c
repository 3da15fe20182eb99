/* pop3auth_command.c -- unit tests of the command-line helpers of the
 * POP3 programs and the authentication front ends: splitting
 * (src/pop3/pop3cmd.c), argument rules, line ends (src/lib/linein.c),
 * the CVM credential check (src/auth/authfront.c) and the masking of
 * POP3 command log lines in both formats (src/pop3/pop3reply.c). */
#include "tap.h"
#include "auth/authfront.h"
#include "lib/linein.h"
#include "lib/log.h"
#include "pop3/pop3cmd.h"
#include "pop3/pop3reply.h"
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static struct pop3_cmdline c;

static void split(const char* s) { pop3_split(s, strlen(s), &c); }

/* What pop3_log_command writes to stderr for line (hidden as given). */
static const char* logged(const char* line, int hidden)
{
  static char buf[4096];
  fflush(stderr);
  FILE* f = tmpfile();
  int saved = dup(2);
  if (!f || saved < 0) return "";
  dup2(fileno(f), 2);
  struct pop3_cmdline lc;
  pop3_split(line, strlen(line), &lc);
  pop3_log_command(&lc, line, strlen(line), hidden);
  dup2(saved, 2);
  close(saved);
  rewind(f);
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char* body = strstr(buf, "]: ");           /* classic: after PROGRAM[PID]: */
  if (log_get_format() == LOG_KV) body = strstr(buf, " event=");
  return body ? body + (log_get_format() == LOG_KV ? 1 : 3) : buf;
}

static void test_masking(void)
{
  log_program("pop3test");
  log_set_format(LOG_CLASSIC);
  CHECK(strcmp(logged("USER alice", 0), "USER alice\n") == 0, "classic: USER shown");
  CHECK(strcmp(logged("pass hunter2", 0), "PASS XXXXXXXX\n") == 0, "classic: PASS masked");
  CHECK(strcmp(logged("AUTH PLAIN c2VjcmV0", 0), "AUTH PLAIN XXXXXXXX\n") == 0, "classic: initial response masked");
  CHECK(strcmp(logged("AUTH c2VjcmV0", 0), "AUTH XXXXXXXX\n") == 0, "classic: base64 for a mechanism masked");
  CHECK(strcmp(logged("AUTH LOGIN", 0), "AUTH LOGIN\n") == 0, "classic: mechanism alone shown");
  CHECK(strcmp(logged("c2VjcmV0", 1), "[line hidden after a failed AUTH]\n") == 0, "classic: hidden line");
  log_set_format(LOG_KV);
  CHECK(strcmp(logged("user alice", 0), "event=command command=USER arg=alice\n") == 0, "kv: USER");
  CHECK(strcmp(logged("PASS hunter2", 0), "event=command command=PASS\n") == 0, "kv: PASS without argument");
  CHECK(strcmp(logged("AUTH PLAIN c2VjcmV0", 0), "event=command command=AUTH arg=PLAIN\n") == 0,
        "kv: AUTH with its mechanism only");
  CHECK(strcmp(logged("AUTH c2VjcmV0 eA==", 0), "event=command command=AUTH arg=[hidden]\n") == 0,
        "kv: base64 for a mechanism hidden");
  CHECK(strcmp(logged("c2VjcmV0", 1), "event=command command=[hidden]\n") == 0, "kv: hidden line");
  CHECK(strcmp(logged("LIST", 0), "event=command command=LIST\n") == 0, "kv: no argument");
  log_set_format(LOG_CLASSIC);
}

int main(void)
{
  split("USER alice");
  CHECK(c.verblen == 4 && pop3_verb_is(&c, "USER") && c.arglen == 5 && memcmp(c.arg, "alice", 5) == 0, "USER alice");
  split("pass   two words ");
  CHECK(pop3_verb_is(&c, "PASS") && c.arglen == 10 && memcmp(c.arg, "two words ", 10) == 0,
        "argument is the rest after the spaces");
  split("user\tx");
  CHECK(!pop3_verb_is(&c, "USER") && c.arglen == 0, "TAB is not a separator");
  split("");
  CHECK(c.verblen == 0 && c.arglen == 0 && !pop3_verb_is(&c, "QUIT"), "empty line");
  split("QUITX");
  CHECK(!pop3_verb_is(&c, "QUIT"), "no prefix match");
  split("QUI");
  CHECK(!pop3_verb_is(&c, "QUIT"), "no short match");
  split("QUIT");
  CHECK(pop3_arg_fits(POP3_TAKES_NONE, &c) && pop3_arg_fits(POP3_TAKES_OPTIONAL, &c)
        && !pop3_arg_fits(POP3_TAKES_REQUIRED, &c), "argument rules: none given");
  split("USER x");
  CHECK(!pop3_arg_fits(POP3_TAKES_NONE, &c) && pop3_arg_fits(POP3_TAKES_OPTIONAL, &c)
        && pop3_arg_fits(POP3_TAKES_REQUIRED, &c), "argument rules: one given");
  CHECK(line_chomp("x\r\n", 3) == 1 && line_chomp("x\n", 2) == 1 && line_chomp("x", 1) == 1
        && line_chomp("\r\n", 2) == 0 && line_chomp("x\r", 2) == 1, "chomp");
  CHECK(authfront_credential_ok("abc", 3), "plain credential");
  CHECK(!authfront_credential_ok("a\0c", 3), "NUL refused");
  CHECK(authfront_credential_ok("", 0), "empty credential");
  {
    static char big[300];
    memset(big, 'x', sizeof big);
    CHECK(authfront_credential_ok(big, 255) && !authfront_credential_ok(big, 256), "length bound");
  }
  {
    const char line[] = "USER a\0b";
    pop3_split(line, sizeof line - 1, &c);
    CHECK(pop3_verb_is(&c, "USER") && c.arglen == 3, "NUL inside the argument is data");
  }
  test_masking();
  return done();
}

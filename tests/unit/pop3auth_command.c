/* pop3auth_command.c -- unit tests of pop3front-auth's command-line
 * helpers (src/programs/pop3front-auth/command.c). */
#include "tap.h"
#include "programs/pop3front-auth/command.c"

static struct pop3_cmdline c;

static void split(const char* s) { pop3_split(s, strlen(s), &c); }

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
  split("Auth PLAIN abc=");
  CHECK(pop3_verb_is(&c, "AUTH") && pop3auth_mech_len(c.arg, c.arglen) == 5, "mechanism length");
  CHECK(pop3auth_mech_len("LOGIN", 5) == 5 && pop3auth_mech_len("", 0) == 0, "mechanism alone");
  CHECK(pop3auth_chomp("x\r\n", 3) == 1 && pop3auth_chomp("x\n", 2) == 1 && pop3auth_chomp("x", 1) == 1
        && pop3auth_chomp("\r\n", 2) == 0 && pop3auth_chomp("x\r", 2) == 1, "chomp");
  CHECK(pop3auth_credential_ok("abc", 3, 255), "plain credential");
  CHECK(!pop3auth_credential_ok("a\0c", 3, 255), "NUL refused");
  CHECK(pop3auth_credential_ok("", 0, 255), "empty credential");
  {
    static char big[300];
    memset(big, 'x', sizeof big);
    CHECK(pop3auth_credential_ok(big, 255, 255) && !pop3auth_credential_ok(big, 256, 255), "length bound");
  }
  {
    const char line[] = "USER a\0b";
    pop3_split(line, sizeof line - 1, &c);
    CHECK(pop3_verb_is(&c, "USER") && c.arglen == 3, "NUL inside the argument is data");
  }
  return done();
}

/* tcprules_lookup.c -- unit tests of the tcprules cdb lookup
 * (src/daemon/tcprules.c) against cdb files built by ucspi-tcp's own
 * `tcprules`: lookup order (IP, =host, IP prefixes, =.suffix, =, empty),
 * allow/deny, variables, a missing file, and hand-made data items. */
#include "tap.h"
#include "daemon/tcprules.c"
#include <stdlib.h>

static char vars[512];
static int set_var(void* ctx, const char* name, size_t nlen, const char* value)
{
  (void)ctx;
  size_t l = strlen(vars);
  snprintf(vars + l, sizeof vars - l, "%.*s=%s;", (int)nlen, name, value ? value : "(unset)");
  return 0;
}

/* "allow:VARS" / "deny:VARS" / "none" for ip/host. */
static const char* look(struct tcprules* t, const char* ip, const char* host)
{
  static char out[600];
  const char* data; size_t len;
  vars[0] = 0;
  int r = tcprules_find(t, ip, host, &data, &len);
  if (r < 0) return "error";
  if (r == 0) return "none";
  int v = tcprules_apply(data, len, set_var, 0);
  snprintf(out, sizeof out, "%s:%s", v == TCPRULES_DENY ? "deny" : "allow", vars);
  return out;
}

#define LOOK(ip, host, exp) CHECK(strcmp(look(&t, ip, host), exp) == 0, ip " " exp)

int main(void)
{
  char dir[] = "/tmp/tcprules_unit.XXXXXX";
  if (!mkdtemp(dir)) return 1;
  char cmd[1024];
  snprintf(cmd, sizeof cmd,
           "cd %s && printf '%%s\\n' "
           "'127.0.0.1:allow,RELAYCLIENT=\"\",FOO=\"a b\"' "
           "'127.0.0.2:deny' "
           "'127.0.:allow,X=\"1\"' "
           "'=mx.example.org:allow,H=\"exact\"' "
           "'=.example.org:allow,H=\"suffix\"' "
           "'10.0.0.1-3:allow,R=\"range\"' "
           "'10.:deny' "
           "':allow,DEFAULT=\"yes\"' > rules && tcprules rules.cdb rules.tmp < rules", dir);
  int built = system(cmd) == 0;
  CHECK(built, "tcprules builds the test cdb");
  if (!built) return done();
  struct tcprules t;
  snprintf(cmd, sizeof cmd, "%s/rules.cdb", dir);
  CHECK(tcprules_open(&t, cmd) == 0, "open");

  LOOK("127.0.0.1", NULL, "allow:RELAYCLIENT=;FOO=a b;");
  LOOK("127.0.0.2", NULL, "deny:");
  LOOK("127.0.0.3", NULL, "allow:X=1;");
  LOOK("127.0.0.2", "mx.example.org", "deny:");
  LOOK("192.0.2.1", "mx.example.org", "allow:H=exact;");
  LOOK("192.0.2.1", "a.b.example.org", "allow:H=suffix;");
  LOOK("127.0.0.9", "a.b.example.org", "allow:X=1;");   /* IP prefixes before =.suffix */
  LOOK("10.0.0.2", NULL, "allow:R=range;");
  LOOK("10.0.0.4", NULL, "deny:");
  LOOK("192.0.2.1", NULL, "allow:DEFAULT=yes;");
  LOOK("192.0.2.1", "other.example", "allow:DEFAULT=yes;");
  tcprules_close(&t);
  CHECK(t.fd == -1, "close");

  snprintf(cmd, sizeof cmd, "%s/missing.cdb", dir);
  CHECK(tcprules_open(&t, cmd) < 0 && errno == ENOENT, "missing file: -1 ENOENT");

  /* hand-made items: unset, last item without NUL, unknown items ignored */
  vars[0] = 0;
  static const char items[] = "+A=1\0+B\0Xjunk\0+C=3";
  CHECK(tcprules_apply(items, sizeof items - 1, set_var, 0) == TCPRULES_ALLOW
        && strcmp(vars, "A=1;B=(unset);") == 0, "items: set, unset, junk ignored, unterminated value dropped");
  vars[0] = 0;
  CHECK(tcprules_apply("+A=1\0D\0", 7, set_var, 0) == TCPRULES_DENY, "deny after a variable");
  CHECK(tcprules_apply("", 0, set_var, 0) == TCPRULES_ALLOW, "empty data allows");
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0) return 1;
  return done();
}

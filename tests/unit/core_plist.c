/* Unit tests: $PLUGINS list syntax (driver.md "Plugin list elements"). */
#include "tap.h"
#include "../../src/core/session.c"
#include "../../src/core/responses.c"
#include "../../src/core/builtins.c"
#include "../../src/core/modules.c"

static const char* order(struct mf_config* s)
{
  static char buf[512];
  buf[0] = 0;
  for (unsigned i = 0; i < s->plugins.n; i++) {
    if (buf[0]) strcat(buf, " ");
    strcat(buf, s->plugins.v[i].name);
  }
  return buf;
}

static const char* dir = "/nonexistent-dir";

static int is(struct mf_config* s, const char* list, const char* want)
{
  const response* r = plugins_apply(s, dir, list);
  if (r) return 0;
  if (strcmp(order(s), want) != 0) { printf("# got '%s' want '%s'\n", order(s), want); return 0; }
  return 1;
}

int main(void)
{
  struct mf_config s;
  memset(&s, 0, sizeof s);
  CHECK(is(&s, "accept", "accept"), "plain name appends");
  CHECK(is(&s, "reject:relayclient", "accept reject relayclient"), "colon list appends in order");
  CHECK(is(&s, "+require-auth", "require-auth accept reject relayclient"), "+name prepends");
  CHECK(is(&s, "accept", "require-auth reject relayclient accept"), "existing name is moved to the end");
  CHECK(is(&s, "+relayclient", "relayclient require-auth reject accept"), "+existing moves to the front");
  CHECK(is(&s, "-reject", "relayclient require-auth accept"), "-name removes");
  CHECK(is(&s, "-reject", "relayclient require-auth accept"), "-absent is no error");
  CHECK(is(&s, "::accept-sender::", "relayclient require-auth accept accept-sender"), "empty elements ignored");
  CHECK(is(&s, "", "relayclient require-auth accept accept-sender"), "empty list changes nothing");
  CHECK(is(&s, "-*", ""), "-* empties the list");
  CHECK(is(&s, "force-file", "force-file") && (s.flags & FLAG_NEED_FILE), "flags are or-ed in");
  CHECK(is(&s, "-force-file", "") && (s.flags & FLAG_NEED_FILE), "removing keeps the flags");
  const response* r = plugins_apply(&s, dir, "accept:no-such-plugin:reject");
  CHECK(r && r->number == 451 && strncmp(r->message, "4.3.0 Error loading plugin no-such-plugin: /nonexistent-dir/plugin-no-such-plugin.so: ", 84) == 0,
        "missing module: 451 with the loader's error");
  CHECK(strcmp(order(&s), "accept") == 0, "elements before the failure stay loaded");
  CHECK(builtin_plugin("Accept") == 0, "names are case-sensitive");
  plugins_free(&s.plugins);
  str_free(&s.err.text);
  return done();
}

/* builtins.c -- the plugins that need no .so file (plugins.md "Built-ins"):
 * accept, accept-sender, accept-recipient, force-file, reject, relayclient,
 * require-auth.  Resolved by name before any module lookup. */
#include "core/modules.h"
#include <string.h>

static RESPONSE(accept, 250, 0);
static RESPONSE(must_auth, 530, "5.7.1 You must authenticate first.");

static const response* accept_any(str* a, str* p) { (void)a; (void)p; return &resp_accept; }

static int authenticated(void) { return session_getnum("authenticated", 0) != 0; }

/* reject: $SMTPREJECT, else $REJECT; "-" prefix makes it permanent.  The
 * reply's text is kept in the session (session_error). */
static const response* reject_sender(str* a, str* p)
{
  (void)a; (void)p;
  const char* v = session_getenv("SMTPREJECT");
  if (!v) v = session_getenv("REJECT");
  if (!v) return 0;
  unsigned number = 451;
  if (*v == '-') { number = 553; v++; }
  return session_error(number, *v ? v : "You are not allowed to use this mail server.", 0, 0);
}

static const response* relayclient_recipient(str* addr, str* p)
{
  (void)p;
  const char* rc = session_getenv("RELAYCLIENT");
  if (rc) return str_cats(addr, rc) ? &resp_accept : &resp_oom;
  return authenticated() ? &resp_accept : 0;
}

static const response* require_auth_sender(str* a, str* p)
{
  (void)a; (void)p;
  return authenticated() || session_getenv("RELAYCLIENT") ? 0 : &resp_must_auth;
}

static struct plugin builtins[] = {
  { .version = PLUGIN_VERSION_4, .name = "accept", .sender = accept_any, .recipient = accept_any },
  { .version = PLUGIN_VERSION_4, .name = "accept-recipient", .recipient = accept_any },
  { .version = PLUGIN_VERSION_4, .name = "accept-sender", .sender = accept_any },
  { .version = PLUGIN_VERSION_4, .name = "force-file", .flags = FLAG_NEED_FILE },
  { .version = PLUGIN_VERSION_4, .name = "reject", .sender = reject_sender },
  { .version = PLUGIN_VERSION_4, .name = "relayclient", .recipient = relayclient_recipient },
  { .version = PLUGIN_VERSION_4, .name = "require-auth", .sender = require_auth_sender },
};

struct plugin* builtin_plugin(const char* name)
{
  for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++)
    if (strcmp(builtins[i].name, name) == 0) return &builtins[i];
  return 0;
}

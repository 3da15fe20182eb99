/* plugin-cvm-validate -- rejects recipients that a CVM lookup module does
 * not know (plugins.md "cvm-validate").
 *
 * init: $CVM_LOOKUP (session lookup) names the CVM chain; unset → the
 * plugin does nothing.  The secret is $CVM_LOOKUP_SECRET, else
 * $LOOKUP_SECRET, else empty.  It is given ONLY to this plugin's lookups
 * (cvm_lookup: SECRET credential, $CVM_LOOKUP_SECRET of a command module);
 * the process environment is left alone, so no authentication module ever
 * runs in lookup mode (issue 10 item 7: the original exported the variable
 * and any password then authenticated through a command module).
 * recipient: an address without '@' passes; otherwise ACCOUNT = part
 * before the last '@', DOMAIN = part after it (case kept), SECRET (sent
 * even when empty, as the original does).  Result 0 → pass; 100 → pass if OUTOFSCOPE = 1,
 * else 553; anything else (module failure, timeout: $CVM_TIMEOUT) → 451.
 * An address part longer than a CVM credential (255 bytes) cannot exist:
 * 553.  State: version 4; the configuration read at init is a copy in
 * the session's context (session_open/session_close; the secret's copy
 * is wiped when freed), nothing mutable at file scope. */
#include <mailfront/mailfront.h>
#include "auth/cvm.h"

#include <stdlib.h>
#include <string.h>

extern struct plugin plugin;

struct lookup
{
  char* module;              /* NULL = inactive */
  char* secret;              /* may be empty */
};

static RESPONSE(no_such, 553, "5.1.1 Sorry, that recipient does not exist.");
static RESPONSE(temp, 451, "4.1.0 Sorry, I could not verify that recipient (internal temporary error).");

static const response* validate_open(void** ctx)
{
  *ctx = calloc(1, sizeof(struct lookup));
  return *ctx ? 0 : &resp_oom;
}

static void validate_close(void* ctx)
{
  struct lookup* l = ctx;
  if (!l) return;
  if (l->secret) memset(l->secret, 0, strlen(l->secret));
  free(l->secret);
  free(l->module);
  free(l);
}

static const response* validate_init(void)
{
  struct lookup* l = plugin_context(&plugin);
  if (!l) return &resp_internal;
  const char* module = session_getenv("CVM_LOOKUP");
  if (module == 0) return 0;
  const char* secret = session_getenv("CVM_LOOKUP_SECRET");
  if (secret == 0) secret = session_getenv("LOOKUP_SECRET");
  if (secret == 0) secret = "";
  if (!(l->module = strdup(module)) || !(l->secret = strdup(secret))) return &resp_oom;
  return 0;
}

static const response* validate_recipient(str* address, str* params)
{
  (void)params;
  const struct lookup* l = plugin_context(&plugin);
  if (!l || l->module == 0) return 0;
  int i = str_findlast(address, '@');
  if (i < 0) return 0;
  unsigned at = (unsigned)i;
  unsigned dlen = address->len - at - 1;
  if (at > 255 || dlen > 255) return &resp_no_such;
  struct cvm_credential c[2] = {
    { CVM_CRED_ACCOUNT, address->s, at },
    { CVM_CRED_DOMAIN, address->s + at + 1, dlen },
  };

  struct cvm_reply reply;
  memset(&reply, 0, sizeof reply);
  int rc = cvm_lookup(l->module, c, 2, l->secret, 0, &reply);
  int oos = CVM_HAS(&reply, CVM_FACT_OUTOFSCOPE) && reply.outofscope == 1;
  cvm_reply_free(&reply);
  if (rc == CVME_OK) return 0;
  if (rc == CVME_PERMFAIL) return oos ? 0 : &resp_no_such;
  return &resp_temp;
}

struct plugin plugin = {
  .version = PLUGIN_VERSION_4,
  .init = validate_init,
  .recipient = validate_recipient,
  .session_open = validate_open,
  .session_close = validate_close,
};

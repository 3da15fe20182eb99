/* plugin-template.c -- a complete third-party plugin, to copy from.
 *
 * Build it out of tree against the installed header:
 *   cc -std=c11 -shared -fPIC -I$PREFIX/include -o plugin-template.so plugin-template.c
 * install it as $MODULE_PATH/plugin-template.so and load it by name:
 *   PLUGINS=template mailfront smtp echo accept
 *
 * What it does: refuses recipients whose address contains the text of
 * $TEMPLATE_BLOCK (553), counts recipients per message and adds an
 * `X-Template-Recipients: N` header line in front of the message.
 *
 * It uses ABI version 4 (PLUGIN_VERSION_4): the per-message count lives in
 * a per-session context (session_open/session_close, plugin_context), not
 * in a static, so one process can run many sessions (a listener, the test
 * suite); and $TEMPLATE_BLOCK is read once by the load hook, the way a
 * plugin parses its rule files once in a listener's parent.  A plugin that
 * keeps .version = PLUGIN_VERSION (3) and none of these hooks also loads
 * into upstream mailfront. */
#include <mailfront/mailfront.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static RESPONSE(blocked, 553, "5.7.1 That recipient is blocked by the template plugin.");

extern struct plugin plugin;

/* What load() read; read-only while sessions run. */
static char* block;

struct tpl_session { unsigned long rcpts; };   /* per session */

static const response* tpl_load(void)
{
  const char* b = getenv("TEMPLATE_BLOCK");
  size_t n = b ? strlen(b) : 0;
  char* copy = n ? malloc(n + 1) : 0;
  if (n && !copy) return &resp_oom;      /* the old block stays */
  if (copy) memcpy(copy, b, n + 1);
  free(block);
  block = copy;
  return 0;
}

static const response* tpl_open(void** ctx)
{
  *ctx = calloc(1, sizeof(struct tpl_session));
  return *ctx ? 0 : &resp_oom;
}

static void tpl_close(void* ctx) { free(ctx); }

static const response* tpl_reset(void)
{
  struct tpl_session* t = plugin_context(&plugin);
  if (t) t->rcpts = 0;
  return 0;                    /* NULL: no opinion */
}

static const response* tpl_recipient(str* address, str* params)
{
  struct tpl_session* t = plugin_context(&plugin);
  (void)params;
  if (block && address->s && strstr(address->s, block)) return &resp_blocked;
  if (t) t->rcpts++;
  return 0;                    /* let other plugins decide acceptance */
}

static const response* tpl_data_start(int fd)
{
  struct tpl_session* t = plugin_context(&plugin);
  char line[64];
  int n = snprintf(line, sizeof line, "X-Template-Recipients: %lu\n", t ? t->rcpts : 0ul);
  (void)fd;
  return backend_data_block(line, (unsigned long)n);
}

struct plugin plugin = {
  .version = PLUGIN_VERSION_4,
  .reset = tpl_reset,
  .recipient = tpl_recipient,
  .data_start = tpl_data_start,
  .load = tpl_load,
  .reload = tpl_load,
  .session_open = tpl_open,
  .session_close = tpl_close,
};

/* plugin-template.c -- a complete third-party plugin, to copy from.
 *
 * Build it out of tree against the installed header:
 *   cc -std=c11 -shared -fPIC -I$PREFIX/include -o plugin-template.so plugin-template.c
 * install it as $MODULE_PATH/plugin-template.so and load it by name:
 *   PLUGINS=template mailfront smtp echo accept
 *
 * What it does: refuses recipients whose address contains the text of
 * $TEMPLATE_BLOCK (553), counts recipients per message and adds an
 * `X-Template-Recipients: N` header line in front of the message. */
#include <mailfront/mailfront.h>
#include <stdio.h>
#include <string.h>

static RESPONSE(blocked, 553, "5.7.1 That recipient is blocked by the template plugin.");

static unsigned long rcpts;   /* per message; the ABI has no context pointer */

static const response* tpl_reset(void)
{
  rcpts = 0;
  return 0;                    /* NULL: no opinion */
}

static const response* tpl_recipient(str* address, str* params)
{
  const char* block = session_getenv("TEMPLATE_BLOCK");
  (void)params;
  if (block && *block && address->s && strstr(address->s, block)) return &resp_blocked;
  rcpts++;
  return 0;                    /* let other plugins decide acceptance */
}

static const response* tpl_data_start(int fd)
{
  char line[64];
  int n = snprintf(line, sizeof line, "X-Template-Recipients: %lu\n", rcpts);
  (void)fd;
  return backend_data_block(line, (unsigned long)n);
}

struct plugin plugin = {
  .version = PLUGIN_VERSION,
  .reset = tpl_reset,
  .recipient = tpl_recipient,
  .data_start = tpl_data_start,
};

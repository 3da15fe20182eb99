/* relay/hooks.h -- the back-end hooks of relay/hooks.c, for the two
 * module files smtp.c and lmtp.c (which differ only in their init). */
#ifndef MF_RELAY_HOOKS_H
#define MF_RELAY_HOOKS_H
#include <mailfront/mailfront.h>
const response* relay_init_smtp(void);
const response* relay_init_lmtp(void);
const response* relay_reset(void);
const response* relay_sender(str* addr, str* params);
const response* relay_recipient(str* addr, str* params);
const response* relay_data_start(int fd);
const response* relay_data_block(const char* bytes, unsigned long len);
const response* relay_message_end(int fd);
const response* relay_session_open(void** ctx);
void relay_session_close(void* ctx);

/* The back end's entry structure, the same for SMTP and LMTP but for the
 * init hook (a designated initializer, no code). */
#define RELAY_BACKEND(init_hook) {      \
  .version = PLUGIN_VERSION_4,          \
  .init = (init_hook),                  \
  .reset = relay_reset,                 \
  .sender = relay_sender,               \
  .recipient = relay_recipient,         \
  .data_start = relay_data_start,       \
  .data_block = relay_data_block,       \
  .message_end = relay_message_end,     \
  .session_open = relay_session_open,   \
  .session_close = relay_session_close, \
}
/* The --check hook of both back ends (relay/check.c). */
const response* relay_check(void);
#endif

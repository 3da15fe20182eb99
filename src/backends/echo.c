/* backend-echo -- delivers nothing; answers with what it was given
 * (backends.md "echo").  For testing rules and plugins.
 * Replies: `Sender='ADDR'. [PARAM]...`, `Recipient='ADDR'. [PARAM]...`,
 * `Received N bytes.`.  Logs the first two lines of the message as one
 * diagnostic line; that log never affects a reply.  State: one struct per
 * session, the back end's version-4 context. */
#include <mailfront/mailfront.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct echo_state
{
  unsigned long long bytes;
  int logged;
  str text;          /* reply text of the last envelope step */
  response reply;
};
extern struct plugin backend;

static const response* echo_open(void** ctx)
{
  *ctx = calloc(1, sizeof(struct echo_state));
  return *ctx ? 0 : &resp_oom;
}

static void echo_close(void* ctx)
{
  struct echo_state* st = ctx;
  if (st) str_free(&st->text);
  free(st);
}

static const response* envelope(const char* what, const str* addr, const str* params)
{
  struct echo_state* st = plugin_context(&backend);
  if (!st) return &resp_internal;
  st->text.len = 0;
  if (!str_cats(&st->text, what) || !str_catc(&st->text, '\'')
      || !str_catb(&st->text, addr->s ? addr->s : "", addr->len) || !str_cats(&st->text, "'."))
    return &resp_oom;
  for (unsigned i = 0; i < params->len;) {
    const char* p = params->s + i;
    unsigned n = (unsigned)strnlen(p, params->len - i);
    if (!str_cats(&st->text, " [") || !str_catb(&st->text, p, n) || !str_catc(&st->text, ']')) return &resp_oom;
    i += n + 1;
  }
  st->reply.number = 250;
  st->reply.message = st->text.s;
  return &st->reply;
}

static const response* echo_sender(str* a, str* p) { return envelope("Sender=", a, p); }
static const response* echo_recipient(str* a, str* p) { return envelope("Recipient=", a, p); }

static const response* echo_reset(void)
{
  struct echo_state* st = plugin_context(&backend);
  if (st) {
    st->bytes = 0;
    st->logged = 0;
  }
  return 0;
}

/* Log the first two lines of b (as far as they are in this block). */
static void log_head(const char* b, unsigned long len)
{
  const char* nl1 = memchr(b, '\n', len);
  if (!nl1) { str l = {0,0,0}; str_catb(&l, b, (unsigned)(len > 998 ? 998 : len)); msg1(l.s ? l.s : ""); str_free(&l); return; }
  const char* rest = nl1 + 1;
  const char* nl2 = memchr(rest, '\n', len - (unsigned long)(rest - b));
  unsigned long l2 = nl2 ? (unsigned long)(nl2 - rest) : len - (unsigned long)(rest - b);
  str line = {0, 0, 0};
  unsigned long l1 = (unsigned long)(nl1 - b);
  str_catb(&line, b, (unsigned)(l1 > 998 ? 998 : l1));
  str_catb(&line, rest, (unsigned)(l2 > 998 ? 998 : l2));
  msg1(line.s ? line.s : "");
  str_free(&line);
}

static const response* echo_data_block(const char* bytes, unsigned long len)
{
  struct echo_state* st = plugin_context(&backend);
  if (!st) return 0;
  if (!st->logged && len > 0) { log_head(bytes, len); st->logged = 1; }
  st->bytes += len;
  return 0;
}

static const response* echo_message_end(int fd)
{
  struct echo_state* st = plugin_context(&backend);
  if (!st) return &resp_internal;
  if (fd >= 0) {
    struct stat s;
    char head[2048];
    if (fstat(fd, &s) == 0) st->bytes = (unsigned long long)s.st_size;
    ssize_t n = pread(fd, head, sizeof head, 0);
    if (n > 0) log_head(head, (unsigned long)n);
  }
  st->text.len = 0;
  if (!str_cats(&st->text, "Received ") || !str_catu(&st->text, (unsigned long)st->bytes) || !str_cats(&st->text, " bytes."))
    return &resp_oom;
  st->reply.number = 250;
  st->reply.message = st->text.s;
  return &st->reply;
}

struct plugin backend = {
  .version = PLUGIN_VERSION_4,
  .reset = echo_reset,
  .sender = echo_sender,
  .recipient = echo_recipient,
  .data_block = echo_data_block,
  .message_end = echo_message_end,
  .session_open = echo_open,
  .session_close = echo_close,
};

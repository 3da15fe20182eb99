/* handlers.c -- the handler steps that protocols call (handle_*), the plugin
 * chain rule, replies (respond*), injected data and scratch files.
 *
 * Contract: plugin-api.md "Response semantics" and "Handler steps".  Every
 * step returns NULL or a response that outlives the call; errors reset the
 * transaction where the spec says so.  The temporary message file exists
 * only when some module has FLAG_NEED_FILE. */
#include "core/session.h"
#include "lib/log.h"
#include "lib/fdio.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

RESPONSE(no_sender, 550, "5.1.0 Mail system is not configured to accept that sender");
RESPONSE(no_rcpt, 550, "5.1.0 Mail system is not configured to accept that recipient");

enum hook { H_INIT, H_HELO, H_RESET, H_SENDER, H_RECIPIENT, H_DATA_START, H_DATA_BLOCK, H_MESSAGE_END };
static const char* const hook_names[] = {
  "init", "helo", "reset", "sender", "recipient", "data_start", "data_block", "message_end"
};

struct args { str* a; str* b; int fd; const char* bytes; unsigned long len; };

/* Call hook h of p if it has one; *has says whether it did. */
static const response* call(const struct plugin* p, enum hook h, struct args* x, int* has)
{
  *has = 1;
  switch (h) {
  case H_INIT: if (p->init) return p->init(); break;
  case H_HELO: if (p->helo) return p->helo(x->a, x->b); break;
  case H_RESET: if (p->reset) return p->reset(); break;
  case H_SENDER: if (p->sender) return p->sender(x->a, x->b); break;
  case H_RECIPIENT: if (p->recipient) return p->recipient(x->a, x->b); break;
  case H_DATA_START: if (p->data_start) return p->data_start(x->fd); break;
  case H_DATA_BLOCK: if (p->data_block) return p->data_block(x->bytes, x->len); break;
  case H_MESSAGE_END: if (p->message_end) return p->message_end(x->fd); break;
  }
  *has = 0;
  return 0;
}

static int is_error(const response* r) { return r && (r->number & RESPONSE_MASK) >= 400; }

static int has_hook(const struct plugin* p, enum hook h)
{
  switch (h) {
  case H_INIT: return p->init != 0;
  case H_HELO: return p->helo != 0;
  case H_RESET: return p->reset != 0;
  case H_SENDER: return p->sender != 0;
  case H_RECIPIENT: return p->recipient != 0;
  case H_DATA_START: return p->data_start != 0;
  case H_DATA_BLOCK: return p->data_block != 0;
  case H_MESSAGE_END: return p->message_end != 0;
  }
  return 0;
}

/* The chain rule: first error or FINAL acceptance stops; else the first
 * acceptance is the result.  *any says whether any plugin answered.
 * $MSG_DEBUG bit 1 traces every dispatch but data_block. */
static const response* chain(struct session* s, enum hook h, struct args* x, int* any)
{
  const response* kept = 0;
  int trace = (s->cfg->debug & 1) && h != H_DATA_BLOCK;
  if (any) *any = 0;
  if (trace) log_parts(LOG_DEBUG, "Calling plugin hook: ", hook_names[h], 0, 0);
  const struct mf_plist* l = &s->cfg->plugins;
  for (unsigned i = 0; i < l->n; i++) {
    const struct plugin* p = l->v[i].p;
    int has;
    if (trace && has_hook(p, h)) log_parts(LOG_DEBUG, "Calling plugin: ", l->v[i].name, 0, 0);
    const response* r = call(p, h, x, &has);
    if (!r) continue;
    if (trace) log_fmt(LOG_DEBUG, "Plugin %s returned %u:%s", l->v[i].name, r->number, r->message ? r->message : "(null)");
    if (any) *any = 1;
    if (is_error(r)) return r;
    if (r->number & RESPONSE_FINAL) return r;
    if (!kept) kept = r;
  }
  return kept;
}

static void close_tmp(struct session* s)
{
  if (s->fd >= 0) close(s->fd);
  s->fd = -1;
}

const response* handle_reset(void)
{
  struct session* s = session_current();
  struct args x = {0, 0, -1, 0, 0};
  int has;
  close_tmp(s);
  if (s->backend) (void)call(s->backend, H_RESET, &x, &has);
  return chain(s, H_RESET, &x, 0);
}

const response* handle_init(void)
{
  struct session* s = session_current();
  struct args x = {0, 0, -1, 0, 0};
  int has;
  const response* r = chain(s, H_INIT, &x, 0);
  if (is_error(r)) return r;
  r = s->backend ? call(s->backend, H_INIT, &x, &has) : 0;
  return r;
}

const response* handle_helo(str* host, str* caps)
{
  struct session* s = session_current();
  struct args x = {host, caps, -1, 0, 0};
  int has;
  const response* r = chain(s, H_HELO, &x, 0);
  if (is_error(r)) return r;
  session_setstr("helo_domain", host->s ? host->s : "");
  return s->backend ? call(s->backend, H_HELO, &x, &has) : 0;
}

/* sender and recipient share one shape. */
static const response* envelope_step(enum hook h, str* addr, str* params, const response* dflt)
{
  struct session* s = session_current();
  str empty = {0, 0, 0};
  struct args x = {addr, params ? params : &empty, -1, 0, 0};
  int any, has;
  const response* r = chain(s, h, &x, &any);
  if (is_error(r)) return r;
  if (!any || !r) return dflt;
  const response* b = s->backend ? call(s->backend, h, &x, &has) : 0;
  if (is_error(b)) return b;
  return r->message == 0 ? b : r;
}

const response* handle_sender(str* a, str* p) { return envelope_step(H_SENDER, a, p, &resp_no_sender); }
const response* handle_recipient(str* a, str* p) { return envelope_step(H_RECIPIENT, a, p, &resp_no_rcpt); }

const response* handle_data_start(void)
{
  struct session* s = session_current();
  int has;
  close_tmp(s);
  if (s->flags & FLAG_NEED_FILE) {
    s->fd = scratchfile();
    if (s->fd < 0) return &resp_internal;
  }
  s->data_error = 0;
  s->msg_bytes = 0;
  struct args x = {0, 0, s->fd, 0, 0};
  const response* b = s->backend ? call(s->backend, H_DATA_START, &x, &has) : 0;
  if (is_error(b)) {
    handle_reset();
    s->data_error = b;
    return b;
  }
  const response* r = chain(s, H_DATA_START, &x, 0);
  if (is_error(r)) { handle_reset(); return r; }
  if (r && (r->number & RESPONSE_FINAL)) return r;
  return b ? b : r;
}

void handle_data_bytes(const char* bytes, unsigned len)
{
  struct session* s = session_current();
  int has;
  s->msg_bytes += len;
  if (s->data_error) return;
  struct args x = {0, 0, s->fd, bytes, len};
  const struct mf_plist* l = &s->cfg->plugins;
  for (unsigned i = 0; i < l->n; i++) {
    const response* r = call(l->v[i].p, H_DATA_BLOCK, &x, &has);
    if (is_error(r)) {
      handle_reset();
      s->data_error = r;
      return;
    }
  }
  if (s->backend) (void)call(s->backend, H_DATA_BLOCK, &x, &has);
  if (s->fd >= 0 && fd_write_all(s->fd, bytes, len) < 0) {
    handle_reset();
    s->data_error = &resp_internal;
  }
}

const response* handle_data_status(void)
{
  return session_current()->data_error;
}

/* The message event of the kv log: accepted, deferred (4xx), refused. */
static const response* message_result(struct session* s, const response* r)
{
  unsigned code = r ? r->number & RESPONSE_MASK : 250;
  log_message(code >= 500 ? "refused" : code >= 400 ? "deferred" : "accepted", code, s->msg_bytes);
  return r;
}

static const response* message_end(struct session* s)
{
  int has;
  if (s->data_error) return s->data_error;
  struct args x = {0, 0, s->fd, 0, 0};
  const response* r = chain(s, H_MESSAGE_END, &x, 0);
  if (is_error(r)) { handle_reset(); return r; }
  if (s->backend && s->backend->message_end) {
    x.fd = s->fd;
    r = call(s->backend, H_MESSAGE_END, &x, &has);
  }
  close_tmp(s);
  if (is_error(r)) handle_reset();
  return r;
}

const response* handle_message_end(void)
{
  struct session* s = session_current();
  return message_result(s, message_end(s));
}

const response* backend_data_block(const char* data, unsigned long len)
{
  struct session* s = session_current();
  int has;
  if (s->fd >= 0) return fd_write_all(s->fd, data, len) < 0 ? &resp_internal : 0;
  struct args x = {0, 0, -1, data, len};
  return s->backend ? call(s->backend, H_DATA_BLOCK, &x, &has) : 0;
}

/* Extension for filters that change the envelope or the message at end of
 * data (plugin-milter): the back end is reset and fed the whole message
 * again -- sender, each recipient of rcpts (NUL-terminated items),
 * data_start, the message file in pieces -- so that its message_end, which
 * the core calls next as usual, delivers the new version.  Only meaningful
 * inside a message_end hook with the message file; the first error of the
 * back end is returned (the caller returns it). */
const response* backend_resubmit(const str* sender, const str* rcpts)
{
  struct session* s = session_current();
  int has;
  if (!s->backend || s->fd < 0) return &resp_internal;
  struct args x = {0, 0, -1, 0, 0};
  (void)call(s->backend, H_RESET, &x, &has);
  str empty = {0, 0, 0}, addr = {0, 0, 0};
  const response* r = 0;
  if (!str_copyb(&addr, sender->s ? sender->s : "", sender->len)) return &resp_oom;
  x.a = &addr;
  x.b = &empty;
  r = call(s->backend, H_SENDER, &x, &has);
  for (unsigned i = 0; !is_error(r) && i < rcpts->len;) {
    unsigned n = (unsigned)strlen(rcpts->s + i);
    if (!str_copyb(&addr, rcpts->s + i, n)) r = &resp_oom;
    else r = call(s->backend, H_RECIPIENT, &x, &has);
    i += n + 1;
  }
  str_free(&addr);
  x.a = x.b = 0;
  x.fd = s->fd;
  if (!is_error(r)) r = call(s->backend, H_DATA_START, &x, &has);
  if (is_error(r)) return r;
  if (!s->backend->data_block) return 0;
  char* buf = malloc(65536);
  if (!buf) return &resp_oom;
  off_t at = 0;
  for (;;) {
    ssize_t n = pread(s->fd, buf, 65536, at);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) { r = &resp_internal; break; }
    if (n == 0) break;
    x.bytes = buf;
    x.len = (unsigned long)n;
    r = call(s->backend, H_DATA_BLOCK, &x, &has);
    if (is_error(r)) break;
    r = 0;
    at += n;
  }
  free(buf);
  return r;
}

/* An unnamed file in $TMPDIR: O_TMPFILE where the file system has it (no
 * name ever exists, so a SIGKILL can leave nothing behind), else a unique
 * name unlinked at once after its creation. */
int scratchfile(void)
{
  const char* dir = getenv("TMPDIR");
  if (!dir || !*dir) dir = "/tmp";
#ifdef O_TMPFILE
  int tfd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (tfd >= 0) return tfd;
  if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) return -1;
#endif
  for (int tries = 0; tries < 100; tries++) {
    struct timeval tv;
    gettimeofday(&tv, 0);
    char tail[80];
    snprintf(tail, sizeof tail, "/mailfront.tmp..%ld.%ld.%06ld", (long)getpid(), (long)tv.tv_sec, (long)tv.tv_usec);
    str path = {0, 0, 0};
    if (!str_cat2s(&path, dir, tail)) return -1;
    int fd = open(path.s, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) unlink(path.s);
    str_free(&path);
    if (fd >= 0) return fd;
    if (errno != EEXIST) return -1;
  }
  return -1;
}

/* ---- replies ---- */

int respond_line(unsigned number, int final, const char* msg, unsigned long len)
{
  struct session* s = session_current();
  number &= RESPONSE_MASK;
  if (number >= 400) log_reply(number, msg, len);
  if (!s->protocol->respond_line(number, final, msg, len)) return 0;
  /* A complete reply is flushed at once unless more pipelined input is
   * already waiting: then the input's tie flushes before the next wait. */
  if (!final || ibuf_buffered(&s->in) > 0) return !s->out.error && !s->out.timedout;
  return obuf_flush(&s->out) == 0;
}

int respond_multiline(unsigned number, int final, const char* msg)
{
  for (;;) {
    const char* nl = strchr(msg, '\n');
    if (!nl) return respond_line(number, final, msg, strlen(msg));
    if (!respond_line(number, 0, msg, (unsigned long)(nl - msg))) return 0;
    msg = nl + 1;
  }
}

int respond(const response* r)
{
  return respond_multiline(r->number & RESPONSE_MASK, 1, r->message ? r->message : "");
}

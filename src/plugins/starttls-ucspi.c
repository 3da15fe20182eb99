/* plugin-starttls-ucspi -- STARTTLS through an UCSPI-TLS wrapper such as
 * sslserver -y (plugins.md "starttls-ucspi"; compat-checklist item 56).
 *
 * The wrapper runs us with $UCSPITLS set and three descriptors named by
 * $SSLCTLFD (we write "y" there to ask for the handshake), $SSLREADFD and
 * $SSLWRITEFD (the decrypted stream after it).  While available, EHLO
 * lists STARTTLS and the STARTTLS command (no argument) answers 220, moves
 * the session's fd 0/1 onto the wrapper's descriptors and resets the input
 * buffer.  Bytes the client pipelined after STARTTLS are thrown away and
 * answered (encrypted) with 500, never executed (CVE-2011-0411).  Beyond
 * the original, the HELO/EHLO domain and the transaction are forgotten as
 * with the built-in STARTTLS (RFC 3207 4.2).
 *
 * Variables are session lookups.  After the switch $UCSPITLS is removed
 * from the process environment (programs started later do not see it);
 * its value is put back at session_close.  The session runs on fds 0/1
 * (mailfront; mailfrontd's children), which the switch replaces.
 * State: version 4; `available` and the saved variable are the session's
 * context (session_open/session_close), nothing mutable at file scope. */
#include "lib/progenv.h"
#include <mailfront/mailfront.h>
#include <mailfront/iobuf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static RESPONSE(ready, 220, "2.0.0 Ready to start TLS");
static RESPONSE(pipelined, 500, "5.5.1 Unexpected pipelined commands following STARTTLS");

extern struct plugin plugin;

struct ucspitls
{
  int available;
  int unset;                 /* $UCSPITLS removed from the process environment */
  char* saved;               /* its value then, or NULL */
};

static const response* open_ctx(void** ctx)
{
  *ctx = calloc(1, sizeof(struct ucspitls));
  return *ctx ? 0 : &resp_oom;
}

static void close_ctx(void* ctx)
{
  struct ucspitls* st = ctx;
  if (!st) return;
  if (st->unset && st->saved) setenv("UCSPITLS", st->saved, 1);
  free(st->saved);
  free(st);
}

/* A descriptor number from $name (lib/progenv.h's rule, 0 is a number):
 * 0..65535, or -1 when missing or not a number. */
static int env_fd(const char* name)
{
  static const struct env_number fd_spec = { ~0UL, 0, ~0UL, 1 };
  unsigned long n = env_number_parse(session_getenv(name), &fd_spec);
  return n > 65535 ? -1 : (int)n;
}

static const response* init(void)
{
  struct ucspitls* st = plugin_context(&plugin);
  if (!st) return &resp_internal;
  st->available = session_getenv("UCSPITLS") != 0;
  return 0;
}

static int enabled(void)
{
  const struct ucspitls* st = plugin_context(&plugin);
  return st && st->available;
}

static const response* helo(str* hostname, str* capabilities)
{
  (void)hostname;
  if (enabled() && !str_cats(capabilities, "STARTTLS\n")) return &resp_oom;
  return 0;
}

/* Remove $UCSPITLS from the process environment, keeping its value for
 * close_ctx.  0 ok, -1 out of memory. */
static int hide_ucspitls(struct ucspitls* st)
{
  const char* v = getenv("UCSPITLS");
  if (st->unset || !v) return 0;
  if (!(st->saved = strdup(v))) return -1;
  unsetenv("UCSPITLS");
  st->unset = 1;
  return 0;
}

static int starttls(void)
{
  struct ucspitls* st = plugin_context(&plugin);
  if (!st) return 0;
  ibuf* in = session_input();
  obuf* out = session_output();
  if (!respond(&resp_ready)) return 0;
  /* The 220 must reach the client in plaintext now, even though the I/O
   * layer defers it while pipelined input is buffered. */
  if (obuf_flush(out) < 0) return 0;
  close(0);
  unsigned long dropped = ibuf_discard(in);
  int ctl = env_fd("SSLCTLFD"), rfd = env_fd("SSLREADFD"), wfd = env_fd("SSLWRITEFD");
  if (ctl < 0 || rfd < 0 || wfd < 0) return 0;
  ssize_t w;
  do w = write(ctl, "y", 1);
  while (w < 0 && errno == EINTR);
  if (w != 1) return 0;
  if (dup2(rfd, 0) < 0 || dup2(wfd, 1) < 0) return 0;
  in->fd = 0;
  out->fd = 1;
  in->head = in->tail = 0;
  in->eof = in->error = in->timedout = 0;
  st->available = 0;
  session_setnum("tls_state", 1);
  if (hide_ucspitls(st) < 0) return 0;
  handle_reset();
  session_delstr("helo_domain");
  if (dropped > 0 && !respond(&resp_pipelined)) return 0;
  return 1;
}

static const struct command commands[] = {
  { "STARTTLS", enabled, starttls, 0 },
  { 0, 0, 0, 0 },
};

struct plugin plugin = {
  .version = PLUGIN_VERSION_4,
  .commands = commands,
  .init = init,
  .helo = helo,
  .session_open = open_ctx,
  .session_close = close_ctx,
};

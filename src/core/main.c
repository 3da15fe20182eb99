/* main.c -- the mailfront driver: `mailfront PROTOCOL BACKEND [PLUGINS...]`.
 *
 * Start-up sequence of driver.md: load the protocol, the backend and the
 * plugin lists (arguments, then $PLUGINS), run the init hooks, build the
 * command table, hand the connection to the protocol's mainloop.  The exit
 * handler (reset step and the bytes log line) runs on every return after
 * the init phase began.  This is the only place that exits. */
#include "core/check.h"
#include "core/modules.h"
#include "core/version.h"
#include "lib/log.h"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const response* handle_init(void);

static void exit_report(struct session* s)
{
  handle_reset();
  obuf_flush(&s->out);
  log_fmt(0, "bytes in: %llu bytes out: %llu", s->in.count, s->out.count);
}

/* A start-up error: through the protocol when there is one, else Fatal. */
static int fail(struct session* s, const response* r)
{
  if (!s->protocol) {
    log_parts(LOG_FATAL, r->message, 0, 0, 0);
    return 1;
  }
  respond(r);
  return 1;
}

static int run(struct session* s, int argc, char** argv)
{
  const response* r;
  if (argc < 3) {
    log_parts(LOG_FATAL, "Protocol or backend name are missing from the command line", 0, 0, 0);
    return 111;
  }
  const char* dbg = getenv("MSG_DEBUG");
  s->debug = dbg ? (unsigned)strtoul(dbg, 0, 10) : 0;
  struct protocol* proto = 0;
  if ((r = load_protocol(&proto, argv[1])) != 0) return fail(s, r);
  s->protocol = proto;
  s->flags = 0;
  struct plugin* backend = 0;
  if ((r = load_backend(&backend, argv[2])) != 0) return fail(s, r);
  switch_backend(backend);
  for (int i = 3; i < argc; i++)
    if ((r = plugins_apply(s, argv[i])) != 0) return fail(s, r);
  if ((r = plugins_apply(s, getenv("PLUGINS"))) != 0) return fail(s, r);

  /* init phase: from here on the exit handler runs. */
  s->exit_registered = 1;
  r = handle_init();
  if (r) { respond(r); return 1; }
  if (commands_build(s) < 0) { respond(&resp_oom); return 111; }
  if (s->protocol->init && s->protocol->init() != 0) return 1;
  return s->protocol->mainloop(s->commands);
}

int main(int argc, char** argv)
{
  struct session s;
  if (argc == 2 && strcmp(argv[1], "--version") == 0) return version_print(stdout) < 0 || fflush(stdout) != 0 ? 111 : 0;
  if (argc >= 2 && strcmp(argv[1], "--check") == 0) return check_main(argc - 1, argv + 1);
  log_program("mailfront");
  signal(SIGPIPE, SIG_IGN);
  if (session_init(&s) < 0) {
    log_parts(LOG_FATAL, "Out of memory", 0, 0, 0);
    return 111;
  }
  int status = run(&s, argc, argv);
  if (s.exit_registered) exit_report(&s);
  else obuf_flush(&s.out);
  session_free(&s);
  return status;
}

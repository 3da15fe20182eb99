/* authfront.c -- see authfront.h. */
#include "auth/authfront.h"
#include "auth/authconn.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "lib/progenv.h"
#include "tls/tlsrelay.h"
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int authfront_open(struct authfront* af, char** program)
{
  const struct env_number line = { AUTHFRONT_DEFAULT_MAX_LINE, 1, 1UL << 30, 0 };
  const struct env_number fails = { 0, 0, ~0UL / 10, 1 };
  af->program = program;
  af->max_line = env_number("MAX_LINE_LENGTH", &line);
  af->max_authfail = env_number("MAXAUTHFAIL", &fails);
  af->domain = cvm_ucspi_domain();
  if (!af->domain) af->domain = "unknown";
  af->auth_requires_tls = getenv("AUTH_REQUIRES_TLS") != 0;
  log_session_begin_env();
  return authconn_open(&af->in, &af->out, &af->deadline_ms, &af->tls);
}

void authfront_close(struct authfront* af, int status)
{
  obuf_flush(&af->out);
  if (tls_active(af->tls)) tls_close(af->tls);
  log_session_end(status, af->in.count, af->out.count, 0);
  ibuf_close(&af->in);
  obuf_close(&af->out);
  cvm_reply_free(&af->reply);
  sasl_config_free(&af->sasl);
  tls_free(af->tls);
  af->tls = 0;
}

int authfront_expired(const struct authfront* af)
{
  return af->deadline_ms > 0 && clock_mono_ms() >= af->deadline_ms;
}

unsigned authfront_cvm_deadline(const struct authfront* af)
{
  long long t = cvm_timeout_ms();
  long long left = af->deadline_ms - clock_mono_ms();
  if (left < t) t = left;
  return t < 1 ? 1 : (unsigned)t;
}

int authfront_failed(struct authfront* af)
{
  af->authfails++;
  return af->max_authfail > 0 && af->authfails >= af->max_authfail;
}

/* Switch to the user, set the environment, exec the server.  Returns only
 * on failure, with the exit status. */
static int exec_server(struct authfront* af, int env_exported, const struct authfront_ops* ops, void* ctx)
{
  /* Never hand the caller's supplementary groups (root's) to the user. */
  gid_t gid = (gid_t)af->reply.gid;
  if ((geteuid() == 0 && setgroups(1, &gid) < 0) || cvm_switch_user(&af->reply) < 0) {
    log_parts(LOG_ERR, "Could not switch to the user: ", strerror(errno), 0, 0);
    ops->reply(ctx, ops->no_user);
    return 1;
  }
  if ((!env_exported && cvm_setenv(&af->reply) < 0) || (ops->environment && ops->environment(ctx) < 0)) {
    ops->reply(ctx, ops->no_env);
    return 1;
  }
  if (obuf_flush(&af->out) < 0) return 1;
  alarm(0);
  signal(SIGPIPE, SIG_DFL);             /* the server gets the default back */
  execvp(af->program[0], af->program);
  log_parts(LOG_ERR, "Could not execute ", af->program[0], ": ", strerror(errno));
  ops->reply(ctx, ops->no_exec);
  return 1;
}

int authfront_handoff(struct authfront* af, int env_exported, const struct authfront_ops* ops, void* ctx)
{
  /* Inside TLS, or with client input already buffered (commands pipelined
   * after the login, which an exec would lose), the server runs behind the
   * relay; otherwise it is exec'd directly. */
  if (!tls_active(af->tls) && ibuf_buffered(&af->in) == 0) return exec_server(af, env_exported, ops, ctx);
  int status = 1;
  switch (tlsrelay_second_stage(&af->tls, &af->in, &af->out, &af->deadline_ms, af->reply.uid, af->reply.gid, &status)) {
  case TLSRELAY_EXEC: return exec_server(af, env_exported, ops, ctx);
  case TLSRELAY_NO_USER: ops->reply(ctx, ops->no_user); return 1;
  case TLSRELAY_NO_FORK: ops->reply(ctx, ops->internal); return 1;
  case TLSRELAY_CHILD_GONE: case TLSRELAY_DONE: break;
  }
  return status;
}

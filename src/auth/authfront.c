/* authfront.c -- see authfront.h. */
#include "auth/authfront.h"
#include "auth/authconn.h"
#include "lib/clock.h"
#include "lib/linein.h"
#include "lib/log.h"
#include "lib/progenv.h"
#include "tls/tlsrelay.h"
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int session_open(struct authfront* af, char** program, const struct authfront_proto* proto, void* ctx)
{
  const struct env_number line = { AUTHFRONT_DEFAULT_MAX_LINE, 1, 1UL << 30, 0 };
  const struct env_number fails = { 0, 0, ~0UL / 10, 1 };
  memset(af, 0, sizeof *af);
  af->proto = proto;
  af->ctx = ctx;
  af->program = program;
  af->max_line = env_number("MAX_LINE_LENGTH", &line);
  af->max_authfail = env_number("MAXAUTHFAIL", &fails);
  af->domain = cvm_ucspi_domain();
  if (!af->domain) af->domain = "unknown";
  af->auth_requires_tls = getenv("AUTH_REQUIRES_TLS") != 0;
  signal(SIGPIPE, SIG_IGN);             /* a closed client is a write error */
  log_session_begin_env();
  if (authconn_open(&af->in, &af->out, &af->deadline_ms, &af->tls) == 0) return 0;
  log_parts(LOG_FATAL, "Out of memory", 0, 0, 0);
  authfront_end(af, 111);
  return -1;
}

static void session_close(struct authfront* af, int status)
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

/* ---- the session's life ---------------------------------------------- */

void authfront_end(struct authfront* af, int status)
{
  af->state = AUTHFRONT_ENDED;
  af->status = status;
}

void authfront_authenticated(struct authfront* af) { af->state = AUTHFRONT_AUTHENTICATED; }

void authfront_failed(struct authfront* af)
{
  af->authfails++;
  if (af->max_authfail > 0 && af->authfails >= af->max_authfail) authfront_end(af, 0);
}

static int handoff(struct authfront* af);

static int expired(const struct authfront* af)
{
  return af->deadline_ms > 0 && clock_mono_ms() >= af->deadline_ms;
}

void authfront_input_ended(struct authfront* af, int r)
{
  if (r < 0 && af->in.timedout && !expired(af)) af->proto->notice(af->ctx, af->proto->timed_out);
  authfront_end(af, 0);
}

int authfront_getline(struct authfront* af, str* line, size_t* len, int* toolong)
{
  int r = line_read(&af->in, line, af->max_line, len, toolong);
  if (r > 0) return 1;
  authfront_input_ended(af, r);
  return -1;
}

static int session_serve(struct authfront* af)
{
  const struct authfront_proto* p = af->proto;
  if (af->state != AUTHFRONT_RUNNING) return af->status;
  if (!sasl_config_init(&af->sasl)) {
    p->notice(af->ctx, p->no_sasl);
    return 0;
  }
  p->notice(af->ctx, p->greeting);
  while (af->state == AUTHFRONT_RUNNING && !af->out.error && !af->out.timedout) p->step(af->ctx);
  if (af->state == AUTHFRONT_RUNNING)   /* output failed; the session deadline is a normal end */
    authfront_end(af, af->out.timedout && expired(af) ? 0 : 1);
  return af->state == AUTHFRONT_AUTHENTICATED ? handoff(af) : af->status;
}

int authfront_run(struct authfront* af, char** program, const struct authfront_proto* proto, void* ctx)
{
  session_open(af, program, proto, ctx);
  int status = session_serve(af);
  session_close(af, status);
  return status;
}

/* ---- credentials ------------------------------------------------------ */

unsigned authfront_cvm_deadline(const struct authfront* af)
{
  long long t = cvm_timeout_ms();
  long long left = af->deadline_ms - clock_mono_ms();
  if (left < t) t = left;
  return t < 1 ? 1 : (unsigned)t;
}

int authfront_credential_ok(const char* s, size_t len)
{
  return len <= AUTHFRONT_MAX_CREDENTIAL && (len == 0 || memchr(s, 0, len) == 0);
}

int authfront_tls_configured(const struct authfront* af) { return af->tls != 0; }
int authfront_tls_offered(const struct authfront* af) { return af->tls && !tls_active(af->tls); }
int authfront_login_blocked(const struct authfront* af) { return af->auth_requires_tls && !tls_active(af->tls); }

/* ---- STARTTLS --------------------------------------------------------- */

int authfront_starttls(struct authfront* af, const char* verb)
{
  str err = {0, 0, 0};
  unsigned long dropped = 0;
  log_parts(0, "Starting TLS handshake", 0, 0, 0);
  int r = tls_start(af->tls, &af->in, &af->out, &dropped, &err);
  if (dropped) log_fmt(0, "%s: discarded %lu bytes pipelined before the handshake", verb, dropped);
  if (r < 0) {
    log_parts(0, err.s ? err.s : "TLS handshake failed", 0, 0, 0);
    authfront_end(af, 1);
  }
  else if (tls_params(af->tls, &err) == 0)
    log_parts(0, "TLS handshake: ", err.s, 0, 0);
  str_free(&err);
  return r < 0 ? -1 : 0;
}

/* ---- SASL ------------------------------------------------------------- */

/* Challenges and client lines until the engine has a result. */
static int sasl_exchange(struct authfront* af, struct sasl_state* st, str* line, const char* arg, size_t len)
{
  int r = sasl_start(st, arg, len);
  while (r == SASL_CHALLENGE) {
    obuf_write(&af->out, "+ ", 2);
    obuf_write(&af->out, st->challenge.s, st->challenge.len);
    obuf_write(&af->out, "\r\n", 2);
    size_t l;
    int toolong;
    int g = line_read(&af->in, line, af->max_line, &l, &toolong);
    if (g == 0) return SASL_EOF;
    if (g < 0) return SASL_TEMP_FAIL;
    r = toolong ? SASL_RESP_BAD : sasl_response(st, line->s, l);
    if (toolong) st->reason = "bad response";
    memset(line->s, 0, line->len);      /* no credential left in memory */
  }
  return r;
}

static void sasl_log(const struct sasl_state* st, int r)
{
  str t = {0, 0, 0};
  if (sasl_log_reason(st, &t)) log_bytes(0, "", t.s, t.len);
  if (sasl_log_line(st, r, &t)) log_bytes(0, "", t.s, t.len);
  str_free(&t);
}

/* The protocol's failure reply; the client's next lines may be its
 * credentials (out of step). */
static void sasl_refused(struct authfront* af, int r)
{
  af->proto->sasl_failed(af->ctx, sasl_text(r));
  af->hide_input = 1;
}

void authfront_sasl(struct authfront* af, str* line, const char* arg, size_t len)
{
  struct sasl_state st;
  af->sasl.timeout_ms = authfront_cvm_deadline(af);
  sasl_state_init(&st, &af->sasl);
  int r = sasl_exchange(af, &st, line, arg, len);
  sasl_log(&st, r);
  int cut = af->in.timedout || af->in.error;
  if (r == SASL_SUCCESS) {
    /* the engine exported the CVM variables; keep the facts for the exec */
    cvm_reply_free(&af->reply);
    af->reply = st.reply;
    memset(&st.reply, 0, sizeof st.reply);
    af->env_exported = 1;
    authfront_authenticated(af);
  }
  else if (r == SASL_EOF || (r == SASL_TEMP_FAIL && cut)) {
    if (r == SASL_EOF && af->proto->eof_replies) sasl_refused(af, r);
    authfront_input_ended(af, r == SASL_EOF ? 0 : -1);
  }
  else {
    sasl_refused(af, r);
    authfront_failed(af);
  }
  sasl_state_free(&st);
}

/* ---- the exec of the server ------------------------------------------- */

/* Switch to the user, set the environment, exec the server.  Returns only
 * on failure, with the exit status. */
static int exec_server(struct authfront* af)
{
  const struct authfront_proto* p = af->proto;
  /* Never hand the caller's supplementary groups (root's) to the user. */
  gid_t gid = (gid_t)af->reply.gid;
  if ((geteuid() == 0 && setgroups(1, &gid) < 0) || cvm_switch_user(&af->reply) < 0) {
    log_parts(LOG_ERR, "Could not switch to the user: ", strerror(errno), 0, 0);
    p->reply(af->ctx, p->no_user);
    return 1;
  }
  if ((!af->env_exported && cvm_setenv(&af->reply) < 0) || (p->environment && p->environment(af->ctx) < 0)) {
    p->reply(af->ctx, p->no_env);
    return 1;
  }
  if (obuf_flush(&af->out) < 0) return 1;
  alarm(0);
  signal(SIGPIPE, SIG_DFL);             /* the server gets the default back */
  execvp(af->program[0], af->program);
  log_parts(LOG_ERR, "Could not execute ", af->program[0], ": ", strerror(errno));
  p->reply(af->ctx, p->no_exec);
  return 1;
}

static int handoff(struct authfront* af)
{
  /* Inside TLS, or with client input already buffered (commands pipelined
   * after the login, which an exec would lose), the server runs behind the
   * relay; otherwise it is exec'd directly. */
  if (!tls_active(af->tls) && ibuf_buffered(&af->in) == 0) return exec_server(af);
  int status = 1;
  switch (tlsrelay_second_stage(&af->tls, &af->in, &af->out, &af->deadline_ms, af->reply.uid, af->reply.gid, &status)) {
  case TLSRELAY_EXEC: return exec_server(af);
  case TLSRELAY_NO_USER: af->proto->reply(af->ctx, af->proto->no_user); return 1;
  case TLSRELAY_NO_FORK: af->proto->reply(af->ctx, af->proto->internal); return 1;
  case TLSRELAY_CHILD_GONE: case TLSRELAY_DONE: break;
  }
  return status;
}

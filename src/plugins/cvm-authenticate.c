/* plugin-cvm-authenticate -- SMTP AUTH (RFC 4954) through cvm-sasl
 * (plugins.md "cvm-authenticate", auth-cvm.md "cvm-sasl").
 *
 * init reads the SASL configuration ($CVM_SASL_PLAIN, $CVM_SASL_LOGIN,
 * $CVM_SASL_CRAM_MD5, ${PROTO}LOCALHOST) and $AUTH_REQUIRES_TLS (session
 * lookups, in every session).  AUTH is enabled when a mechanism is
 * configured and TLS is not required or `tls_state` > 0; the helo hook
 * then advertises `AUTH MECH...` and the AUTH command exists.
 * The exchange is driven here: the SASL engine (src/auth/sasl.c) computes
 * challenges and results, this file frames them as `334 BASE64` lines and
 * reads the client's lines from session_input() (at most $SMTP_MAXLINE
 * bytes, default 4096, minimum 512; a longer line is "Could not decode").
 * EOF → 535 End of file reached., read timeout/error → 451 Internal error.
 * (the session then ends at the next command read).  On success the
 * session becomes `authenticated` (relayclient and require-auth use it),
 * `helo_domain` is deleted and the auth_* items are set.
 * State: version 4.  The configuration is the session's context
 * (session_open/session_close); the exchange state lives on the stack of
 * the command function.  A successful exchange exports the CVM variables
 * (USER, HOME, ...: cvm_setenv) to the process environment, as the
 * original does (qmail-queue inherits them); the values they had before
 * are saved at the session's first AUTH and put back by session_close,
 * so the next session in the same process starts unauthenticated with
 * the environment it would have had in a process of its own. */
#include "lib/progenv.h"
#include <mailfront/mailfront.h>
#include <mailfront/iobuf.h>
#include "auth/sasl.h"

#include <stdlib.h>
#include <string.h>

extern struct plugin plugin;

#define NENV 16              /* at least the length of cvm_env_names */

struct auth
{
  struct sasl_config cfg;
  int cfg_set;               /* cfg holds memory to free */
  str mechs;                 /* "LOGIN PLAIN ..." */
  int requires_tls;
  unsigned long maxline;
  int env_saved;             /* saved[] holds the values before AUTH */
  char* saved[NENV];         /* copies of their values; NULL: was unset */
};

static RESPONSE(init_failed, 421, "4.3.0 Failed to initialize AUTH");
static RESPONSE(already, 503, "5.5.1 You are already authenticated.");
static RESPONSE(succeeded, 235, "2.7.0 Authentication succeeded.");
static RESPONSE(oom_auth, 451, "Internal error.");


/* $SMTP_MAXLINE as the SMTP protocol reads it (from the process
 * environment by lib/progenv.h's rule: default 4096, at least 512, 0 or
 * bad: the default). */
static const struct env_number maxline_spec = { 4096, 512, 1UL << 30, 0 };

static const response* auth_open(void** ctx)
{
  *ctx = calloc(1, sizeof(struct auth));
  return *ctx ? 0 : &resp_oom;
}

/* Put back the process environment of before the session's AUTH. */
static void restore_env(struct auth* a)
{
  if (!a->env_saved) return;
  for (size_t i = 0; i < NENV && cvm_env_names[i]; i++) {
    if (a->saved[i]) setenv(cvm_env_names[i], a->saved[i], 1);
    else unsetenv(cvm_env_names[i]);
    free(a->saved[i]);
    a->saved[i] = 0;
  }
  a->env_saved = 0;
}

/* Save the variables cvm_setenv may change.  0 ok, -1 out of memory. */
static int save_env(struct auth* a)
{
  if (a->env_saved) return 0;
  for (size_t i = 0; i < NENV && cvm_env_names[i]; i++) {
    const char* v = getenv(cvm_env_names[i]);
    a->saved[i] = 0;
    if (v && !(a->saved[i] = strdup(v))) {
      while (i-- > 0) { free(a->saved[i]); a->saved[i] = 0; }
      return -1;
    }
  }
  a->env_saved = 1;
  return 0;
}

static void auth_close(void* ctx)
{
  struct auth* a = ctx;
  if (!a) return;
  restore_env(a);
  if (a->cfg_set) sasl_config_free(&a->cfg);
  str_free(&a->mechs);
  free(a);
}

static const char* lookup(const char* name) { return session_getenv(name); }

static const response* auth_init(void)
{
  struct auth* a = plugin_context(&plugin);
  if (!a) return &resp_init_failed;
  a->requires_tls = session_getenv("AUTH_REQUIRES_TLS") != 0;
  a->maxline = env_number("SMTP_MAXLINE", &maxline_spec);
  if (!sasl_config_init_env(&a->cfg, lookup)) return &resp_init_failed;
  a->cfg_set = 1;
  if (!sasl_mechanisms(&a->cfg, &a->mechs)) return &resp_init_failed;
  return 0;
}

static int auth_enabled(void)
{
  const struct auth* a = plugin_context(&plugin);
  return a && a->cfg_set && sasl_enabled(&a->cfg)
    && (!a->requires_tls || session_getnum("tls_state", 0) > 0);
}

static const response* auth_helo(str* hostname, str* capabilities)
{
  (void)hostname;
  const struct auth* a = plugin_context(&plugin);
  if (auth_enabled())
    if (!str_cats(capabilities, "AUTH ") || !str_cat(capabilities, &a->mechs)
        || !str_catc(capabilities, '\n'))
      return &resp_oom;
  return 0;
}

/* Read one client line (CR LF stripped) into line.  Returns the SASL
 * status to use when no line could be read, or -1 with a line. */
static int read_line(const struct auth* a, str* line)
{
  int toolong = 0;
  int r = ibuf_getline(session_input(), line, a->maxline, &toolong);
  if (r == 0) return SASL_EOF;
  if (r < 0) return SASL_TEMP_FAIL;
  if (toolong) return SASL_RESP_BAD;
  if (line->len && line->s[line->len - 1] == '\n') line->len--;
  if (line->len && line->s[line->len - 1] == '\r') line->len--;
  return -1;
}

static void log_str(int ok, const str* s)
{
  if (ok && s->s) msg1(s->s);
}

/* The session items of an authenticated client; auth_mech is the SASL
 * mechanism's canonical name (milter's {auth_type}, add-received). */
static void set_session(const struct cvm_reply* r, int mech)
{
  session_setnum("authenticated", 1);
  if (mech >= 0) session_setstr("auth_mech", sasl_mech_name(mech));
  session_delstr("helo_domain");
  session_setstr("auth_user", r->username.s ? r->username.s : "");
  session_setnum("auth_uid", r->uid);
  session_setnum("auth_gid", r->gid);
  if (CVM_HAS(r, CVM_FACT_REALNAME)) session_setstr("auth_realname", r->realname.s);
  if (CVM_HAS(r, CVM_FACT_DOMAIN)) session_setstr("auth_domain", r->domain.s);
  if (CVM_HAS(r, CVM_FACT_MAILBOX)) session_setstr("auth_mailbox", r->mailbox.s);
}

static int auth_cmd(str* arg)
{
  if (session_getnum("authenticated", 0)) return respond(&resp_already);
  struct auth* a = plugin_context(&plugin);
  if (!a || save_env(a) < 0) return respond(&resp_oom_auth);

  struct sasl_state st;
  str line = {0, 0, 0}, log = {0, 0, 0};
  sasl_state_init(&st, &a->cfg);
  int status = sasl_start(&st, arg->s, arg->len);
  int ok = 1;
  while (status == SASL_CHALLENGE) {
    if (!respond_line(334, 1, st.challenge.s ? st.challenge.s : "", st.challenge.len)) {
      ok = 0;
      break;
    }
    int r = read_line(a, &line);
    if (r >= 0) {
      status = r;
      if (r == SASL_RESP_BAD) st.reason = "bad response";
      break;
    }
    status = sasl_response(&st, line.s, line.len);
  }
  if (line.s) memset(line.s, 0, line.size);
  str_free(&line);
  if (ok) {
    if (sasl_log_reason(&st, &log)) log_str(1, &log);
    log_str(sasl_log_line(&st, status, &log), &log);
    if (status == SASL_SUCCESS) {
      set_session(&st.reply, st.mech);
      ok = respond(&resp_succeeded);
    }
    else if (status > SASL_SUCCESS && status <= SASL_TEMP_FAIL && status != SASL_CHALLENGE) {
      response fail = { sasl_code(status), sasl_text(status) };  /* the engine's table */
      ok = respond(&fail);
    } else
      ok = respond(&resp_oom_auth);
  }
  str_free(&log);
  sasl_state_free(&st);
  return ok;
}

static const struct command commands[] = {
  { "AUTH", auth_enabled, 0, auth_cmd },
  { 0, 0, 0, 0 },
};

struct plugin plugin = {
  .version = PLUGIN_VERSION_4,
  .commands = commands,
  .init = auth_init,
  .helo = auth_helo,
  .session_open = auth_open,
  .session_close = auth_close,
};

/* mf.c -- the driver's two steps: mf_load (modules, once) and mf_session
 * (one connection), plus mf_reload and mf_free (contract in core/mf.h).
 *
 * mf_load follows driver.md's start-up: protocol, back end, the plugin
 * lists of the arguments then $PLUGINS, the command table, then the
 * version-4 load hooks.  mf_session: session set-up on the given fds,
 * the version-4 session_open hooks, the init step, the protocol's init
 * and mainloop; the exit handler (reset step, `bytes in: N bytes out: M`)
 * runs on every return after the init phase began, then session_close.
 *
 * No file-scope state: an error of mf_load or mf_reload is a copy the
 * caller owns (mf_error_free), since a failed mf_load has no
 * configuration left to keep its text in. */
#include "core/mf.h"
#include "core/modules.h"
#include "lib/log.h"
#include <stdlib.h>
#include <string.h>

RESPONSE(no_modules, 111, "Protocol or backend name are missing from the command line");

/* A copy of r (number and text in one allocation) for the caller; the
 * static resp_oom when memory is short (mf_error_free leaves it). */
static const response* keep_error(const response* r)
{
  const char* text = r->message ? r->message : "";
  size_t n = strlen(text) + 1;
  response* k = malloc(sizeof *k + n);
  if (!k) return &resp_oom;
  char* copy = (char*)(k + 1);
  memcpy(copy, text, n);
  k->number = r->number;
  k->message = r->message ? copy : 0;
  return k;
}

void mf_error_free(const response* err)
{
  if (err && err != &resp_oom) free((void*)err);
}

static int is_error(const response* r) { return r && (r->number & RESPONSE_MASK) >= 400; }

/* The version-4 hook `load` or `reload` of every module: plugins in
 * order, then the back end.  The first error is the result; loading
 * stops there, a reload goes on (each module keeps its own old state on
 * failure, the others still take their new one). */
static const response* run_config_hooks(struct mf_config* cfg, int reload)
{
  const response* first = 0;
  for (unsigned i = 0; i <= cfg->plugins.n; i++) {
    const struct plugin* p = i < cfg->plugins.n ? cfg->plugins.v[i].p : cfg->backend;
    if (!p || !plugin_is_v4(p)) continue;
    const response* (*hook)(void) = reload ? p->reload : p->load;
    const response* r = hook ? hook() : 0;
    if (is_error(r) && !first) first = r;
    if (first && !reload) break;
  }
  return first;
}

void mf_free(struct mf_config* cfg)
{
  if (!cfg) return;
  plugins_free(&cfg->plugins);
  free(cfg->commands);
  str_free(&cfg->err.text);
  free(cfg);
}

static const response* load_all(struct mf_config* cfg, int argc, char** argv, char** env)
{
  const response* r;
  const char* dir = envlist_get(env, "MODULE_PATH");
  const char* dbg = envlist_get(env, "MSG_DEBUG");
  cfg->debug = dbg ? (unsigned)strtoul(dbg, 0, 10) : 0;
  if ((r = module_load_protocol(&cfg->protocol, dir, argv[0], &cfg->err)) != 0) return r;
  if ((r = module_load_backend(&cfg->backend, dir, argv[1], &cfg->err)) != 0) return r;
  cfg->flags = cfg->backend->flags;
  for (int i = 2; i < argc; i++)
    if ((r = plugins_apply(cfg, dir, argv[i])) != 0) return r;
  if ((r = plugins_apply(cfg, dir, envlist_get(env, "PLUGINS"))) != 0) return r;
  if (commands_build(cfg) < 0) return &resp_oom;
  return run_config_hooks(cfg, 0);
}

struct mf_config* mf_load(int argc, char** argv, char** env, const response** err)
{
  if (argc < 2) { *err = keep_error(&resp_no_modules); return 0; }
  struct mf_config* cfg = calloc(1, sizeof *cfg);
  if (!cfg) { *err = &resp_oom; return 0; }
  const response* r = load_all(cfg, argc, argv, env);
  if (r) {
    *err = keep_error(r);
    mf_free(cfg);
    return 0;
  }
  return cfg;
}

int mf_reload(struct mf_config* cfg, const response** err)
{
  const response* r = run_config_hooks(cfg, 1);
  if (!r) return 0;
  *err = keep_error(r);
  return -1;
}

int mf_reusable(const struct mf_config* cfg, const char** who)
{
  if (cfg->protocol->version != PROTOCOL_VERSION_4) { *who = cfg->protocol->name; return 0; }
  if (!plugin_is_v4(cfg->backend)) { *who = "the back end"; return 0; }
  for (unsigned i = 0; i < cfg->plugins.n; i++)
    if (!plugin_is_v4(cfg->plugins.v[i].p)) { *who = cfg->plugins.v[i].name; return 0; }
  return 1;
}

/* ---- one session ---- */

static struct plugin* ctx_owner(const struct session* s, unsigned i)
{
  return i == 0 ? s->cfg->backend : s->cfg->plugins.v[i - 1].p;
}

void* protocol_context(void)
{
  struct session* s = session_current();
  return s ? s->proto_ctx : 0;
}

static int protocol_is_v4(const struct protocol* p) { return p->version == PROTOCOL_VERSION_4; }

/* session_open of every version-4 module: protocol, back end, plugins. */
const response* session_contexts_open(struct session* s)
{
  unsigned n = s->cfg->plugins.n + 1;
  if (s->protocol && protocol_is_v4(s->protocol) && s->protocol->session_open) {
    const response* r = s->protocol->session_open(&s->proto_ctx);
    if (is_error(r)) return r;
  }
  s->proto_opened = 1;
  if (!(s->ctx = calloc(n, sizeof *s->ctx))) return &resp_oom;
  for (; s->nopened < n; s->nopened++) {
    const struct plugin* p = ctx_owner(s, s->nopened);
    const response* r = p && plugin_is_v4(p) && p->session_open ? p->session_open(&s->ctx[s->nopened]) : 0;
    if (is_error(r)) return r;
  }
  return 0;
}

static void protocol_close(struct session* s)
{
  if (s->proto_opened && s->protocol && protocol_is_v4(s->protocol) && s->protocol->session_close)
    s->protocol->session_close(s->proto_ctx);
  s->proto_ctx = 0;
  s->proto_opened = 0;
}

void session_contexts_close(struct session* s)
{
  while (s->nopened > 0) {
    s->nopened--;
    const struct plugin* p = ctx_owner(s, s->nopened);
    if (p && plugin_is_v4(p) && p->session_close) p->session_close(s->ctx[s->nopened]);
  }
  free(s->ctx);
  s->ctx = 0;
  protocol_close(s);
}

static void exit_report(struct session* s, int status)
{
  handle_reset();
  obuf_flush(&s->out);
  log_session_end(status, s->in.count, s->out.count, 1);
}

static int run(struct session* s)
{
  const response* r;
  if ((r = session_contexts_open(s)) != 0 || (r = handle_init()) != 0) { respond(r); return 1; }
  if (s->protocol->init && s->protocol->init() != 0) return 1;
  return s->protocol->mainloop(s->cfg->commands);
}

int mf_session(struct mf_config* cfg, int in_fd, int out_fd, char** env)
{
  struct session s;
  if (session_init(&s, cfg, in_fd, out_fd, env) < 0) {
    session_free(&s);
    log_parts(LOG_FATAL, "Out of memory", 0, 0, 0);
    return 111;
  }
  if (log_get_format() == LOG_KV) log_session_begin(getprotoenv("REMOTEIP"));
  int status = run(&s);
  exit_report(&s, status);
  session_contexts_close(&s);
  session_free(&s);
  return status;
}

int mf_load_failed(char** argv, char** env, int out_fd, const response* err)
{
  struct mf_config cfg;
  struct session s;
  memset(&cfg, 0, sizeof cfg);
  if (!argv[0] || module_load_protocol(&cfg.protocol, envlist_get(env, "MODULE_PATH"), argv[0], &cfg.err) != 0) {
    str_free(&cfg.err.text);
    log_parts(LOG_FATAL, err->message, 0, 0, 0);
    return 1;
  }
  str_free(&cfg.err.text);
  if (session_init(&s, &cfg, -1, out_fd, env) == 0) {
    respond(err);
    obuf_flush(&s.out);
  }
  session_free(&s);
  return 1;
}

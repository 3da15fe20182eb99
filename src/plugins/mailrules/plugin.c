/* plugin.c -- the mailrules plugin: hooks around the rules of $MAILRULES
 * (mailrules.md, plugins.md "mailrules").
 *
 * The file $MAILRULES names when the modules are loaded is parsed once
 * (load hook): by mailfront at its start, by mailfrontd in the parent,
 * whose children then never read it; SIGHUP to mailfrontd re-reads it
 * (reload hook: a file that fails keeps the old rules and logs why, new
 * sessions see the new rules).  init uses that preloaded set when the
 * session's $MAILRULES still names the same file (a tcprules rule may
 * name another one); otherwise, or when the preload failed, it loads the
 * file for the session (parse.c) as the original does: failures answer
 * 421 and log "FILE:LINE: what" so nothing is ever accepted by a broken
 * rule set.  sender remembers the lower-cased sender and walks the
 * sender rules; recipient walks the recipient rules; reset clears the
 * session environment and the number `maxdatabytes`.  With $MAILRULES
 * unset every hook passes and reset touches nothing.
 * State: version 4.  The preloaded rules (`pre`, file scope) are written
 * only by load and reload, between sessions, and read-only while
 * sessions run.  The rest (the rules read for another file, the rules in
 * use, the sender, the replies) is the session's context
 * (session_open/session_close), so nothing of one session reaches the
 * next in the same process.  init reads $MAILRULES as a session lookup
 * (tcprules may name a file per client).  The reply objects returned by
 * the sender and recipient hooks live in the context until the next call
 * of the same hook. */
#include "rules.h"
#include <stdlib.h>
#include <string.h>

RESPONSE(open_failed, 421, "4.3.0 Could not open $MAILRULES file");
RESPONSE(syntax, 421, "4.3.0 Syntax error in $MAILRULES");
RESPONSE(referenced, 421, "4.3.0 Error opening file referenced from $MAILRULES");

/* Load-time state: read-only while sessions run. */
struct preloaded {
  struct ruleset rules;     /* parsed by load/reload */
  char* path;               /* its file; NULL: nothing preloaded */
};
static struct preloaded pre;

/* Per-session state. */
struct mailrules {
  struct ruleset own;       /* parsed by init for another file */
  int own_loaded;
  const struct ruleset* rules;   /* in use this session; NULL: none */
  str sender;        /* lower-cased sender of the transaction */
  str recipient;     /* lower-cased copy of the current recipient */
  response sender_reply, recipient_reply;   /* replies of the last fired rules */
};

extern struct plugin plugin;

/* Parse $MAILRULES into the preloaded set.  At load, a failure is left
 * to init (which answers and logs it per session, as without preloading);
 * at reload it keeps the old set and is logged here. */
static RESPONSE(reload_failed, 451, "4.3.0 mailrules: the new $MAILRULES file did not load, the old rules stay");

static const response* preload(int reload)
{
  const char* path = getenv("MAILRULES");
  if (!path) {
    if (pre.path) ruleset_free(&pre.rules);
    free(pre.path);
    pre.path = 0;
    return 0;
  }
  struct ruleset fresh;
  str why = {0, 0, 0};
  char* copy = strdup(path);
  enum rules_error e = copy ? ruleset_load(&fresh, path, &why) : RULES_NOMEM;
  if (e != RULES_OK) {
    if (reload) msg3("mailrules: reload: ", why.s ? why.s : "out of memory", " (the old rules stay)");
    str_free(&why);
    free(copy);
    return reload ? &resp_reload_failed : 0;
  }
  if (pre.path) ruleset_free(&pre.rules);
  free(pre.path);
  pre.rules = fresh;
  pre.path = copy;
  return 0;
}

static const response* mr_load(void) { return preload(0); }
static const response* mr_reload(void) { return preload(1); }

static const response* mr_open(void** ctx)
{
  *ctx = calloc(1, sizeof(struct mailrules));
  return *ctx ? 0 : &resp_oom;
}

static void mr_close(void* ctx)
{
  struct mailrules* mr = ctx;
  if (!mr) return;
  if (mr->own_loaded) ruleset_free(&mr->own);
  str_free(&mr->sender);
  str_free(&mr->recipient);
  free(mr);
}

static const response* mr_init(void)
{
  struct mailrules* mr = plugin_context(&plugin);
  if (!mr) return &resp_internal;
  const char* path = session_getenv("MAILRULES");
  mr->rules = 0;
  if (!path) return 0;
  if (pre.path && strcmp(path, pre.path) == 0) {
    mr->rules = &pre.rules;
    return 0;
  }
  if (mr->own_loaded) ruleset_free(&mr->own);
  mr->own_loaded = 0;
  str why = {0, 0, 0};
  enum rules_error e = ruleset_load(&mr->own, path, &why);
  if (e != RULES_OK) {
    if (why.s) msg2("mailrules: ", why.s);
    str_free(&why);
  }
  switch (e) {
  case RULES_OK: break;
  case RULES_OPEN: return &resp_open_failed;
  case RULES_SYNTAX: return &resp_syntax;
  case RULES_REFERENCED: return &resp_referenced;
  case RULES_NOMEM: return &resp_oom;
  }
  mr->own_loaded = 1;
  mr->rules = &mr->own;
  return 0;
}

static const response* mr_reset(void)
{
  const struct mailrules* mr = plugin_context(&plugin);
  if (!mr || !mr->rules) return 0;
  session_resetenv();
  session_delnum("maxdatabytes");
  return 0;
}

struct firing {
  const struct ruleset* rules;   /* the session's rules */
  str* address;      /* recipient address to extend, or NULL */
};

/* Effects of a fired rule (mailrules.md "When a rule fires"). */
static int apply(const struct rule* r, void* ctx)
{
  struct firing* f = ctx;
  const char* arena = f->rules->arena.s;
  if (r->env)
    for (const char* a = arena + r->env; *a; a += strlen(a) + 1)
      if (!session_putenv(a)) return 1;
  unsigned long m = session_getnum("maxdatabytes", 0);
  unsigned long d = r->databytes > (uint64_t)~0ul ? ~0ul : (unsigned long)r->databytes;
  if (m == 0 || (d > 0 && m > d)) session_setnum("maxdatabytes", d);
  if (f->address && r->relay && !str_cats(f->address, arena + r->relay)) return 1;
  return 0;
}

static const response* result(const struct ruleset* rules, const struct rule* r, int failed, response* out)
{
  if (failed) return &resp_oom;
  if (!r) return 0;
  const char* text = r->response ? rules->arena.s + r->response : 0;
  switch (r->code) {
  case 'k': out->number = 250; break;
  case 'K': out->number = 250 | RESPONSE_FINAL; break;
  case 'd': out->number = 553; if (!text) text = "Rejected"; break;
  case 'z': out->number = 451; if (!text) text = "Deferred"; break;
  default: return 0;   /* 'p' */
  }
  out->message = text;
  return out;
}

static int lowered(str* out, const str* in)
{
  if (!str_copyb(out, in->s ? in->s : "", in->len)) return 0;
  str_lower(out);
  return 1;
}

static const response* mr_sender(str* address, str* params)
{
  (void)params;
  struct mailrules* mr = plugin_context(&plugin);
  if (!mr || !mr->rules) return 0;
  if (!lowered(&mr->sender, address)) { mr->sender.len = 0; return &resp_oom; }
  struct addr s;
  addr_set(&s, mr->sender.s, mr->sender.len);
  struct firing f = { mr->rules, 0 };
  int failed;
  const struct rule* r = rules_walk(mr->rules, &mr->rules->sender, &s, 0, apply, &f, &failed);
  return result(mr->rules, r, failed, &mr->sender_reply);
}

static const response* mr_recipient(str* address, str* params)
{
  (void)params;
  struct mailrules* mr = plugin_context(&plugin);
  if (!mr || !mr->rules) return 0;
  if (!lowered(&mr->recipient, address)) return &resp_oom;
  struct addr s, rc;
  addr_set(&s, mr->sender.s ? mr->sender.s : "", mr->sender.len);
  addr_set(&rc, mr->recipient.s, mr->recipient.len);
  struct firing f = { mr->rules, address };
  int failed;
  const struct rule* r = rules_walk(mr->rules, &mr->rules->recipient, &s, &rc, apply, &f, &failed);
  return result(mr->rules, r, failed, &mr->recipient_reply);
}

struct plugin plugin = {
  .version = PLUGIN_VERSION_4,
  .load = mr_load,
  .reload = mr_reload,
  .init = mr_init,
  .reset = mr_reset,
  .sender = mr_sender,
  .recipient = mr_recipient,
  .session_open = mr_open,
  .session_close = mr_close,
};

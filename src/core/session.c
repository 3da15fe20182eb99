/* session.c -- session environment, string and number tables, UCSPI
 * variables (the session_* and getprotoenv functions of the ABI).
 *
 * Lookup rules are those of driver.md "Variable lookup": the session
 * environment is consulted before the process environment and its earliest
 * entry wins; numeric-minimum lookups take the smallest positive value of
 * all.  Setting a string replaces it (upstream's duplicate-entry quirk is
 * fixed).  Allocation failures leave the tables unchanged. */
#include "core/session.h"
#include "lib/clock.h"
#include "lib/progenv.h"
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct session* current;

struct session* session_current(void) { return current; }

const char* envlist_get(char** env, const char* name)
{
  if (!env) return getenv(name);
  size_t nlen = strlen(name);
  for (; *env; env++)
    if (strncmp(*env, name, nlen) == 0 && (*env)[nlen] == '=') return *env + nlen + 1;
  return 0;
}

/* NAME from the extra environment, else the process environment. */
static const char* outer_getenv(const struct session* s, const char* name)
{
  const char* v = s && s->extra_env ? envlist_get(s->extra_env, name) : 0;
  return v ? v : getenv(name);
}

/* $TIMEOUT and $SESSION_TIMEOUT: seconds by the one rule of lib/progenv.h. */
static unsigned env_uint(const struct session* s, const char* name, unsigned dflt)
{
  const struct env_number spec = { dflt, 1, 100000000, 0 };
  return (unsigned)env_number_parse(outer_getenv(s, name), &spec);
}

int session_init(struct session* s, struct mf_config* cfg, int in_fd, int out_fd, char** env)
{
  memset(s, 0, sizeof *s);
  s->fd = -1;
  s->cfg = cfg;
  s->extra_env = env;
  if (cfg) {
    s->protocol = cfg->protocol;
    s->backend = cfg->backend;
    s->flags = cfg->flags;
  }
  if (ibuf_init(&s->in, in_fd, 16384) < 0) return -1;
  if (obuf_init(&s->out, out_fd, 8192) < 0) { ibuf_close(&s->in); return -1; }
  unsigned t = env_uint(s, "TIMEOUT", 1200);
  s->in.timeout_ms = s->out.timeout_ms = t * 1000;
  s->in.deadline_ms = s->out.deadline_ms = &s->deadline_ms;
  s->in.tie = &s->out;
  current = s;
  session_set_timeout(env_uint(s, "SESSION_TIMEOUT", 86400));
  return 0;
}

void session_set_timeout(unsigned seconds)
{
  if (current) current->deadline_ms = clock_mono_ms() + (long long)seconds * 1000;
}

int session_expired(void) { return current && current->deadline_ms > 0 && clock_mono_ms() >= current->deadline_ms; }

static void kv_free(struct kvlist* l)
{
  for (unsigned i = 0; i < l->n; i++) { free(l->v[i].name); free(l->v[i].value); }
  free(l->v);
  memset(l, 0, sizeof *l);
}

void session_free(struct session* s)
{
  session_resetenv();
  free(s->env);
  kv_free(&s->strs);
  kv_free(&s->nums);
  str_free(&s->err.text);
  ibuf_close(&s->in);
  obuf_close(&s->out);
  if (current == s) current = 0;
}

const response* errbuf_set(struct errbuf* e, unsigned number, const char* a, const char* b, const char* c)
{
  e->text.len = 0;
  if (!str_cat3s(&e->text, a ? a : "", b ? b : "", c ? c : "")) return &resp_oom;
  e->r.number = number;
  e->r.message = e->text.s;
  return &e->r;
}

const response* session_error(unsigned number, const char* a, const char* b, const char* c)
{
  return current ? errbuf_set(&current->err, number, a, b, c) : &resp_internal;
}

ibuf* session_input(void) { return &current->in; }
obuf* session_output(void) { return &current->out; }
const char* session_protocol(void) { return current && current->protocol ? current->protocol->name : UNKNOWN; }

/* ---- session environment ---- */

static int env_match(const char* entry, const char* name, size_t nlen)
{
  return strncmp(entry, name, nlen) == 0 && entry[nlen] == '=';
}

const char* session_getenv(const char* name)
{
  size_t nlen = strlen(name);
  if (current)
    for (unsigned i = 0; i < current->nenv; i++)
      if (env_match(current->env[i], name, nlen)) return current->env[i] + nlen + 1;
  return outer_getenv(current, name);
}

/* Decimal value of v if it is all digits and > 0, else 0. */
static unsigned long digits(const char* v)
{
  unsigned long n = 0;
  if (!v || !*v) return 0;
  for (; *v; v++) {
    if (*v < '0' || *v > '9') return 0;
    unsigned long d = (unsigned long)(*v - '0');
    if (n > (~0ul - d) / 10) return 0;
    n = n * 10 + d;
  }
  return n;
}

unsigned long session_getenvu(const char* name)
{
  size_t nlen = strlen(name);
  unsigned long best = digits(outer_getenv(current, name));
  if (current)
    for (unsigned i = 0; i < current->nenv; i++)
      if (env_match(current->env[i], name, nlen)) {
        unsigned long v = digits(current->env[i] + nlen + 1);
        if (v && (!best || v < best)) best = v;
      }
  return best;
}

static int all_digits(const char* v)
{
  if (!v || !*v) return 0;
  for (; *v; v++) if (*v < '0' || *v > '9') return 0;
  return 1;
}

unsigned long session_getenvu_dflt(const char* name, unsigned long dflt)
{
  size_t nlen = strlen(name);
  if (current)
    for (unsigned i = 0; i < current->nenv; i++)
      if (env_match(current->env[i], name, nlen)) {
        const char* v = current->env[i] + nlen + 1;
        if (all_digits(v)) return strtoul(v, 0, 10);
        break;
      }
  const char* p = outer_getenv(current, name);
  return all_digits(p) ? strtoul(p, 0, 10) : dflt;
}

int session_putenv(const char* assignment)
{
  struct session* s = current;
  if (!s || !strchr(assignment, '=')) return 0;
  if (s->nenv == s->capenv) {
    unsigned cap = s->capenv ? s->capenv * 2 : 8;
    char** v = realloc(s->env, cap * sizeof *v);
    if (!v) return 0;
    s->env = v;
    s->capenv = cap;
  }
  char* copy = strdup(assignment);
  if (!copy) return 0;
  s->env[s->nenv++] = copy;
  return 1;
}

int session_setenv(const char* name, const char* value, int overwrite)
{
  struct session* s = current;
  size_t nlen = strlen(name);
  for (unsigned i = 0; s && i < s->nenv; i++)
    if (env_match(s->env[i], name, nlen)) {
      if (!overwrite) return 1;
      free(s->env[i]);
      memmove(s->env + i, s->env + i + 1, (s->nenv - i - 1) * sizeof *s->env);
      s->nenv--;
      break;
    }
  str a = {0, 0, 0};
  int ok = str_cat3s(&a, name, "=", value) && session_putenv(a.s);
  str_free(&a);
  return ok;
}

void session_resetenv(void)
{
  struct session* s = current;
  if (!s) return;
  for (unsigned i = 0; i < s->nenv; i++) free(s->env[i]);
  s->nenv = 0;
}

int session_exportenv(void)
{
  struct session* s = current;
  for (unsigned i = 0; s && i < s->nenv; i++) {
    char* eq = strchr(s->env[i], '=');
    str name = {0, 0, 0};
    if (!str_copyb(&name, s->env[i], (unsigned)(eq - s->env[i]))) return 0;
    int r = setenv(name.s, eq + 1, 1);
    str_free(&name);
    if (r != 0) return 0;
  }
  return 1;
}

/* ---- string and number tables ---- */

static struct kv* kv_find(struct kvlist* l, const char* name)
{
  for (unsigned i = 0; i < l->n; i++)
    if (strcmp(l->v[i].name, name) == 0) return &l->v[i];
  return 0;
}

static struct kv* kv_add(struct kvlist* l, const char* name)
{
  struct kv* e = kv_find(l, name);
  if (e) return e;
  if (l->n == l->cap) {
    unsigned cap = l->cap ? l->cap * 2 : 8;
    struct kv* v = realloc(l->v, cap * sizeof *v);
    if (!v) return 0;
    l->v = v;
    l->cap = cap;
  }
  char* n = strdup(name);
  if (!n) return 0;
  e = &l->v[l->n++];
  e->name = n;
  e->value = 0;
  e->num = 0;
  return e;
}

static void kv_del(struct kvlist* l, const char* name)
{
  struct kv* e = kv_find(l, name);
  if (!e) return;
  free(e->name);
  free(e->value);
  *e = l->v[--l->n];
}

const char* session_getstr(const char* name)
{
  struct kv* e = current ? kv_find(&current->strs, name) : 0;
  return e ? e->value : 0;
}

void session_setstr(const char* name, const char* value)
{
  char* v = strdup(value ? value : "");
  struct kv* e = v && current ? kv_add(&current->strs, name) : 0;
  if (!e) { free(v); return; }
  free(e->value);
  e->value = v;
}

void session_delstr(const char* name) { if (current) kv_del(&current->strs, name); }

int session_hasnum(const char* name, unsigned long* out)
{
  struct kv* e = current ? kv_find(&current->nums, name) : 0;
  if (e && out) *out = e->num;
  return e != 0;
}

unsigned long session_getnum(const char* name, unsigned long dflt)
{
  unsigned long v;
  return session_hasnum(name, &v) ? v : dflt;
}

void session_setnum(const char* name, unsigned long value)
{
  struct kv* e = current ? kv_add(&current->nums, name) : 0;
  if (e) e->num = value;
}

void session_delnum(const char* name) { if (current) kv_del(&current->nums, name); }

/* ---- UCSPI ---- */

const char* getprotoenv(const char* name)
{
  const char* proto = outer_getenv(current, "PROTO");
  if (!proto || !*proto) proto = "TCP";
  if (!name || !*name) return proto;
  str var = {0, 0, 0};
  if (!str_cat2s(&var, proto, name)) return 0;
  const char* v = outer_getenv(current, var.s);
  str_free(&var);
  return v && *v ? v : 0;
}

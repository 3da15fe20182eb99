/* modules.c -- dlopen of modules and the plugin list of a configuration.
 *
 * A module TYPE-NAME.so is opened from $MODULE_PATH (else MODULE_DIR) with
 * RTLD_NOW|RTLD_LOCAL and must export an object named TYPE ("protocol",
 * "backend", "plugin") whose version is accepted (3 or 4).  Handles are never closed: module code lives as
 * long as the process.  The modules' exported objects are never written
 * to: names and order live in the configuration's list (struct mf_plist),
 * whose elements follow driver.md: `name` appends, `+name` prepends,
 * `-name` removes, `-*` empties; a name already present is moved, never
 * loaded twice. */
#include "core/modules.h"
#include "lib/log.h"
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

RESPONSE(proto_abi, 451, "4.3.0 Protocol ABI version mismatch");
RESPONSE(backend_abi, 451, "4.3.0 Backend ABI version mismatch");
RESPONSE(plugin_abi, 451, "4.3.0 Plugin ABI version mismatch");

static const response* open_module(void** obj, const char* dir, const char* type, const char* name, struct errbuf* e)
{
  str path = {0, 0, 0};
  if (!dir || !*dir) dir = MODULE_DIR;
  if (!str_cat3s(&path, dir, "/", type) || !str_cat3s(&path, "-", name, ".so")) { str_free(&path); return &resp_oom; }
  void* h = dlopen(path.s, RTLD_NOW | RTLD_LOCAL);
  str_free(&path);
  void* o = h ? dlsym(h, type) : 0;
  if (!o) {
    const char* err = dlerror();
    str m = {0, 0, 0};
    const response* r = &resp_oom;
    if (str_cat3s(&m, "4.3.0 Error loading ", type, " ") && str_cats(&m, name)) {
      const response* set = errbuf_set(e, 451, m.s, ": ", err ? err : "unknown error");
      if (set) r = set;   /* never 0, but a 0 here would read as success */
    }
    str_free(&m);
    return r;
  }
  *obj = o;
  return 0;
}

int plugin_is_v4(const struct plugin* p) { return p->version == PLUGIN_VERSION_4; }

static int plugin_version_ok(const struct plugin* p)
{
  return p->version == PLUGIN_VERSION || p->version == PLUGIN_VERSION_4;
}

const response* module_load_protocol(struct protocol** p, const char* dir, const char* name, struct errbuf* e)
{
  void* o;
  const response* r = open_module(&o, dir, "protocol", name, e);
  if (r) return r;
  *p = o;
  return (*p)->version == PROTOCOL_VERSION || (*p)->version == PROTOCOL_VERSION_4 ? 0 : &resp_proto_abi;
}

static const response* load_named(struct plugin** pp, const char* dir, const char* type, const char* name, const response* abi, struct errbuf* e)
{
  void* o;
  const response* r = open_module(&o, dir, type, name, e);
  if (r) return r;
  if (!plugin_version_ok(o)) return abi;
  *pp = o;
  return 0;
}

const response* module_load_backend(struct plugin** b, const char* dir, const char* name, struct errbuf* e)
{
  return load_named(b, dir, "backend", name, &resp_backend_abi, e);
}

static const response* module_load_plugin(struct plugin** p, const char* dir, const char* name, struct errbuf* e)
{
  struct plugin* b = builtin_plugin(name);
  if (b) { *p = b; return 0; }
  return load_named(p, dir, "plugin", name, &resp_plugin_abi, e);
}

/* ---- the ABI's loader functions (for plugins that load others) ---- */

static struct errbuf* abi_errbuf(void)
{
  struct session* s = session_current();
  return s ? &s->err : 0;
}

/* The ABI documents that these fill in the module's name; the core itself
 * never relies on it. */
const response* load_plugin(struct plugin** p, const char* name)
{
  struct errbuf* e = abi_errbuf();
  if (!e) return &resp_internal;
  const response* r = module_load_plugin(p, getenv("MODULE_PATH"), name, e);
  return r;
}

const response* load_backend(struct plugin** b, const char* name)
{
  struct errbuf* e = abi_errbuf();
  if (!e) return &resp_internal;
  return module_load_backend(b, getenv("MODULE_PATH"), name, e);
}

struct plugin* switch_backend(struct plugin* b)
{
  struct session* s = session_current();
  if (!s) return 0;
  struct plugin* old = s->backend;
  s->backend = b;
  if (b) s->flags |= b->flags;
  return old;
}

/* ---- the plugin list ---- */

void plugins_free(struct mf_plist* l)
{
  for (unsigned i = 0; i < l->n; i++) free(l->v[i].name);
  free(l->v);
  memset(l, 0, sizeof *l);
}

/* Take the entry called name out of the list into *out; 1 if found. */
static int unlink_plugin(struct mf_plist* l, const char* name, struct mf_entry* out)
{
  for (unsigned i = 0; i < l->n; i++)
    if (strcmp(l->v[i].name, name) == 0) {
      *out = l->v[i];
      memmove(l->v + i, l->v + i + 1, (l->n - i - 1) * sizeof *l->v);
      l->n--;
      return 1;
    }
  return 0;
}

static int insert_plugin(struct mf_plist* l, struct mf_entry e, int front)
{
  if (l->n == l->cap) {
    unsigned cap = l->cap ? l->cap * 2 : 8;
    struct mf_entry* v = realloc(l->v, cap * sizeof *v);
    if (!v) return 0;
    l->v = v;
    l->cap = cap;
  }
  if (front) {
    memmove(l->v + 1, l->v, l->n * sizeof *l->v);
    l->v[0] = e;
  } else {
    l->v[l->n] = e;
  }
  l->n++;
  return 1;
}

static const response* apply_one(struct mf_config* cfg, const char* dir, const char* elem)
{
  struct mf_plist* l = &cfg->plugins;
  struct mf_entry e;
  int front = 0;
  if (elem[0] == '-') {
    if (strcmp(elem + 1, "*") == 0) {
      for (unsigned i = 0; i < l->n; i++) free(l->v[i].name);
      l->n = 0;
    } else if (unlink_plugin(l, elem + 1, &e)) {
      free(e.name);
    }
    return 0;
  }
  if (elem[0] == '+') { front = 1; elem++; }
  if (!*elem) return 0;
  if (!unlink_plugin(l, elem, &e)) {
    const response* r = module_load_plugin(&e.p, dir, elem, &cfg->err);
    if (r) return r;
    if (!(e.name = strdup(elem))) return &resp_oom;
    cfg->flags |= e.p->flags;
  }
  if (!insert_plugin(l, e, front)) { free(e.name); return &resp_oom; }
  return 0;
}

const response* plugins_apply(struct mf_config* cfg, const char* dir, const char* list)
{
  str elem = {0, 0, 0};
  const response* r = 0;
  while (list && !r) {
    const char* colon = strchr(list, ':');
    size_t n = colon ? (size_t)(colon - list) : strlen(list);
    if (n > 0) {
      if (!str_copyb(&elem, list, (unsigned)n)) { r = &resp_oom; break; }
      r = apply_one(cfg, dir, elem.s);
    }
    list = colon ? colon + 1 : 0;
  }
  str_free(&elem);
  return r;
}

static int count_cmds(const struct command* c)
{
  int n = 0;
  while (c && c[n].name) n++;
  return n;
}

static int append_cmds(struct command* all, int k, const struct command* c)
{
  if (!c) return k;                         /* a module without commands */
  for (int i = 0; i < count_cmds(c); i++) all[k++] = c[i];
  return k;
}

int commands_build(struct mf_config* cfg)
{
  int n = count_cmds(cfg->backend ? cfg->backend->commands : 0);
  for (unsigned i = 0; i < cfg->plugins.n; i++) n += count_cmds(cfg->plugins.v[i].p->commands);
  struct command* all = calloc((size_t)n + 1, sizeof *all);
  if (!all) return -1;
  int k = append_cmds(all, 0, cfg->backend ? cfg->backend->commands : 0);
  for (unsigned i = 0; i < cfg->plugins.n; i++) k = append_cmds(all, k, cfg->plugins.v[i].p->commands);
  free(cfg->commands);
  cfg->commands = all;
  return 0;
}

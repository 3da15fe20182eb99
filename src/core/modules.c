/* modules.c -- dlopen of modules and the plugin list.
 *
 * A module TYPE-NAME.so is opened from $MODULE_PATH (else MODULE_DIR) with
 * RTLD_NOW|RTLD_LOCAL and must export an object named TYPE ("protocol",
 * "backend", "plugin") whose version matches.  Handles are never closed:
 * modules live as long as the process.  Plugin list elements follow
 * driver.md: `name` appends, `+name` prepends, `-name` removes, `-*`
 * empties; a name already present is moved, never loaded twice. */
#include "core/modules.h"
#include "lib/log.h"
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

RESPONSE(proto_abi, 451, "4.3.0 Protocol ABI version mismatch");
RESPONSE(backend_abi, 451, "4.3.0 Backend ABI version mismatch");
RESPONSE(plugin_abi, 451, "4.3.0 Plugin ABI version mismatch");

static const response* open_module(void** obj, const char* type, const char* symbol, const char* name)
{
  const char* dir = getenv("MODULE_PATH");
  str path = {0, 0, 0};
  if (!dir || !*dir) dir = MODULE_DIR;
  if (!str_cat3s(&path, dir, "/", type) || !str_cat3s(&path, "-", name, ".so")) return &resp_oom;
  void* h = dlopen(path.s, RTLD_NOW | RTLD_LOCAL);
  str_free(&path);
  void* o = h ? dlsym(h, symbol) : 0;
  if (!o) {
    const char* e = dlerror();
    str m = {0, 0, 0};
    if (!str_cat3s(&m, "4.3.0 Error loading ", type, " ") || !str_cat3s(&m, name, ": ", e ? e : "unknown error")) return &resp_oom;
    const response* r = session_error(451, m.s, 0, 0);
    str_free(&m);
    return r;
  }
  *obj = o;
  return 0;
}

const response* load_protocol(struct protocol** p, const char* name)
{
  void* o;
  const response* r = open_module(&o, "protocol", "protocol", name);
  if (r) return r;
  *p = o;
  return (*p)->version == PROTOCOL_VERSION ? 0 : &resp_proto_abi;
}

static const response* load_named(struct plugin** pp, const char* type, const char* name, const response* abi)
{
  void* o;
  const response* r = open_module(&o, type, type, name);
  if (r) return r;
  struct plugin* p = o;
  if (p->version != PLUGIN_VERSION) return abi;
  char* n = strdup(name);
  if (!n) return &resp_oom;
  p->name = n;
  p->next = 0;
  *pp = p;
  return 0;
}

const response* load_backend(struct plugin** b, const char* name) { return load_named(b, "backend", name, &resp_backend_abi); }

const response* load_plugin(struct plugin** p, const char* name)
{
  struct plugin* b = builtin_plugin(name);
  if (b) { *p = b; return 0; }
  return load_named(p, "plugin", name, &resp_plugin_abi);
}

struct plugin* switch_backend(struct plugin* b)
{
  struct session* s = session_current();
  struct plugin* old = s->backend;
  s->backend = b;
  if (b) s->flags |= b->flags;
  return old;
}

/* Take the plugin called name out of the list; returns it or NULL. */
static struct plugin* unlink_plugin(struct session* s, const char* name)
{
  for (struct plugin** pp = &s->plugins; *pp; pp = &(*pp)->next)
    if (strcmp((*pp)->name, name) == 0) {
      struct plugin* p = *pp;
      *pp = p->next;
      p->next = 0;
      return p;
    }
  return 0;
}

static const response* apply_one(struct session* s, const char* elem)
{
  int front = 0;
  if (elem[0] == '-') {
    if (strcmp(elem + 1, "*") == 0) {
      while (s->plugins) unlink_plugin(s, s->plugins->name);
    } else {
      unlink_plugin(s, elem + 1);
    }
    return 0;
  }
  if (elem[0] == '+') { front = 1; elem++; }
  if (!*elem) return 0;
  struct plugin* p = unlink_plugin(s, elem);
  if (!p) {
    const response* r = load_plugin(&p, elem);
    if (r) return r;
    s->flags |= p->flags;
  }
  if (front) {
    p->next = s->plugins;
    s->plugins = p;
  } else {
    struct plugin** pp = &s->plugins;
    while (*pp) pp = &(*pp)->next;
    *pp = p;
  }
  return 0;
}

const response* plugins_apply(struct session* s, const char* list)
{
  str elem = {0, 0, 0};
  const response* r = 0;
  while (list && !r) {
    const char* colon = strchr(list, ':');
    size_t n = colon ? (size_t)(colon - list) : strlen(list);
    if (n > 0) {
      if (!str_copyb(&elem, list, (unsigned)n)) { r = &resp_oom; break; }
      r = apply_one(s, elem.s);
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

int commands_build(struct session* s)
{
  int n = count_cmds(s->backend ? s->backend->commands : 0);
  for (struct plugin* p = s->plugins; p; p = p->next) n += count_cmds(p->commands);
  struct command* all = calloc((size_t)n + 1, sizeof *all);
  if (!all) return -1;
  int k = 0;
  if (s->backend)
    for (int i = 0; i < count_cmds(s->backend->commands); i++) all[k++] = s->backend->commands[i];
  for (struct plugin* p = s->plugins; p; p = p->next)
    for (int i = 0; i < count_cmds(p->commands); i++) all[k++] = p->commands[i];
  s->commands = all;
  return 0;
}

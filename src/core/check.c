/* check.c -- `mailfront --check PROTOCOL BACKEND [PLUGINS...]`: check a
 * configuration without serving a session (what `nginx -t` is to nginx).
 *
 * With the environment the real service would have, it loads the protocol,
 * the back end and every plugin (each element of the arguments and of
 * $PLUGINS separately, so that every bad name is reported), then runs, in a
 * dry-run session that never reads or writes the client streams:
 *   - each module's optional check hook, an exported function
 *       const response* mailfront_check(void);
 *     (NULL = nothing to report; the module logs details such as file and
 *     line itself, on stderr), for modules that read their files lazily;
 *   - each plugin's init hook, then the back end's: the hooks that read the
 *     rule, pattern, cdb and control files the environment names and log
 *     the file and line of a problem;
 *   - the TLS credentials when $TLS_CERTFILE is set (tls/tlscheck.c).
 * Every problem is one line "mailfront --check: ..." on stderr after the
 * module's own log lines; the last line is the verdict.  Returns the exit
 * status: 0 nothing found, 1 problems, 100 usage, 111 out of memory.
 * Nothing here exits; the caller (main) does. */
#include "core/check.h"
#include "core/modules.h"
#include "lib/confcheck.h"
#include "tls/tlscheck.h"
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef const response* (*check_fn)(void);

struct check
{
  struct mf_config cfg;      /* the modules, loaded one by one */
  struct session s;          /* the dry-run session the init hooks see */
  struct confcheck found;    /* the problems, each one line on stderr */
};

static void problem(struct check* c, const char* what, const char* detail)
{
  confcheck_problem(&c->found, what, detail);
}

/* A hook's reply counts as a problem from 400 up (the start-up refusal). */
static void hook_reply(struct check* c, const char* what, const response* r)
{
  if (!r || r->number < 400) return;
  char code[16];
  snprintf(code, sizeof code, "%u ", r->number);
  str m = {0, 0, 0};
  if (!str_copys(&m, code) || !str_cats(&m, r->message ? r->message : "")) { problem(c, what, "out of memory"); return; }
  problem(c, what, m.s);
  str_free(&m);
}

static const char* module_dir(void)
{
  const char* dir = getenv("MODULE_PATH");
  return dir && *dir ? dir : MODULE_DIR;
}

/* The optional check hook of TYPE-NAME.so, already loaded by modules.c
 * (RTLD_NOLOAD: never loads anything new).  Built-in plugins have none. */
static check_fn module_check_hook(const char* type, const char* name)
{
  str path = {0, 0, 0};
  check_fn f = 0;
  if (str_cat3s(&path, module_dir(), "/", type) && str_cat3s(&path, "-", name, ".so")) {
    void* h = dlopen(path.s, RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
    if (h) {
      *(void**)&f = dlsym(h, "mailfront_check");
      dlclose(h);   /* drops only the reference taken here */
    }
  }
  str_free(&path);
  return f;
}

static void run_module_check(struct check* c, const char* type, const char* name)
{
  check_fn f = module_check_hook(type, name);
  if (!f) return;
  str what = {0, 0, 0};
  if (str_cat3s(&what, type, " ", name)) hook_reply(c, what.s, f());
  str_free(&what);
}

/* One plugin list (argument or $PLUGINS), element by element. */
static void apply_list(struct check* c, const char* origin, const char* list)
{
  str elem = {0, 0, 0}, what = {0, 0, 0};
  while (list) {
    const char* colon = strchr(list, ':');
    size_t n = colon ? (size_t)(colon - list) : strlen(list);
    if (n > 0 && str_copyb(&elem, list, (unsigned)n)) {
      const response* r = plugins_apply(&c->cfg, getenv("MODULE_PATH"), elem.s);
      if (r && str_cat3s(&what, origin, " '", elem.s) && str_cats(&what, "'")) hook_reply(c, what.s, r);
      what.len = 0;
    }
    list = colon ? colon + 1 : 0;
  }
  str_free(&elem);
  str_free(&what);
}

static void check_module_dir(struct check* c)
{
  struct stat st;
  const char* dir = module_dir();
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) problem(c, "module directory is missing", dir);
}

int check_main(int argc, char** argv)
{
  if (argc < 3) {
    fprintf(stderr, "usage: mailfront --check PROTOCOL BACKEND [PLUGINS...]\n");
    return 100;
  }
  struct check c;
  memset(&c, 0, sizeof c);
  c.found.who = "mailfront --check";
  c.found.getenv_fn = session_getenv;
  check_module_dir(&c);

  const char* mp = getenv("MODULE_PATH");
  const response* r = module_load_protocol(&c.cfg.protocol, mp, argv[1], &c.cfg.err);
  if (r) hook_reply(&c, "protocol", r);
  else run_module_check(&c, "protocol", argv[1]);
  r = module_load_backend(&c.cfg.backend, mp, argv[2], &c.cfg.err);
  if (r) hook_reply(&c, "backend", r);
  for (int i = 3; i < argc; i++) apply_list(&c, "plugin", argv[i]);
  apply_list(&c, "$PLUGINS element", getenv("PLUGINS"));

  /* Dry run in a session without client streams: module check hooks, then the init
   * hooks in the driver's order. */
  if (session_init(&c.s, &c.cfg, -1, -1, 0) < 0) { fprintf(stderr, "mailfront --check: out of memory\n"); return 111; }
  str what = {0, 0, 0};
  const response* opened = session_contexts_open(&c.s);
  if (opened) hook_reply(&c, "per-session contexts", opened);
  for (unsigned i = 0; !opened && i < c.cfg.plugins.n; i++) {
    const struct plugin* p = c.cfg.plugins.v[i].p;
    const char* name = c.cfg.plugins.v[i].name;
    run_module_check(&c, "plugin", name);
    if (p->init && str_copys(&what, "plugin ") && str_cats(&what, name)) hook_reply(&c, what.s, p->init());
  }
  if (c.cfg.backend && !opened) {
    run_module_check(&c, "backend", argv[2]);
    if (c.cfg.backend->init && str_copys(&what, "backend ") && str_cats(&what, argv[2]))
      hook_reply(&c, what.s, c.cfg.backend->init());
  }
  str_free(&what);
  tls_check(&c.found);

  int status = confcheck_verdict(&c.found);
  session_contexts_close(&c.s);
  session_free(&c.s);
  plugins_free(&c.cfg.plugins);
  str_free(&c.cfg.err.text);
  return status;
}

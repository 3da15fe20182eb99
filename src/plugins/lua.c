/* plugin-lua -- runs the hooks of a Lua script (plugins.md "lua";
 * compat-checklist 57).  Built against Lua 5.4 (the reference used 5.1;
 * scripts that use only the registered functions behave the same).
 *
 * init: $LUA_SCRIPT (session lookup) names the script; unset -> every hook
 * passes.  The script runs in a bare state: no standard library, only the
 * functions of `lua_functions[]` as globals.  Text chunks only (a
 * precompiled binary chunk is refused as a load error: bytecode is not
 * verified by Lua and could crash the process).  The chunk's return values
 * are the init response.
 *
 * Hooks call the global function of the same name if it is a function:
 * reset(), helo(host, caps), sender(addr, params), recipient(addr, params),
 * data_start(fd), data_block(bytes), message_end(fd).  Strings are passed
 * by value.  Result: (number, message); 0/nil/non-number -> pass; message
 * nil/empty -> OK / Deferred / Rejected by class.  The number is
 * truncated to an integer; one outside 200..599 is a script error (the
 * reference sent it as is, e.g. `1234 huge`).  Errors (raised, or a run
 * that outlives the session deadline, checked every LUA_HOOK_COUNT
 * instructions) log `Lua error: CODE (MESSAGE)` and give 451 4.3.0
 * Internal error.
 *
 * Memory: the Lua state lives from init to the end of the session (closed
 * by session_close) and may hold at most $LUA_MAXMEM bytes (default
 * 64 MiB; more is a Lua memory error, so a 451, never an abort).  Every
 * call into Lua that may allocate runs in protected mode.  The text of
 * the last response lives in the session's `text` until the next hook
 * call.  State: version 4; the state, its memory count and the reply are
 * the session's context (session_open/session_close), so each session of
 * a process runs the script in a fresh state of its own: no global of
 * one session's script is seen by the next. */
#include "lib/setting.h"
#include <mailfront/mailfront.h>
#include <lua5.4/lua.h>
#include <lua5.4/lauxlib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LUA_HOOK_COUNT 100000
#define LUA_DEFAULT_MAXMEM (64u * 1024u * 1024u)

struct lua_plugin
{
  lua_State* L;
  size_t mem_used, mem_limit;
  str text;              /* message of the last response */
  response resp;
};

extern struct plugin plugin;

static const response* h_open(void** ctx)
{
  *ctx = calloc(1, sizeof(struct lua_plugin));
  return *ctx ? 0 : &resp_oom;
}

static void h_close(void* ctx)
{
  struct lua_plugin* lp = ctx;
  if (!lp) return;
  if (lp->L) lua_close(lp->L);
  str_free(&lp->text);
  free(lp);
}

/* ---- functions registered for scripts ---- */

static int f_msg(lua_State* L)
{
  int n = lua_gettop(L);
  for (int i = 1; i <= n; i++) msg1(luaL_tolstring(L, i, 0)), lua_pop(L, 1);
  return 0;
}

static int lookup_each(lua_State* L, const char* (*get)(const char*))
{
  int n = lua_gettop(L);
  luaL_checkstack(L, n, "too many arguments");
  for (int i = 1; i <= n; i++) {
    const char* v = get(luaL_checkstring(L, i));
    if (v) lua_pushstring(L, v);
    else lua_pushnil(L);
  }
  return n;
}
static int f_getenv(lua_State* L) { return lookup_each(L, session_getenv); }
static int f_getstr(lua_State* L) { return lookup_each(L, session_getstr); }

static int f_putenv(lua_State* L)
{
  int n = lua_gettop(L);
  for (int i = 1; i <= n; i++)
    if (!session_putenv(luaL_checkstring(L, i))) return luaL_error(L, "putenv failed");
  return 0;
}

static int del_each(lua_State* L, void (*del)(const char*))
{
  int n = lua_gettop(L);
  for (int i = 1; i <= n; i++) luaL_checkstring(L, i);
  for (int i = 1; i <= n; i++) del(lua_tostring(L, i));
  return 0;
}
static int f_delnum(lua_State* L) { return del_each(L, session_delnum); }
static int f_delstr(lua_State* L) { return del_each(L, session_delstr); }

static void need_args(lua_State* L, int n, const char* name)
{
  if (lua_gettop(L) != n) luaL_error(L, "Incorrect number of parameters to %s", name);
}

static unsigned long to_ulong(lua_State* L, int i)
{
  lua_Number v = luaL_checknumber(L, i);
  if (!(v >= 0)) return 0;
  if (v >= 18446744073709551615.0) return (unsigned long)-1;
  return (unsigned long)v;
}

static int f_setenv(lua_State* L)
{
  need_args(L, 3, "setenv");
  const char* name = luaL_checkstring(L, 1);
  const char* value = luaL_checkstring(L, 2);
  int over = lua_isnumber(L, 3) ? lua_tonumber(L, 3) != 0 : lua_toboolean(L, 3);
  if (!session_setenv(name, value, over)) return luaL_error(L, "setenv failed");
  return 0;
}

static int f_getnum(lua_State* L)
{
  need_args(L, 2, "getnum");
  unsigned long v = session_getnum(luaL_checkstring(L, 1), to_ulong(L, 2));
  if (v <= (unsigned long)LUA_MAXINTEGER) lua_pushinteger(L, (lua_Integer)v);
  else lua_pushnumber(L, (lua_Number)v);
  return 1;
}

static int f_setnum(lua_State* L)
{
  need_args(L, 2, "setnum");
  session_setnum(luaL_checkstring(L, 1), to_ulong(L, 2));
  return 0;
}

static int f_setstr(lua_State* L)
{
  need_args(L, 2, "setstr");
  session_setstr(luaL_checkstring(L, 1), luaL_checkstring(L, 2));
  return 0;
}

static const luaL_Reg lua_functions[] = {
  { "msg", f_msg },       { "getenv", f_getenv }, { "getstr", f_getstr }, { "putenv", f_putenv },
  { "delnum", f_delnum }, { "delstr", f_delstr }, { "setenv", f_setenv }, { "getnum", f_getnum },
  { "setnum", f_setnum }, { "setstr", f_setstr }, { 0, 0 },
};

/* ---- calling into the script ---- */

static void deadline_hook(lua_State* L, lua_Debug* ar)
{
  (void)ar;
  if (session_expired()) luaL_error(L, "session time limit reached");
}

static const response* lua_failed(lua_State* L, int code)
{
  char num[16];
  snprintf(num, sizeof num, "%d", code);
  const char* m = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "error object is not a string";
  str line = { 0, 0, 0 };
  if (str_cat3s(&line, "Lua error: ", num, " (") && str_cat2s(&line, m, ")")) msg1(line.s);
  else msg1("Lua error");
  str_free(&line);
  lua_settop(L, 0);
  return &resp_internal;
}

/* Turns the (number, message) pair at the top of the stack into a response
 * (its text kept in lp). */
static const response* lua_result(struct lua_plugin* lp, lua_State* L)
{
  int isnum = 0;
  lua_Number n = lua_tonumberx(L, -2, &isnum);
  char nbuf[64];
  const char* m = 0;
  if (lua_type(L, -1) == LUA_TSTRING) m = lua_tostring(L, -1);
  else if (lua_isinteger(L, -1)) snprintf(nbuf, sizeof nbuf, "%lld", (long long)lua_tointeger(L, -1)), m = nbuf;
  else if (lua_type(L, -1) == LUA_TNUMBER) snprintf(nbuf, sizeof nbuf, "%.14g", (double)lua_tonumber(L, -1)), m = nbuf;
  const response* r = 0;
  if (isnum && n > -1 && n < 1) n = 0;         /* truncated like the reference */
  if (!isnum || n == 0) r = 0;
  else if (!(n >= 200 && n < 600)) {
    msg1("Lua error: response number out of range 200..599");
    r = &resp_internal;
  } else {
    unsigned code = (unsigned)n;
    const char* dflt = code < 400 ? "OK" : code < 500 ? "Deferred" : "Rejected";
    if (!str_copys(&lp->text, m && *m ? m : dflt)) r = &resp_oom;
    else {
      lp->resp.number = code;
      lp->resp.message = lp->text.s;
      r = &lp->resp;
    }
  }
  lua_settop(L, 0);
  return r;
}

/* One hook call.  Everything that may allocate (looking up the function,
 * pushing the arguments) runs inside lua_pcall through call_hook(), so an
 * out-of-memory error is caught like any other instead of aborting. */
enum argkind { A_NONE, A_STR2, A_FD, A_BYTES };
struct hook_call
{
  const char* name;
  enum argkind kind;
  const char *s1, *s2;
  size_t l1, l2;
  int fd;
};

static const char* sbytes(const str* s) { return s && s->s ? s->s : ""; }
static size_t slen(const str* s) { return s ? s->len : 0; }

static int call_hook(lua_State* L)
{
  const struct hook_call* c = lua_touserdata(L, 1);
  lua_settop(L, 0);
  if (lua_getglobal(L, c->name) != LUA_TFUNCTION) return 0;   /* not defined: pass */
  int nargs = 0;
  switch (c->kind) {
  case A_NONE: break;
  case A_STR2: lua_pushlstring(L, c->s1, c->l1); lua_pushlstring(L, c->s2, c->l2); nargs = 2; break;
  case A_FD: lua_pushinteger(L, c->fd); nargs = 1; break;
  case A_BYTES: lua_pushlstring(L, c->s1, c->l1); nargs = 1; break;
  }
  lua_call(L, nargs, 2);
  return 2;
}

static const response* run_hook(const struct hook_call* c)
{
  struct lua_plugin* lp = plugin_context(&plugin);
  if (!lp || !lp->L) return 0;
  lua_State* L = lp->L;
  lua_settop(L, 0);
  lua_pushcfunction(L, call_hook);              /* light C function: no allocation */
  lua_pushlightuserdata(L, (void*)c);
  int rc = lua_pcall(L, 1, 2, 0);
  if (rc != LUA_OK) return lua_failed(L, rc);
  return lua_result(lp, L);
}

static const response* h_reset(void)
{
  struct hook_call c = { "reset", A_NONE, 0, 0, 0, 0, -1 };
  return run_hook(&c);
}

static const response* h_str2(const char* name, str* a, str* b)
{
  struct hook_call c = { name, A_STR2, sbytes(a), sbytes(b), slen(a), slen(b), -1 };
  return run_hook(&c);
}
static const response* h_helo(str* host, str* caps) { return h_str2("helo", host, caps); }
static const response* h_sender(str* a, str* p) { return h_str2("sender", a, p); }
static const response* h_recipient(str* a, str* p) { return h_str2("recipient", a, p); }

static const response* h_fd(const char* name, int fd)
{
  struct hook_call c = { name, A_FD, 0, 0, 0, 0, fd };
  return run_hook(&c);
}
static const response* h_data_start(int fd) { return h_fd("data_start", fd); }
static const response* h_message_end(int fd) { return h_fd("message_end", fd); }

static const response* h_data_block(const char* bytes, unsigned long len)
{
  struct hook_call c = { "data_block", A_BYTES, bytes, 0, len, 0, -1 };
  return run_hook(&c);
}

/* ---- the state ---- */

/* Allocator with the $LUA_MAXMEM cap: growth beyond it fails (a Lua
 * "not enough memory" error), shrinking always succeeds. */
static void* capped_alloc(void* ud, void* ptr, size_t osize, size_t nsize)
{
  struct lua_plugin* p = ud;
  size_t old = ptr ? osize : 0;
  if (nsize == 0) {
    free(ptr);
    p->mem_used -= old;
    return 0;
  }
  if (nsize > old && nsize - old > p->mem_limit - p->mem_used) return 0;
  void* q = realloc(ptr, nsize);
  if (q) p->mem_used = p->mem_used - old + nsize;
  return q;
}

/* $LUA_MAXMEM by lib/setting.h's rule (0 or bad: the default). */
static size_t mem_limit(void)
{
  static const struct env_number spec = { LUA_DEFAULT_MAXMEM, 1, SIZE_MAX, 0 };
  return (size_t)env_setting("LUA_MAXMEM", &spec);
}

static int register_functions(lua_State* L)
{
  for (const luaL_Reg* f = lua_functions; f->name; f++) {
    lua_pushcfunction(L, f->func);
    lua_setglobal(L, f->name);
  }
  return 0;
}

static const response* h_init(void)
{
  struct lua_plugin* lp = plugin_context(&plugin);
  if (!lp) return &resp_internal;
  const char* file = session_getenv("LUA_SCRIPT");
  if (!file) return 0;
  lp->mem_used = 0;
  lp->mem_limit = mem_limit();
  lua_State* L = lua_newstate(capped_alloc, lp);
  if (!L) return &resp_oom;
  lua_pushcfunction(L, register_functions);
  if (lua_pcall(L, 0, 0, 0) != LUA_OK) { lua_close(L); return &resp_oom; }
  lua_sethook(L, deadline_hook, LUA_MASKCOUNT, LUA_HOOK_COUNT);
  int rc = luaL_loadfilex(L, file, "t");
  if (rc != LUA_OK) {
    const char* m = lua_tostring(L, -1);
    if (rc == LUA_ERRMEM) { lua_close(L); return &resp_oom; }
    if (rc == LUA_ERRFILE) msg3("Cannot read \"", file, "\"");
    else if (rc == LUA_ERRSYNTAX) msg3("Syntax error in \"", file, "\"");
    if (m) msg2("Lua: ", m);
    lua_close(L);
    return &resp_internal;
  }
  lp->L = L;
  rc = lua_pcall(L, 0, 2, 0);
  if (rc != LUA_OK) return lua_failed(L, rc);
  return lua_result(lp, L);
}

struct plugin plugin = {
  .version = PLUGIN_VERSION_4,
  .init = h_init,
  .reset = h_reset,
  .helo = h_helo,
  .sender = h_sender,
  .recipient = h_recipient,
  .data_start = h_data_start,
  .data_block = h_data_block,
  .message_end = h_message_end,
  .session_open = h_open,
  .session_close = h_close,
};

/* plugin-patterns -- rejects messages with a line matching a pattern of
 * the file named by $PATTERNS (plugins.md "patterns").
 *
 * The file $PATTERNS names when the modules are loaded is read once (load
 * hook: at mailfront's start, or in mailfrontd's parent, whose children
 * never read it; SIGHUP to mailfrontd re-reads it, a file that fails to
 * load keeps the old patterns and logs why).  data_start uses that set
 * when the message's $PATTERNS (session lookup: a rule may change it)
 * names the same file; otherwise it reads the file named for the
 * message; when it cannot be read a warning is logged and the patterns
 * of the previous message stay in effect.  data_block splits the data at LF and keeps at
 * most $PATTERNS_LINEMAX (default 256) bytes of the current line: the rest
 * of a longer line is skipped, never stored.  Each complete non-empty line
 * is matched (whole-line, case-sensitive glob, glob.h) by the patterns
 * that apply in the current state (header / first line after a blank /
 * normal); the first match answers `554 TEXT`.  A final line without LF is
 * not checked.  State: version 4.  The preloaded set (`preloaded`, file
 * scope) is written only by load and reload, between sessions; during
 * sessions it is read-only.  Everything else (the set read for another
 * file, the set in use, the line being matched) is the session's context
 * (session_open/session_close), so a file read for one session, or its
 * patterns kept after a failed read, never reach the next session.  The
 * pattern texts and reply texts are owned by the arenas of the sets,
 * which are replaced only by the next successful read, so a returned
 * reply stays valid to the end of the message. */
#include "lib/setting.h"
#include <mailfront/mailfront.h>
#include "plugins/mailrules/glob.h"
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_TEXT "This message contains prohibited content"
#define DEFAULT_LINEMAX 256

enum scope { SCOPE_ANY, SCOPE_HEADER, SCOPE_AFTER_BLANK };
enum state { ST_HEADER, ST_AFTER_BLANK, ST_NORMAL };

struct pat {
  size_t off, len;    /* pattern text in the arena */
  size_t text;        /* reply text in the arena (NUL-terminated) */
  enum scope scope;
};

struct patset {
  struct pat* v;
  size_t n, cap;
  str arena;
};

/* Load-time state: read-only while sessions run. */
struct preloaded {
  struct patset set;          /* read by load/reload */
  char* path;                 /* its file; NULL: nothing preloaded */
};
static struct preloaded pre;

/* Per-session state. */
struct patterns {
  struct patset own;          /* read by data_start for another file */
  const struct patset* set;   /* in use; NULL: none yet */
  size_t linemax;
  str line;           /* at most linemax bytes of the current line */
  size_t line_total;  /* bytes of the current line seen, kept or not */
  enum state state;
  int matched;
  response reply;
};

extern struct plugin plugin;

static void patset_free(struct patset* s)
{
  free(s->v);
  str_free(&s->arena);
  memset(s, 0, sizeof *s);
}

static int arena_put(str* a, const char* b, size_t len, size_t* off)
{
  if (len > STR_MAX - 1 - a->len) return 0;
  *off = a->len;
  return str_catb(a, b, (unsigned)len) && str_catc(a, 0);
}

static int patset_push(struct patset* s, const struct pat* p)
{
  if (s->n == s->cap) {
    size_t n = s->cap ? s->cap * 2 : 16;
    struct pat* v = realloc(s->v, n * sizeof *v);
    if (!v) return 0;
    s->v = v;
    s->cap = n;
  }
  s->v[s->n++] = *p;
  return 1;
}

/* Parse one line (trailing white space already removed, len > 0). */
static int parse_line(struct patset* s, const char* b, size_t len, size_t* text)
{
  struct pat p;
  switch (b[0]) {
  case '#': return 1;
  case '=': return arena_put(&s->arena, b + 1, len - 1, text);
  case ':': p.scope = SCOPE_HEADER; break;
  case '\\': p.scope = SCOPE_AFTER_BLANK; break;
  default: p.scope = SCOPE_ANY; break;
  }
  p.text = *text;
  p.len = len - 1;
  return arena_put(&s->arena, b + 1, len - 1, &p.off) && patset_push(s, &p);
}

/* 0 on success, else an errno value (ENOMEM when memory ran out). */
static int patset_read(struct patset* s, const char* path)
{
  memset(s, 0, sizeof *s);
  FILE* f = fopen(path, "re");
  if (!f) return errno ? errno : EIO;
  size_t text = 0;
  int err = arena_put(&s->arena, DEFAULT_TEXT, sizeof DEFAULT_TEXT - 1, &text) ? 0 : ENOMEM;
  char* line = 0;
  size_t cap = 0;
  ssize_t got;
  while (!err && (got = getline(&line, &cap, f)) >= 0) {
    size_t len = (size_t)got;
    while (len > 0 && isspace((unsigned char)line[len - 1])) len--;
    if (len && !parse_line(s, line, len, &text)) err = ENOMEM;
  }
  if (!err && ferror(f)) err = errno ? errno : EIO;
  free(line);
  fclose(f);
  if (err) patset_free(s);
  return err;
}

/* $PATTERNS_LINEMAX by lib/setting.h's rule (0 or bad: the default). */
static size_t linemax(void)
{
  static const struct env_number spec = { DEFAULT_LINEMAX, 1, STR_MAX, 0 };
  return (size_t)env_setting("PATTERNS_LINEMAX", &spec);
}

/* $PATTERNS of the process into the preloaded set.  At load a failure
 * is left to data_start (which warns per message, as without
 * preloading); at reload it keeps the old set and is logged here. */
static RESPONSE(reload_failed, 451, "4.3.0 patterns: the new $PATTERNS file did not load, the old patterns stay");

static const response* preload(int reload)
{
  const char* path = getenv("PATTERNS");
  if (!path || !*path) {
    patset_free(&pre.set);
    free(pre.path);
    pre.path = 0;
    return 0;
  }
  struct patset fresh;
  char* copy = strdup(path);
  int err = copy ? patset_read(&fresh, path) : ENOMEM;
  if (err) {
    if (reload) {
      str w = {0, 0, 0};
      if (str_cat3s(&w, "patterns: reload: ", path, ": ") && str_cat2s(&w, strerror(err), " (the old patterns stay)"))
        warn1(w.s);
      str_free(&w);
    }
    free(copy);
    return reload ? &resp_reload_failed : 0;
  }
  patset_free(&pre.set);
  free(pre.path);
  pre.set = fresh;
  pre.path = copy;
  return 0;
}

static const response* pt_load(void) { return preload(0); }
static const response* pt_reload(void) { return preload(1); }

static const response* pt_open(void** ctx)
{
  *ctx = calloc(1, sizeof(struct patterns));
  return *ctx ? 0 : &resp_oom;
}

static void pt_close(void* ctx)
{
  struct patterns* pt = ctx;
  if (!pt) return;
  patset_free(&pt->own);
  str_free(&pt->line);
  free(pt);
}

/* data_start of the session whose state is pt (fuzz/patterns.c calls it
 * directly). */
static const response* patterns_start(struct patterns* pt)
{
  const char* path = session_getenv("PATTERNS");
  pt->line.len = 0;
  pt->line_total = 0;
  pt->state = ST_HEADER;
  pt->matched = 0;
  pt->linemax = linemax();
  if (!path || !*path) return 0;
  if (pre.path && strcmp(path, pre.path) == 0) {
    pt->set = &pre.set;
    return 0;
  }
  struct patset fresh;
  int err = patset_read(&fresh, path);
  if (err) {
    str w = {0, 0, 0};
    if (str_cat3s(&w, "Could not read patterns file '", path, "': ") && str_cats(&w, strerror(err)))
      warn1(w.s);
    str_free(&w);
    return 0;
  }
  patset_free(&pt->own);
  pt->own = fresh;
  pt->set = &pt->own;
  return 0;
}

static const response* pt_data_start(int fd)
{
  (void)fd;
  struct patterns* pt = plugin_context(&plugin);
  return pt ? patterns_start(pt) : &resp_internal;
}

static int applies(enum scope sc, enum state st)
{
  switch (sc) {
  case SCOPE_ANY: return 1;
  case SCOPE_HEADER: return st == ST_HEADER;
  case SCOPE_AFTER_BLANK: return st == ST_AFTER_BLANK;
  }
  return 0;
}

/* A complete line: b[0..len) (already truncated to linemax). */
static const response* check_line(struct patterns* pt, const char* b, size_t len, size_t total)
{
  if (total == 0) {
    pt->state = ST_AFTER_BLANK;
    return 0;
  }
  enum state st = pt->state;
  if (st == ST_AFTER_BLANK) pt->state = ST_NORMAL;
  const char* a = pt->set->arena.s;
  for (size_t i = 0; i < pt->set->n; i++) {
    const struct pat* p = &pt->set->v[i];
    if (applies(p->scope, st) && glob_match(a + p->off, p->len, b, len)) {
      pt->matched = 1;
      pt->reply.number = 554;
      pt->reply.message = a + p->text;
      return &pt->reply;
    }
  }
  return 0;
}

/* data_block of the session whose state is pt (fuzz/patterns.c). */
static const response* patterns_feed(struct patterns* pt, const char* bytes, unsigned long len)
{
  if (pt->matched || !pt->set || !pt->set->n) return 0;
  while (len > 0) {
    const char* lf = memchr(bytes, '\n', len);
    size_t n = lf ? (size_t)(lf - bytes) : len;
    size_t room = pt->linemax > pt->line.len ? pt->linemax - pt->line.len : 0;
    size_t keep = n < room ? n : room;
    if (keep && !str_catb(&pt->line, bytes, (unsigned)keep)) return &resp_oom;
    pt->line_total += n;
    if (!lf) break;
    const response* r = check_line(pt, pt->line.s ? pt->line.s : "", pt->line.len, pt->line_total);
    pt->line.len = 0;
    pt->line_total = 0;
    if (r) return r;
    bytes = lf + 1;
    len -= n + 1;
  }
  return 0;
}

static const response* pt_data_block(const char* bytes, unsigned long len)
{
  struct patterns* pt = plugin_context(&plugin);
  return pt ? patterns_feed(pt, bytes, len) : &resp_internal;
}

/* The --check hook (mailfront --check): the file $PATTERNS names must be
 * readable, since data_start would otherwise only warn at every message. */
static RESPONSE(unreadable, 451, "4.3.0 Could not read the $PATTERNS file");
const response* mailfront_check(void);
const response* mailfront_check(void)
{
  const char* path = session_getenv("PATTERNS");
  if (!path || !*path) return 0;
  struct patset s;
  int err = patset_read(&s, path);
  if (!err) { patset_free(&s); return 0; }
  str w = {0, 0, 0};
  if (str_cat3s(&w, "patterns: ", path, ": ") && str_cats(&w, strerror(err))) warn1(w.s);
  str_free(&w);
  return &resp_unreadable;
}

struct plugin plugin = {
  .version = PLUGIN_VERSION_4,
  .load = pt_load,
  .reload = pt_reload,
  .data_start = pt_data_start,
  .data_block = pt_data_block,
  .session_open = pt_open,
  .session_close = pt_close,
};

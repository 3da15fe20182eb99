/* parse.c -- reads a mail rules file into a struct ruleset (rules.h).
 *
 * Contract: mailrules.md "File syntax", "Rule codes", "Patterns".  Public:
 * ruleset_load, ruleset_parse, ruleset_free, rules_unescape, textset_has.
 * Lines of any length are read with getline; all strings go to the
 * ruleset's arena; list files referenced by several rules are opened once.
 * Errors are returned as enum rules_error with a "FILE:LINE: text"
 * description; nothing here logs, replies or exits.  Deliberate
 * differences from the 2.12 reference: an octal escape yields the byte it
 * names (not NUL); a `\` ending a line is a literal `\`; a missing or
 * unreadable cdb file is an error (the reference matched every address). */
#include "rules.h"
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---------- arena ---------- */

/* Append b[0..len) plus a NUL; *off receives its offset. */
static int arena_add(str* a, const char* b, size_t len, uint32_t* off)
{
  if (len > STR_MAX - 1 - a->len) return 0;
  *off = a->len;
  return str_catb(a, b, (unsigned)len) && str_catc(a, 0);
}

static void lower(char* s, size_t len)
{
  for (size_t i = 0; i < len; i++) s[i] = (char)tolower((unsigned char)s[i]);
}

/* ---------- escapes ---------- */

int rules_unescape(str* out, const char* b, size_t len)
{
  for (size_t i = 0; i < len; i++) {
    const char* bs = memchr(b + i, '\\', len - i);
    size_t run = bs ? (size_t)(bs - (b + i)) : len - i;
    if (run) {   /* copy the bytes up to the next backslash in one go */
      if (!str_catb(out, b + i, (unsigned)run)) return 0;
      i += run;
      if (i >= len) break;
    }
    char c = b[i];
    if (c != '\\' || i + 1 >= len) {   /* a final lone '\' stays literal */
      if (!str_catc(out, c)) return 0;
      continue;
    }
    c = b[++i];
    if (c >= '0' && c <= '7') {
      /* up to three digits; like the reference, 8 is accepted after the first */
      unsigned v = (unsigned)(c - '0');
      for (int n = 1; n < 3 && i + 1 < len && b[i + 1] >= '0' && b[i + 1] <= '8'; n++)
        v = v * 8 + (unsigned)(b[++i] - '0');
      c = (char)(v & 0xff);
    } else if (c == 'n') {
      c = '\n';
    }
    if (!str_catc(out, c)) return 0;
  }
  return 1;
}

/* End of the field starting at b[i] (index of the unescaped sep or len). */
static size_t field_end(const char* b, size_t i, size_t len, char sep)
{
  while (i < len && b[i] != sep) i += (b[i] == '\\' && i + 1 < len) ? 2 : 1;
  return i < len ? i : len;
}

/* ---------- text lists ---------- */

static uint64_t hash(const char* s, size_t len)
{
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < len; i++) { h ^= (unsigned char)s[i]; h *= 1099511628211ull; }
  return h;
}

static int slot_is(const struct textset* t, uint32_t slot, const char* key, size_t klen)
{
  const char* e = t->arena.s + slot - 1;
  return strlen(e) == klen && memcmp(e, key, klen) == 0;
}

int textset_has(const struct textset* t, const char* key, size_t klen)
{
  if (!t->nslots || memchr(key, 0, klen)) return 0;
  size_t mask = t->nslots - 1;
  for (size_t i = hash(key, klen) & mask;; i = (i + 1) & mask) {
    uint32_t slot = t->slots[i];
    if (!slot) return 0;
    if (slot_is(t, slot, key, klen)) return 1;
  }
}

static void place(uint32_t* slots, size_t nslots, uint64_t h, uint32_t v)
{
  size_t mask = nslots - 1;
  size_t i = h & mask;
  while (slots[i]) i = (i + 1) & mask;
  slots[i] = v;
}

static int textset_add(struct textset* t, const char* key, size_t klen)
{
  if (textset_has(t, key, klen)) return 1;
  if ((t->count + 1) * 2 > t->nslots) {
    size_t n = t->nslots ? t->nslots * 2 : 64;
    uint32_t* s = calloc(n, sizeof *s);
    if (!s) return 0;
    for (size_t i = 0; i < t->nslots; i++)
      if (t->slots[i]) {
        const char* e = t->arena.s + t->slots[i] - 1;
        place(s, n, hash(e, strlen(e)), t->slots[i]);
      }
    free(t->slots);
    t->slots = s;
    t->nslots = n;
  }
  uint32_t off;
  if (!arena_add(&t->arena, key, klen, &off) || off >= UINT32_MAX) return 0;
  place(t->slots, t->nslots, hash(key, klen), off + 1);
  t->count++;
  return 1;
}

static int is_space(char c) { return isspace((unsigned char)c) != 0; }

/* Strip leading and trailing white space of b[0..*len); returns the start. */
static char* strip(char* b, size_t* len)
{
  size_t n = *len;
  while (n > 0 && is_space(b[n - 1])) n--;
  size_t i = 0;
  while (i < n && is_space(b[i])) i++;
  *len = n - i;
  return b + i;
}

static enum rules_error load_text(struct textset* t, const char* name)
{
  FILE* f = fopen(name, "re");
  if (!f) return RULES_REFERENCED;
  char* line = 0;
  size_t cap = 0;
  ssize_t got;
  enum rules_error e = RULES_OK;
  while ((got = getline(&line, &cap, f)) >= 0) {
    size_t len = (size_t)got;
    char* s = strip(line, &len);
    if (!len || s[0] == '#') continue;
    lower(s, len);
    if (!textset_add(t, s, len)) { e = RULES_NOMEM; break; }
  }
  if (e == RULES_OK && ferror(f)) e = RULES_REFERENCED;
  free(line);
  fclose(f);
  return e;
}

/* Index of the list named name (opened now if new). */
static enum rules_error list_get(struct ruleset* rs, const char* name, uint32_t* index)
{
  for (size_t i = 0; i < rs->nlists; i++)
    if (strcmp(rs->lists[i].name, name) == 0) { *index = (uint32_t)i; return RULES_OK; }
  if (rs->nlists == rs->caplists) {
    size_t n = rs->caplists ? rs->caplists * 2 : 4;
    struct listfile* v = realloc(rs->lists, n * sizeof *v);
    if (!v) return RULES_NOMEM;
    rs->lists = v;
    rs->caplists = n;
  }
  struct listfile* l = &rs->lists[rs->nlists];
  memset(l, 0, sizeof *l);
  l->fd = -1;
  size_t nlen = strlen(name);
  l->is_cdb = nlen > 4 && strcmp(name + nlen - 4, ".cdb") == 0;
  if (!(l->name = strdup(name))) return RULES_NOMEM;
  rs->nlists++;   /* from here on ruleset_free cleans it up */
  if (l->is_cdb) {
    if ((l->fd = open(name, O_RDONLY | O_CLOEXEC)) < 0) return RULES_REFERENCED;
    if (cdb_init(&l->cdb, l->fd) != 0) {
      close(l->fd);
      l->fd = -1;
      return RULES_REFERENCED;
    }
  } else {
    enum rules_error e = load_text(&l->set, name);
    if (e) return e;
  }
  *index = (uint32_t)(rs->nlists - 1);
  return RULES_OK;
}

/* ---------- rules ---------- */

static int has_wild(const char* s, size_t len)
{
  for (size_t i = 0; i < len; i++)
    if (s[i] == '*' || s[i] == '?' || s[i] == '[') return 1;
  return 0;
}

/* Build a pattern from an unescaped field. */
static enum rules_error make_pattern(struct ruleset* rs, struct pattern* p, str* f)
{
  size_t i = 0;
  memset(p, 0, sizeof *p);
  if (!f->s && !str_copys(f, "")) return RULES_NOMEM;   /* an empty field has no buffer yet */
  while (i < f->len && f->s[i] == '!') { p->negate ^= 1; i++; }
  char* t = f->s + i;
  size_t len = f->len - i;
  if (len > 5 && t[0] == '[' && t[1] == '[' && t[len - 2] == ']' && t[len - 1] == ']') {
    int domain = t[2] == '@';
    t[len - 2] = 0;
    const char* name = t + 2 + domain;
    if (strlen(name) != len - 4 - (size_t)domain) return RULES_REFERENCED;   /* NUL in the name */
    p->kind = domain ? PK_LIST_DOMAIN : PK_LIST_ADDR;
    return list_get(rs, name, &p->off);
  }
  if (len == 1 && t[0] == '*') { p->kind = PK_ANY; return RULES_OK; }
  lower(t, len);
  p->kind = has_wild(t, len) ? PK_GLOB : PK_LITERAL;
  p->len = (uint32_t)len;
  if (p->kind == PK_GLOB) {
    /* Literal head and tail for a cheap pre-check.  The tail is only used
     * without sets, because an unclosed '[' ends a match early. */
    size_t pre = strcspn(t, "*?[");
    p->prefix = (uint16_t)(pre > UINT16_MAX ? UINT16_MAX : pre);
    if (!memchr(t, '[', len)) {
      size_t suf = 0;
      while (suf < len && t[len - 1 - suf] != '*' && t[len - 1 - suf] != '?') suf++;
      p->suffix = (uint16_t)(suf > UINT16_MAX ? UINT16_MAX : suf);
    }
  }
  return arena_add(&rs->arena, t, len, &p->off) ? RULES_OK : RULES_NOMEM;
}

static int all_digits(const char* s, size_t len)
{
  for (size_t i = 0; i < len; i++) if (s[i] < '0' || s[i] > '9') return 0;
  return 1;
}

static uint64_t to_u64(const char* s, size_t len)
{
  uint64_t v = 0;
  for (size_t i = 0; i < len; i++) {
    uint64_t d = (uint64_t)(s[i] - '0');
    v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
  }
  return v;
}

/* Store the ENV field: assignments split at unescaped ',', unescaped,
 * NUL-separated, ending in an empty string. */
static enum rules_error make_env(struct ruleset* rs, const char* b, size_t len, uint32_t* off, str* tmp)
{
  *off = 0;
  if (!len) return RULES_OK;
  size_t start = rs->arena.len;
  for (size_t i = 0; i <= len;) {
    size_t e = field_end(b, i, len, ',');
    tmp->len = 0;
    if (!rules_unescape(tmp, b + i, e - i)) return RULES_NOMEM;
    if (tmp->len && !memchr(tmp->s, 0, tmp->len) && memchr(tmp->s, '=', tmp->len)) {
      uint32_t o;
      if (!arena_add(&rs->arena, tmp->s, tmp->len, &o)) return RULES_NOMEM;
    }
    i = e + 1;
  }
  if (rs->arena.len == start) return RULES_OK;
  if (!str_catc(&rs->arena, 0)) return RULES_NOMEM;
  *off = (uint32_t)start;
  return RULES_OK;
}

static int list_push(struct rulelist* l, const struct rule* r)
{
  if (l->n == l->cap) {
    size_t n = l->cap ? l->cap * 2 : 64;
    struct rule* v = realloc(l->v, n * sizeof *v);
    if (!v) return 0;
    l->v = v;
    l->cap = n;
  }
  l->v[l->n++] = *r;
  return 1;
}

enum section { SEC_NONE, SEC_SENDER, SEC_RECIPIENT };

struct parser {
  struct ruleset* rs;
  enum section section;
  str field[5];
  const char* detail;   /* what went wrong, for the message */
};

static enum rules_error parse_rule(struct parser* ps, const char* b, size_t len)
{
  struct ruleset* rs = ps->rs;
  struct rule r;
  memset(&r, 0, sizeof r);
  r.code = b[0];
  size_t i = 1;
  for (int f = 0; f < 5; f++) {
    ps->field[f].len = 0;
    if (i > len) continue;
    size_t e = field_end(b, i, len, ':');
    if (!rules_unescape(&ps->field[f], b + i, e - i)) return RULES_NOMEM;
    i = e + 1;
  }
  str* fs = ps->field;
  if (!all_digits(fs[3].s, fs[3].len)) { ps->detail = "DATABYTES field is not a number"; return RULES_SYNTAX; }
  r.databytes = to_u64(fs[3].s, fs[3].len);
  int to_sender = ps->section == SEC_SENDER
    || (ps->section == SEC_NONE && fs[1].len == 1 && fs[1].s[0] == '*');
  enum rules_error e;
  ps->detail = "cannot open the referenced file";
  if ((e = make_pattern(rs, &r.sender, &fs[0])) != RULES_OK) return e;
  if ((e = make_pattern(rs, &r.recipient, &fs[1])) != RULES_OK) return e;
  if (fs[2].len && !arena_add(&rs->arena, fs[2].s, fs[2].len, &r.response)) return RULES_NOMEM;
  if (fs[4].len && !arena_add(&rs->arena, fs[4].s, fs[4].len, &r.relay)) return RULES_NOMEM;
  if ((e = make_env(rs, b + (i < len ? i : len), i < len ? len - i : 0, &r.env, &ps->field[0])) != RULES_OK) return e;
  if (rs->arena.len >= UINT32_MAX) return RULES_NOMEM;
  return list_push(to_sender ? &rs->sender : &rs->recipient, &r) ? RULES_OK : RULES_NOMEM;
}

static enum rules_error parse_line(struct parser* ps, char* b, size_t len)
{
  if (b[0] == ':') {
    char c = len > 1 ? b[1] : 0;
    if (c == 's') ps->section = SEC_SENDER;
    else if (c == 'r') ps->section = SEC_RECIPIENT;
    else { ps->detail = "unknown selector (expected :sender or :recipient)"; return RULES_SYNTAX; }
    return RULES_OK;
  }
  if (!strchr("kKdzpn&", b[0]) || b[0] == 0) return RULES_OK;   /* comments and junk */
  return parse_rule(ps, b, len);
}

static void describe(str* why, const char* name, unsigned long line, const char* what)
{
  if (!why) return;
  why->len = 0;
  str_cats(why, name);
  if (line) { str_catc(why, ':'); str_catu(why, line); }
  str_cat2s(why, ": ", what);
}

enum rules_error ruleset_parse(struct ruleset* rs, FILE* f, const char* name, str* why)
{
  memset(rs, 0, sizeof *rs);
  struct parser ps;
  memset(&ps, 0, sizeof ps);
  ps.rs = rs;
  enum rules_error e = RULES_OK;
  uint32_t zero;
  if (!arena_add(&rs->arena, "", 0, &zero)) e = RULES_NOMEM;   /* offset 0 = "" */
  char* line = 0;
  size_t cap = 0;
  unsigned long lineno = 0;
  ssize_t got;
  while (e == RULES_OK && (got = getline(&line, &cap, f)) >= 0) {
    lineno++;
    size_t len = (size_t)got;
    char* s = strip(line, &len);
    if (!len) continue;
    s[len] = 0;
    e = parse_line(&ps, s, len);
  }
  if (e == RULES_OK && ferror(f)) { e = RULES_OPEN; ps.detail = "read error"; lineno = 0; }
  if (e != RULES_OK) {
    const char* what = ps.detail;
    if (e == RULES_NOMEM) what = "out of memory";
    else if (e == RULES_REFERENCED && rs->nlists) {
      str w = {0, 0, 0};
      str_cats(&w, "cannot open referenced file ");
      str_cats(&w, rs->lists[rs->nlists - 1].name);
      if (errno) str_cat2s(&w, ": ", strerror(errno));
      describe(why, name, lineno, w.s ? w.s : "cannot open referenced file");
      str_free(&w);
      what = 0;
    }
    if (what) describe(why, name, lineno, what);
    ruleset_free(rs);
  }
  for (int i = 0; i < 5; i++) str_free(&ps.field[i]);
  free(line);
  return e;
}

enum rules_error ruleset_load(struct ruleset* rs, const char* path, str* why)
{
  memset(rs, 0, sizeof *rs);
  FILE* f = fopen(path, "re");
  if (!f) {
    describe(why, path, 0, strerror(errno));
    return RULES_OPEN;
  }
  enum rules_error e = ruleset_parse(rs, f, path, why);
  fclose(f);
  return e;
}

void ruleset_free(struct ruleset* rs)
{
  for (size_t i = 0; i < rs->nlists; i++) {
    struct listfile* l = &rs->lists[i];
    if (l->is_cdb && l->fd >= 0) { cdb_free(&l->cdb); close(l->fd); }
    free(l->set.slots);
    str_free(&l->set.arena);
    free(l->name);
  }
  free(rs->lists);
  free(rs->sender.v);
  free(rs->recipient.v);
  str_free(&rs->arena);
  memset(rs, 0, sizeof *rs);
}

/* json.c -- a small JSON reader (json.h). */
#include "json.h"
#include <stdlib.h>
#include <string.h>

struct parser { struct json* j; unsigned at; };

static void ws(struct parser* p)
{
  while (p->at < p->j->len) {
    char c = p->j->s[p->at];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
    p->at++;
  }
}

static int new_tok(struct parser* p, enum json_type type, unsigned start)
{
  struct json* j = p->j;
  if (j->n == j->cap) {
    unsigned cap = j->cap ? j->cap * 2 : 64;
    struct json_tok* t = realloc(j->t, cap * sizeof *t);
    if (!t) return -1;
    j->t = t;
    j->cap = cap;
  }
  j->t[j->n].type = type;
  j->t[j->n].start = j->t[j->n].end = start;
  j->t[j->n].after = j->n + 1;
  return (int)j->n++;
}

static int hexval(char c)
{
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static int scan_string(struct parser* p)
{
  const char* s = p->j->s;
  int t = new_tok(p, JSON_STRING, ++p->at);
  if (t < 0) return -1;
  while (p->at < p->j->len) {
    unsigned char c = (unsigned char)s[p->at];
    if (c == '"') { p->j->t[t].end = p->at++; return 0; }
    if (c < 0x20) return -1;
    if (c == '\\') {
      if (++p->at >= p->j->len) return -1;
      c = (unsigned char)s[p->at];
      if (c == 'u') {
        if (p->at + 4 >= p->j->len) return -1;
        for (int k = 1; k <= 4; k++)
          if (hexval(s[p->at + k]) < 0) return -1;
        p->at += 4;
      } else if (!strchr("\"\\/bfnrt", c)) {
        return -1;
      }
    }
    p->at++;
  }
  return -1;
}

static int scan_number(struct parser* p)
{
  const char* s = p->j->s;
  unsigned n = p->j->len, at = p->at;
  if (at < n && s[at] == '-') at++;
  if (at >= n || s[at] < '0' || s[at] > '9') return -1;
  if (s[at] == '0') at++;
  else while (at < n && s[at] >= '0' && s[at] <= '9') at++;
  if (at < n && s[at] == '.') {
    if (++at >= n || s[at] < '0' || s[at] > '9') return -1;
    while (at < n && s[at] >= '0' && s[at] <= '9') at++;
  }
  if (at < n && (s[at] == 'e' || s[at] == 'E')) {
    at++;
    if (at < n && (s[at] == '+' || s[at] == '-')) at++;
    if (at >= n || s[at] < '0' || s[at] > '9') return -1;
    while (at < n && s[at] >= '0' && s[at] <= '9') at++;
  }
  int t = new_tok(p, JSON_NUMBER, p->at);
  if (t < 0) return -1;
  p->j->t[t].end = at;
  p->at = at;
  return 0;
}

static int value(struct parser* p, int depth);

static int container(struct parser* p, int depth, char close)
{
  int t = new_tok(p, close == '}' ? JSON_OBJECT : JSON_ARRAY, p->at++);
  if (t < 0) return -1;
  ws(p);
  if (p->at < p->j->len && p->j->s[p->at] == close) {
    p->at++;
  } else {
    for (;;) {
      if (close == '}') {
        ws(p);
        if (p->at >= p->j->len || p->j->s[p->at] != '"' || scan_string(p) < 0) return -1;
        ws(p);
        if (p->at >= p->j->len || p->j->s[p->at] != ':') return -1;
        p->at++;
      }
      if (value(p, depth + 1) < 0) return -1;
      ws(p);
      if (p->at >= p->j->len) return -1;
      char c = p->j->s[p->at++];
      if (c == close) break;
      if (c != ',') return -1;
    }
  }
  p->j->t[t].end = p->at;
  p->j->t[t].after = p->j->n;
  return 0;
}

static const char* const literals[] = { "true", "false", "null" };

static int value(struct parser* p, int depth)
{
  if (depth > JSON_MAX_DEPTH) return -1;
  ws(p);
  if (p->at >= p->j->len) return -1;
  char c = p->j->s[p->at];
  if (c == '{') return container(p, depth, '}');
  if (c == '[') return container(p, depth, ']');
  if (c == '"') return scan_string(p);
  for (size_t i = 0; i < sizeof literals / sizeof literals[0]; i++) {
    size_t n = strlen(literals[i]);
    if (p->j->len - p->at >= n && memcmp(p->j->s + p->at, literals[i], n) == 0) {
      int t = new_tok(p, JSON_LITERAL, p->at);
      if (t < 0) return -1;
      p->at += (unsigned)n;
      p->j->t[t].end = p->at;
      return 0;
    }
  }
  return scan_number(p);
}

int json_parse(struct json* j, const char* s, unsigned len)
{
  j->s = s;
  j->len = len;
  j->n = 0;
  struct parser p = { j, 0 };
  if (value(&p, 0) < 0) return -1;
  ws(&p);
  return p.at == len ? 0 : -1;
}

void json_free(struct json* j)
{
  free(j->t);
  j->t = 0;
  j->n = j->cap = 0;
}

int json_member(const struct json* j, int obj, const char* key)
{
  if (obj < 0 || (unsigned)obj >= j->n || j->t[obj].type != JSON_OBJECT) return -1;
  size_t kl = strlen(key);
  for (unsigned i = (unsigned)obj + 1; i < j->t[obj].after; i = j->t[i + 1].after) {
    const struct json_tok* k = &j->t[i];
    if (k->end - k->start == kl && memcmp(j->s + k->start, key, kl) == 0) return (int)i + 1;
  }
  return -1;
}

static int put_utf8(str* out, unsigned long cp)
{
  char b[4];
  unsigned n;
  if (cp < 0x80) { b[0] = (char)cp; n = 1; }
  else if (cp < 0x800) { b[0] = (char)(0xc0 | cp >> 6); b[1] = (char)(0x80 | (cp & 0x3f)); n = 2; }
  else if (cp < 0x10000) {
    b[0] = (char)(0xe0 | cp >> 12); b[1] = (char)(0x80 | ((cp >> 6) & 0x3f)); b[2] = (char)(0x80 | (cp & 0x3f));
    n = 3;
  } else {
    b[0] = (char)(0xf0 | cp >> 18); b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    b[2] = (char)(0x80 | ((cp >> 6) & 0x3f)); b[3] = (char)(0x80 | (cp & 0x3f));
    n = 4;
  }
  return str_catb(out, b, n);
}

static unsigned long hex4(const char* s)
{
  unsigned long v = 0;
  for (int k = 0; k < 4; k++) v = v << 4 | (unsigned long)hexval(s[k]);
  return v;
}

int json_string(const struct json* j, int tok, str* out)
{
  if (tok < 0 || (unsigned)tok >= j->n || j->t[tok].type != JSON_STRING) return -1;
  const char* s = j->s;
  unsigned at = j->t[tok].start, end = j->t[tok].end;
  out->len = 0;
  if (!str_ready(out, end - at)) return -1;
  while (at < end) {
    const char* bs = memchr(s + at, '\\', end - at);
    unsigned run = bs ? (unsigned)(bs - (s + at)) : end - at;
    if (run && !str_catb(out, s + at, run)) return -1;
    at += run;
    if (!bs) break;
    char c = s[++at];
    at++;
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    if (c != 'u') {
      if (!str_catc(out, to[strchr(from, c) - from])) return -1;
      continue;
    }
    unsigned long cp = hex4(s + at);
    at += 4;
    if (cp >= 0xd800 && cp < 0xdc00) {
      if (at + 6 > end || s[at] != '\\' || s[at + 1] != 'u') return -1;
      unsigned long lo = hex4(s + at + 2);
      if (lo < 0xdc00 || lo > 0xdfff) return -1;
      cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
      at += 6;
    } else if (cp >= 0xdc00 && cp <= 0xdfff) {
      return -1;
    }
    if (!put_utf8(out, cp)) return -1;
  }
  return 0;
}

int json_number(const struct json* j, int tok, double* out)
{
  if (tok < 0 || (unsigned)tok >= j->n || j->t[tok].type != JSON_NUMBER) return -1;
  char buf[64];
  unsigned n = j->t[tok].end - j->t[tok].start;
  if (n >= sizeof buf) return -1;
  memcpy(buf, j->s + j->t[tok].start, n);
  buf[n] = 0;
  *out = strtod(buf, 0);
  return 0;
}

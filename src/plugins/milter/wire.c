/* wire.c -- milter packets and the parsers of milter answers (wire.h). */
#include "wire.h"
#include <string.h>

static int cat_u32(str* out, unsigned v)
{
  char b[4] = { (char)(v >> 24), (char)(v >> 16), (char)(v >> 8), (char)v };
  return str_catb(out, b, 4);
}

static unsigned get_u32(const char* p)
{
  const unsigned char* u = (const unsigned char*)p;
  return (unsigned)u[0] << 24 | (unsigned)u[1] << 16 | (unsigned)u[2] << 8 | u[3];
}

int mw_packet(str* out, char cmd, const char* data, unsigned len)
{
  if (len > STR_MAX - 16) return 0;
  return cat_u32(out, len + 1) && str_catc(out, cmd) && (len == 0 || str_catb(out, data, len));
}

int mw_cat0(str* out, const char* b, unsigned len)
{
  return (len == 0 || str_catb(out, b, len)) && str_catc(out, 0);
}

int mw_strings(const char* data, unsigned len, unsigned n, const char** out, unsigned* lens)
{
  unsigned at = 0;
  for (unsigned i = 0; i < n; i++) {
    const char* nul = at < len ? memchr(data + at, 0, len - at) : 0;
    if (!nul) return -1;
    out[i] = data + at;
    lens[i] = (unsigned)(nul - (data + at));
    at += lens[i] + 1;
  }
  return at == len ? 0 : -1;
}

void mw_optneg_free(struct mw_optneg* o)
{
  for (int i = 0; i < MW_NSTAGES; i++) str_free(&o->symlist[i]);
}

int mw_optneg(const char* data, unsigned len, struct mw_optneg* o)
{
  if (len < 12) return -1;
  o->version = get_u32(data);
  o->actions = get_u32(data + 4);
  o->protocol = get_u32(data + 8);
  for (int i = 0; i < MW_NSTAGES; i++) { o->symlist[i].len = 0; o->has_symlist[i] = 0; }
  if (o->version < 2 || o->version > MW_VERSION) return -1;
  if (o->actions & ~MW_ACTIONS) return -1;
  if (o->protocol & ~MW_PROTOCOL) return -1;
  /* Version 6: (stage, "name name ...\0") pairs follow. */
  unsigned at = 12;
  while (at < len) {
    if (len - at < 5) return -1;
    unsigned stage = get_u32(data + at);
    at += 4;
    const char* nul = memchr(data + at, 0, len - at);
    if (!nul || stage >= MW_NSTAGES) return -1;
    unsigned n = (unsigned)(nul - (data + at));
    if (!str_copyb(&o->symlist[stage], data + at, n)) return -1;
    o->has_symlist[stage] = 1;
    at += n + 1;
  }
  return 0;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

int mw_replycode(const char* data, unsigned len, unsigned* number, str* text)
{
  /* The text is NUL-terminated; nothing may follow the NUL. */
  if (len == 0 || data[len - 1] != 0 || memchr(data, 0, len - 1)) return -1;
  len--;
  text->len = 0;
  unsigned code = 0, at = 0;
  for (int first = 1; at < len; first = 0) {
    const char* line = data + at;
    const char* eol = memchr(line, '\n', len - at);
    unsigned n = eol ? (unsigned)(eol - line) : len - at;
    at += n + (eol ? 1 : 0);
    if (n > 0 && line[n - 1] == '\r') n--;
    if (n < 3 || !is_digit(line[0]) || !is_digit(line[1]) || !is_digit(line[2])) return -1;
    unsigned c = (unsigned)(line[0] - '0') * 100 + (unsigned)(line[1] - '0') * 10 + (unsigned)(line[2] - '0');
    if (first) code = c;
    if (c != code || (code / 100 != 4 && code / 100 != 5)) return -1;
    char sep = n > 3 ? line[3] : ' ';
    int last = at >= len;
    if (sep != ' ' && sep != '-') return -1;
    if (sep == '-' && last) return -1;
    if (sep == ' ' && !last) return -1;
    for (unsigned i = 4; i < n; i++)
      if ((unsigned char)line[i] < 32 || line[i] == 127) return -1;
    if (!first && !str_catc(text, '\n')) return -1;
    if (n > 4 && !str_catb(text, line + 4, n - 4)) return -1;
  }
  if (code == 0) return -1;
  *number = code;
  return 0;
}

static int parse_port(const char* p, unsigned len, unsigned* port)
{
  unsigned v = 0;
  if (len == 0 || len > 5) return -1;
  for (unsigned i = 0; i < len; i++) {
    if (!is_digit(p[i])) return -1;
    v = v * 10 + (unsigned)(p[i] - '0');
  }
  if (v == 0 || v > 65535) return -1;
  *port = v;
  return 0;
}

static const struct { const char* prefix; enum mw_family family; } kinds[] = {
  { "inet6:", MW_INET6 }, { "inet:", MW_INET }, { "unix:", MW_UNIX }, { "local:", MW_UNIX },
};

int mw_spec_parse(const char* item, unsigned len, struct mw_spec* spec)
{
  unsigned i;
  size_t pl = 0;
  for (i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
    pl = strlen(kinds[i].prefix);
    if (len > pl && strncmp(item, kinds[i].prefix, pl) == 0) break;
  }
  if (i == sizeof kinds / sizeof kinds[0]) return -1;
  spec->family = kinds[i].family;
  const char* rest = item + pl;
  unsigned rl = len - (unsigned)pl;
  spec->port = 0;
  if (spec->family == MW_UNIX) {
    if (memchr(rest, 0, rl)) return -1;
    return str_copyb(&spec->host, rest, rl) ? 0 : -1;
  }
  const char* colon;
  const char* host = rest;
  unsigned hl;
  if (rest[0] == '[') {
    const char* close = memchr(rest, ']', rl);
    if (!close || close + 1 >= rest + rl || close[1] != ':') return -1;
    host = rest + 1;
    hl = (unsigned)(close - host);
    colon = close + 1;
  } else {
    colon = 0;
    for (unsigned k = rl; k > 0; k--)
      if (rest[k - 1] == ':') { colon = rest + k - 1; break; }
    if (!colon) return -1;
    hl = (unsigned)(colon - rest);
    if (memchr(rest, ':', hl)) return -1;     /* IPv6 addresses need brackets */
  }
  if (hl == 0 || memchr(host, 0, hl)) return -1;
  if (parse_port(colon + 1, (unsigned)(rest + rl - colon - 1), &spec->port) < 0) return -1;
  return str_copyb(&spec->host, host, hl) ? 0 : -1;
}

static int sep(char c) { return c == ' ' || c == ',' || c == '\t' || c == '\n' || c == '\r' || c == 0; }
static int blank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

int mw_list_next(const char* s, unsigned len, unsigned* pos, struct mw_item* it)
{
  unsigned at = *pos;
  while (at < len && sep(s[at])) at++;
  if (at >= len) { *pos = at; return 0; }
  it->opts = 0;
  it->optslen = 0;
  if (s[at] != '{') {
    unsigned start = at;
    while (at < len && !sep(s[at])) at++;
    it->spec = s + start;
    it->speclen = at - start;
    *pos = at;
    return 1;
  }
  const char* close = memchr(s + at, '}', len - at);
  if (!close) return -1;
  unsigned end = (unsigned)(close - s);
  at++;
  while (at < end && sep(s[at])) at++;
  unsigned start = at;
  while (at < end && !sep(s[at])) at++;
  if (at == start) return -1;
  it->spec = s + start;
  it->speclen = at - start;
  it->opts = s + at;
  it->optslen = end - at;
  *pos = end + 1;
  return 1;
}

int mw_option_next(const char* o, unsigned len, unsigned* pos, const char** name, unsigned* nl,
                   const char** value, unsigned* vl)
{
  unsigned at = *pos;
  while (at < len && sep(o[at])) at++;
  if (at >= len) { *pos = at; return 0; }
  unsigned end = at;
  while (end < len && o[end] != ',') end++;
  const char* eq = memchr(o + at, '=', end - at);
  if (!eq) return -1;
  unsigned a = at, b = (unsigned)(eq - o);
  while (b > a && blank(o[b - 1])) b--;
  unsigned c = (unsigned)(eq - o) + 1, d = end;
  while (c < d && blank(o[c])) c++;
  while (d > c && blank(o[d - 1])) d--;
  if (b == a) return -1;
  *name = o + a;
  *nl = b - a;
  *value = o + c;
  *vl = d - c;
  *pos = end;
  return 1;
}

int mw_time(const char* v, unsigned len, unsigned long* seconds)
{
  unsigned long n = 0, mult = 1;
  unsigned i = 0;
  while (i < len && is_digit(v[i])) {
    if (n > 100000000ul) return -1;
    n = n * 10 + (unsigned long)(v[i++] - '0');
  }
  if (i == 0) return -1;
  if (i + 1 == len) {
    static const struct { char unit; unsigned long mult; } units[] = { { 's', 1 }, { 'm', 60 }, { 'h', 3600 } };
    size_t k;
    for (k = 0; k < sizeof units / sizeof units[0]; k++)
      if (v[i] == units[k].unit) { mult = units[k].mult; break; }
    if (k == sizeof units / sizeof units[0]) return -1;
  } else if (i != len) {
    return -1;
  }
  *seconds = n * mult;
  return 0;
}

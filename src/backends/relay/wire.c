/* relay/wire.c -- reply lines, EHLO capabilities, the DATA/BDAT encoder,
 * xtext and parameter forwarding for the relay back ends (API: wire.h).
 * Pure functions over caller-owned str buffers; no I/O, no globals. */
#include "backends/relay/wire.h"
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int is_digit(char c) { return c >= '0' && c <= '9'; }

int relay_reply_line(const char* line, unsigned long len, unsigned* code, int* last,
                     const char** text, unsigned long* tlen)
{
  while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
  if (len < 3 || !is_digit(line[0]) || !is_digit(line[1]) || !is_digit(line[2])) return -1;
  unsigned n = (unsigned)(line[0] - '0') * 100 + (unsigned)(line[1] - '0') * 10 + (unsigned)(line[2] - '0');
  if (n < 200 || n > 599) return -1;
  if (len > 3 && line[3] != ' ' && line[3] != '-') return -1;
  *code = n;
  *last = len == 3 || line[3] == ' ';
  *text = len > 4 ? line + 4 : line + len;
  *tlen = len > 4 ? len - 4 : 0;
  return 0;
}

/* Does text start with an enhanced status code "C.N.N" (RFC 3463)? */
static int has_enhanced(const char* t, unsigned long n)
{
  unsigned long i = 0;
  if (n < 5 || (t[0] != '2' && t[0] != '4' && t[0] != '5') || t[1] != '.') return 0;
  i = 2;
  for (int part = 0; part < 2; part++) {
    unsigned long start = i;
    while (i < n && is_digit(t[i]) && i - start < 3) i++;
    if (i == start) return 0;
    if (part == 0) { if (i >= n || t[i] != '.') return 0; i++; }
  }
  return i == n || t[i] == ' ';
}

int relay_reply_append(str* out, unsigned code, const char* text, unsigned long tlen)
{
  if (tlen > RELAY_LINE_MAX) tlen = RELAY_LINE_MAX;
  if (out->len && !str_catc(out, '\n')) return -1;
  if (!has_enhanced(text, tlen)) {
    char cls[7] = { (char)('0' + code / 100), '.', '0', '.', '0', ' ', 0 };
    if (!str_cats(out, cls)) return -1;
  }
  unsigned start = out->len;
  if (!str_catb(out, text, (unsigned)tlen)) return -1;
  for (unsigned i = start; i < out->len; i++) {
    unsigned char c = (unsigned char)out->s[i];
    if (c < 0x20 || c == 0x7f) out->s[i] = '?';
  }
  return 0;
}

void relay_caps_clear(struct relay_caps* c)
{
  c->bits = 0;
  c->size = 0;
  c->auth_plain = c->auth_login = 0;
  c->xforward.len = c->xclient.len = 0;
}

/* Words of the capability line after the keyword, copied as a list. */
static int copy_words(str* list, const char* t, unsigned long n)
{
  list->len = 0;
  if (!str_copyb(list, t, (unsigned)n)) return -1;
  for (unsigned i = 0; i < list->len; i++)
    if ((unsigned char)list->s[i] < 0x21) list->s[i] = ' ';
  return 0;
}

static int word_in(const char* t, unsigned long n, const char* w)
{
  size_t wl = strlen(w);
  unsigned long i = 0;
  while (i < n) {
    while (i < n && t[i] == ' ') i++;
    unsigned long s = i;
    while (i < n && t[i] != ' ') i++;
    if (i - s == wl && strncasecmp(t + s, w, wl) == 0) return 1;
  }
  return 0;
}

static const struct { const char* name; unsigned bit; } cap_table[] = {
  { "PIPELINING", CAP_PIPELINING }, { "8BITMIME", CAP_8BITMIME }, { "SIZE", CAP_SIZE },
  { "SMTPUTF8", CAP_SMTPUTF8 }, { "CHUNKING", CAP_CHUNKING }, { "STARTTLS", CAP_STARTTLS },
  { "AUTH", CAP_AUTH }, { "XFORWARD", CAP_XFORWARD }, { "XCLIENT", CAP_XCLIENT },
  { "DSN", CAP_DSN }, { "ENHANCEDSTATUSCODES", CAP_ENHANCED },
};

int relay_caps_add(struct relay_caps* c, const char* t, unsigned long n)
{
  unsigned long k = 0;
  while (k < n && t[k] != ' ' && t[k] != '=') k++;
  unsigned long restpos = k < n ? k + 1 : n;
  const char* rest = t + restpos;
  unsigned long rl = n - restpos;
  for (size_t i = 0; i < sizeof cap_table / sizeof cap_table[0]; i++) {
    if (strlen(cap_table[i].name) != k || strncasecmp(t, cap_table[i].name, k) != 0) continue;
    c->bits |= cap_table[i].bit;
    switch (cap_table[i].bit) {
    case CAP_SIZE: {
      unsigned long v = 0;
      for (unsigned long j = 0; j < rl && is_digit(rest[j]); j++)
        v = v > (~0UL - 9) / 10 ? ~0UL : v * 10 + (unsigned long)(rest[j] - '0');
      c->size = v;
      break;
    }
    case CAP_AUTH:
      if (word_in(rest, rl, "PLAIN")) c->auth_plain = 1;
      if (word_in(rest, rl, "LOGIN")) c->auth_login = 1;
      break;
    case CAP_XFORWARD: return copy_words(&c->xforward, rest, rl);
    case CAP_XCLIENT: return copy_words(&c->xclient, rest, rl);
    default: break;
    }
    return 0;
  }
  return 0;
}

int relay_attr_offered(const str* list, const char* name)
{
  return list->len && word_in(list->s, list->len, name);
}

void relay_enc_start(struct relay_enc* e, int dot) { e->bol = 1; e->dot = dot; }

int relay_enc_feed(struct relay_enc* e, const char* in, unsigned long len, str* out)
{
  unsigned long i = 0;
  while (i < len) {
    if (e->bol && e->dot && in[i] == '.' && !str_catc(out, '.')) return -1;
    const char* nl = memchr(in + i, '\n', len - i);
    unsigned long end = nl ? (unsigned long)(nl - in) : len;
    if (end > i && !str_catb(out, in + i, (unsigned)(end - i))) return -1;
    e->bol = 0;
    i = end;
    if (nl) {
      if (!str_catb(out, "\r\n", 2)) return -1;
      e->bol = 1;
      i++;
    }
  }
  return 0;
}

int relay_enc_end(struct relay_enc* e, str* out)
{
  if (!e->bol && !str_catb(out, "\r\n", 2)) return -1;
  e->bol = 1;
  return e->dot && !str_catb(out, ".\r\n", 3) ? -1 : 0;
}

int relay_xtext(str* out, const char* s, unsigned long len)
{
  static const char hex[] = "0123456789ABCDEF";
  for (unsigned long i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x21 && c <= 0x7e && c != '+' && c != '=') {
      if (!str_catc(out, (char)c)) return -1;
    } else {
      char h[3] = { '+', hex[c >> 4], hex[c & 15] };
      if (!str_catb(out, h, 3)) return -1;
    }
  }
  return 0;
}

/* Which parameters go on, by the capability that allows them. */
enum on_missing { DROP, REFUSE };
static const struct { const char* key; int rcpt; unsigned cap; enum on_missing miss; } param_table[] = {
  { "SIZE", 0, CAP_SIZE, DROP },
  { "BODY", 0, CAP_8BITMIME, DROP },
  { "SMTPUTF8", 0, CAP_SMTPUTF8, REFUSE },
  { "RET", 0, CAP_DSN, DROP },
  { "ENVID", 0, CAP_DSN, DROP },
  { "NOTIFY", 1, CAP_DSN, DROP },
  { "ORCPT", 1, CAP_DSN, DROP },
};

int relay_params(const struct relay_caps* c, int rcpt, const str* params, str* out, const char** refused)
{
  *refused = 0;
  for (unsigned i = 0; params && params->s && i < params->len; ) {
    const char* item = params->s + i;
    unsigned n = (unsigned)strnlen(item, params->len - i);
    i += n + 1;
    if (n == 0) continue;
    unsigned k = 0;
    while (k < n && item[k] != '=') k++;
    for (size_t j = 0; j < sizeof param_table / sizeof param_table[0]; j++) {
      if (param_table[j].rcpt != rcpt || strlen(param_table[j].key) != k
          || strncasecmp(item, param_table[j].key, k) != 0) continue;
      if (!(c->bits & param_table[j].cap)) {
        if (param_table[j].miss == REFUSE) { *refused = param_table[j].key; return 1; }
        break;
      }
      for (unsigned b = 0; b < n; b++)
        if ((unsigned char)item[b] < 0x21 || (unsigned char)item[b] == 0x7f) return -1;
      if (!str_catc(out, ' ') || !str_catb(out, item, n)) return -1;
      break;
    }
  }
  return 0;
}

int relay_address_ok(const str* a)
{
  for (unsigned i = 0; i < a->len; i++) {
    unsigned char c = (unsigned char)a->s[i];
    if (c < 0x20 || c == 0x7f || c == '<' || c == '>') return -1;
  }
  return 0;
}

/* address.c -- the parsers of SMTP command arguments: the MAIL/RCPT
 * argument parser of the original (protocols.md "Address argument
 * parsing", rules 1-6, including the pre-standard bracket-less forms), the
 * ESMTP parameter lookup, the UTF-8 check of RFC 6531 addresses and the
 * BDAT argument (RFC 3030).  Pure functions: no I/O, no globals; each works
 * on a buffer and a length (unit and generated-input tests call them
 * directly). */
#include "smtp.h"
#include <string.h>
#include <strings.h>

int smtp_parse_address(const char* arg, unsigned long len, str* addr, str* params)
{
  const char* end = arg + len;
  const char* p = memchr(arg, '<', len);
  int bracket = p != 0;
  addr->len = 0;
  params->len = 0;
  if (!str_copys(addr, "") || !str_copys(params, "")) return -1;
  if (bracket) {
    p++;
  } else {
    p = memchr(arg, ':', len);
    if (!p) p = memchr(arg, ' ', len);
    if (!p) return -1;
    p++;
    while (p < end && *p == ' ') p++;
  }
  int quoted = 0, terminated = 0;
  for (; p < end; p++) {
    char c = *p;
    if (c == '"') { quoted = !quoted; continue; }
    if (c == '\\' && p + 1 < end) { p++; if (!str_catc(addr, *p)) return -1; continue; }
    if (!quoted && ((bracket && c == '>') || (!bracket && c == ' '))) { terminated = 1; p++; break; }
    if (!str_catc(addr, c)) return -1;
  }
  if (!terminated) {
    if (bracket || addr->len == 0) return -1;
    return 0;              /* bracket-less to end of line: no parameters */
  }
  while (p < end && *p == ' ') p++;
  if (!str_catb(params, p, (unsigned)(end - p))) return -1;
  for (unsigned i = 0; i < params->len; i++)
    if (params->s[i] == ' ') params->s[i] = 0;
  if (addr->len > 0 && addr->s[0] == '@') {
    int i = str_findfirst(addr, ':');
    if (i >= 0) {
      unsigned colon = (unsigned)i;
      memmove(addr->s, addr->s + colon + 1, addr->len - colon - 1);
      str_truncate(addr, addr->len - colon - 1);
    }
  }
  return 0;
}

/* ---- RFC 6531/3030 helpers (pure, callable on any buffer) ---- */

int smtp_utf8_check(const char* s, unsigned long len)
{
  const unsigned char* p = (const unsigned char*)s;
  int eight = 0;
  for (unsigned long i = 0; i < len; ) {
    unsigned c = p[i];
    if (c < 0x80) { i++; continue; }
    eight = 1;
    unsigned need;
    unsigned lo = 0x80, hi = 0xBF;         /* bounds of the second byte */
    if (c >= 0xC2 && c <= 0xDF) need = 1;
    else if (c >= 0xE0 && c <= 0xEF) {
      need = 2;
      if (c == 0xE0) lo = 0xA0;            /* overlong */
      if (c == 0xED) hi = 0x9F;            /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
      need = 3;
      if (c == 0xF0) lo = 0x90;            /* overlong */
      if (c == 0xF4) hi = 0x8F;            /* beyond U+10FFFF */
    } else return -1;                      /* C0, C1, F5..FF, stray continuation */
    if (len - i - 1 < need) return -1;
    if (p[i + 1] < lo || p[i + 1] > hi) return -1;
    for (unsigned k = 2; k <= need; k++)
      if (p[i + k] < 0x80 || p[i + k] > 0xBF) return -1;
    i += need + 1;
  }
  return eight;
}

int smtp_param_find(const str* params, const char* key, const char** value)
{
  size_t klen = strlen(key);
  for (unsigned i = 0; params && i < params->len; ) {
    const char* item = params->s + i;
    size_t n = strnlen(item, params->len - i);
    if (n >= klen && strncasecmp(item, key, klen) == 0 && (n == klen || item[klen] == '=')) {
      *value = n == klen ? 0 : item + klen + 1;
      return 1;
    }
    i += (unsigned)n + 1;
  }
  return 0;
}

int smtp_parse_bdat(const char* arg, unsigned long len, unsigned long long* size, int* last)
{
  unsigned long i = 0;
  unsigned long long n = 0;
  if (len == 0 || arg[0] < '0' || arg[0] > '9') return -1;
  for (; i < len && arg[i] >= '0' && arg[i] <= '9'; i++) {
    unsigned d = (unsigned)(arg[i] - '0');
    if (n > (~0ULL - d) / 10) return -1;   /* does not fit in 64 bits */
    n = n * 10 + d;
  }
  unsigned long j = i;
  while (j < len && (arg[j] == ' ' || arg[j] == '\t')) j++;
  *last = 0;
  if (j < len) {
    if (j == i || len - j < 4 || strncasecmp(arg + j, "LAST", 4) != 0) return -1;
    j += 4;
    while (j < len && (arg[j] == ' ' || arg[j] == '\t')) j++;
    if (j < len) return -1;
    *last = 1;
  }
  *size = n;
  return 0;
}

/* address.c -- the MAIL/RCPT argument parser of the original
 * (protocols.md "Address argument parsing", rules 1-6), including the
 * pre-standard bracket-less forms.  Pure function: no I/O, no globals. */
#include "smtp.h"
#include <string.h>

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

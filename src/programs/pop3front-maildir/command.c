/* command.c -- pop3front-maildir: command line splitting and argument
 * parsing (see command.h for the contract).  Everything is bounded by the
 * given lengths; an embedded NUL is an ordinary (non-digit) byte. */
#include "command.h"
#include <limits.h>

static int is_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

size_t pop3_parse_long(const char* s, size_t len, long* value)
{
  size_t i = 0;
  int neg = 0;
  unsigned long acc = 0, lim;
  int over = 0;
  *value = 0;
  while (i < len && is_space(s[i])) i++;
  if (i < len && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
  size_t first = i;
  lim = neg ? (unsigned long)LONG_MAX + 1 : (unsigned long)LONG_MAX;
  for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
    unsigned d = (unsigned)(s[i] - '0');
    if (over || acc > (lim - d) / 10) over = 1;
    else acc = acc * 10 + d;
  }
  if (i == first) return 0;
  if (over) acc = lim;
  if (neg) *value = acc == (unsigned long)LONG_MAX + 1 ? LONG_MIN : -(long)acc;
  else *value = (long)acc;
  return i;
}

static enum pop3_arg check_range(long v, unsigned long count, unsigned long* n)
{
  if (v < 0) return ARG_SYNTAX;
  if (v == 0 || (unsigned long)v > count) return ARG_RANGE;
  *n = (unsigned long)v;
  return ARG_OK;
}

enum pop3_arg pop3_msgnum(const char* arg, size_t len, unsigned long count, unsigned long* n)
{
  long v;
  size_t used = pop3_parse_long(arg, len, &v);
  if (used == 0 || used != len) return ARG_SYNTAX;
  return check_range(v, count, n);
}

enum pop3_arg pop3_retr_msgnum(const char* arg, size_t len, unsigned long count,
                               unsigned long* n, const char** rest, size_t* restlen)
{
  long v;
  size_t used = pop3_parse_long(arg, len, &v);
  *rest = arg + used;
  *restlen = len - used;
  return check_range(v, count, n);
}

enum pop3_arg pop3_lines(const char* rest, size_t len, int* limited, unsigned long* lines)
{
  size_t i = 0;
  long v;
  while (i < len && rest[i] == ' ') i++;
  *limited = 0;
  *lines = 0;
  if (i == len) return ARG_OK;
  size_t used = pop3_parse_long(rest + i, len - i, &v);
  if (used == 0 || used != len - i || v < 0) return ARG_SYNTAX;
  *limited = 1;
  *lines = (unsigned long)v;
  return ARG_OK;
}

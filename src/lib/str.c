/* str.c -- growable byte strings (see include/mailfront/str.h).
 * Every length is checked against STR_MAX before it is added; allocation
 * failure returns 0 and leaves the string as it was. */
#include <mailfront/str.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

int str_ready(str* s, unsigned size)
{
  if (size > STR_MAX) return 0;
  if (s->s != 0 && s->size > size) return 1;
  unsigned long want = (unsigned long)size + 1;
  unsigned long grow = (unsigned long)s->size + s->size / 2 + 16;
  if (grow > want && grow <= (unsigned long)STR_MAX + 1) want = grow;
  char* p = realloc(s->s, want);
  if (p == 0) return 0;
  if (s->s == 0) p[0] = 0;
  s->s = p;
  s->size = (unsigned)want;
  return 1;
}

int str_copyb(str* s, const char* b, unsigned len)
{
  if (!str_ready(s, len)) return 0;
  if (len) memmove(s->s, b, len);
  s->len = len;
  s->s[len] = 0;
  return 1;
}

int str_copys(str* s, const char* c) { size_t n = strlen(c); return n <= STR_MAX && str_copyb(s, c, (unsigned)n); }
int str_copy(str* s, const str* f) { return str_copyb(s, f->s ? f->s : "", f->len); }

int str_catb(str* s, const char* b, unsigned len)
{
  if (len > STR_MAX - s->len) return 0;
  if (!str_ready(s, s->len + len)) return 0;
  if (len) memmove(s->s + s->len, b, len);
  s->len += len;
  s->s[s->len] = 0;
  return 1;
}

int str_cats(str* s, const char* c) { size_t n = strlen(c); return n <= STR_MAX && str_catb(s, c, (unsigned)n); }
int str_cat(str* s, const str* f) { return str_catb(s, f->s ? f->s : "", f->len); }
int str_catc(str* s, char c) { return str_catb(s, &c, 1); }
int str_cat2s(str* s, const char* a, const char* b) { unsigned l = s->len; if (str_cats(s, a) && str_cats(s, b)) return 1; str_truncate(s, l); return 0; }
int str_cat3s(str* s, const char* a, const char* b, const char* c) { unsigned l = s->len; if (str_cat2s(s, a, b) && str_cats(s, c)) return 1; str_truncate(s, l); return 0; }

int str_catu(str* s, unsigned long u)
{
  char tmp[24];
  int i = sizeof tmp;
  do { tmp[--i] = (char)('0' + u % 10); u /= 10; } while (u);
  return str_catb(s, tmp + i, (unsigned)(sizeof tmp - i));
}

void str_truncate(str* s, unsigned len)
{
  if (s->s == 0 || len > s->len) return;
  s->len = len;
  s->s[len] = 0;
}

void str_free(str* s)
{
  free(s->s);
  s->s = 0;
  s->len = s->size = 0;
}

int str_lower(str* s)
{
  for (unsigned i = 0; i < s->len; i++) s->s[i] = (char)tolower((unsigned char)s->s[i]);
  return 1;
}

unsigned str_findfirst(const str* s, char c)
{
  const char* p = s->len ? memchr(s->s, c, s->len) : 0;
  return p ? (unsigned)(p - s->s) : s->len;
}

unsigned str_findlast(const str* s, char c)
{
  for (unsigned i = s->len; i > 0; i--)
    if (s->s[i - 1] == c) return i - 1;
  return s->len;
}

int str_diffs(const str* s, const char* c)
{
  size_t n = strlen(c);
  if (n != s->len) return n < s->len ? 1 : -1;
  return n ? memcmp(s->s, c, n) : 0;
}

int str_case_diffs(const str* s, const char* c)
{
  size_t n = strlen(c);
  if (n != s->len) return n < s->len ? 1 : -1;
  for (size_t i = 0; i < n; i++) {
    int a = tolower((unsigned char)s->s[i]), b = tolower((unsigned char)c[i]);
    if (a != b) return a - b;
  }
  return 0;
}

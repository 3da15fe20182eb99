/* str.c -- growable byte strings (see include/mailfront/str.h): bglibs'
 * str functions with the same results for every input (including the
 * not-found and empty cases), checked against libbg.so.2 by
 * tests/unit/str_bglibs.c.  Beyond bglibs: every length is checked
 * against STR_MAX before it is added, and str_alloc without copy keeps the
 * data too (bglibs leaves it undefined).  Allocation failure returns 0 and
 * leaves the string as it was. */
#include <mailfront/str.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define STR_BLOCK 16

int str_alloc(str* s, unsigned size, int copy)
{
  (void)copy;                 /* the data is always kept */
  if (size > STR_MAX) return 0;
  unsigned long want = (unsigned long)size + 1;
  if (s->s != 0 && want < s->size) return 1;
  want += want / 8 + STR_BLOCK - 1;
  want -= want % STR_BLOCK;
  if (want > (unsigned long)STR_MAX + 1) want = (unsigned long)STR_MAX + 1;
  char* p = realloc(s->s, want);
  if (p == 0) return 0;
  if (s->s == 0) p[0] = 0;
  s->s = p;
  s->size = (unsigned)want;
  return 1;
}

void str_free(str* s)
{
  free(s->s);
  s->s = 0;
  s->len = s->size = 0;
}

/* As bglibs: room for len bytes; a shorter len truncates, a longer one only
 * writes a NUL at s[len] (len is unchanged). */
int str_truncate(str* s, unsigned len)
{
  if (!str_realloc(s, len)) return 0;
  if (len < s->len) s->len = len;
  s->s[len] = 0;
  return 1;
}

int str_copyb(str* s, const char* b, unsigned len)
{
  if (!str_realloc(s, len)) return 0;
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
  if (!str_realloc(s, s->len + len)) return 0;
  if (len) memmove(s->s + s->len, b, len);
  s->len += len;
  s->s[s->len] = 0;
  return 1;
}

int str_cats(str* s, const char* c) { size_t n = strlen(c); return n <= STR_MAX && str_catb(s, c, (unsigned)n); }
int str_cat(str* s, const str* f) { return str_catb(s, f->s ? f->s : "", f->len); }
int str_catc(str* s, char c) { return str_catb(s, &c, 1); }

/* bglibs appends nothing when one part does not fit; so do these. */
int str_cat2s(str* s, const char* a, const char* b) { return str_cat3s(s, a, b, ""); }
int str_cat3s(str* s, const char* a, const char* b, const char* c)
{
  size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
  if (la + lb + lc > STR_MAX - s->len) return 0;
  if (!str_realloc(s, (unsigned)(s->len + la + lb + lc))) return 0;
  return str_catb(s, a, (unsigned)la) && str_catb(s, b, (unsigned)lb) && str_catb(s, c, (unsigned)lc);
}

int str_catu(str* s, unsigned long u)
{
  char tmp[24];
  int i = sizeof tmp;
  do { tmp[--i] = (char)('0' + u % 10); u /= 10; } while (u);
  return str_catb(s, tmp + i, (unsigned)(sizeof tmp - i));
}

void str_lower(str* s)
{
  for (unsigned i = 0; i < s->len; i++) s->s[i] = (char)tolower((unsigned char)s->s[i]);
}

int str_findnext(const str* s, char c, unsigned pos)
{
  if (pos >= s->len) return -1;
  const char* p = memchr(s->s + pos, c, s->len - pos);
  return p ? (int)(p - s->s) : -1;
}

int str_findprev(const str* s, char c, unsigned pos)
{
  if (s->len == 0) return -1;
  if (pos >= s->len) pos = s->len - 1;
  for (unsigned long i = (unsigned long)pos + 1; i > 0; i--)
    if (s->s[i - 1] == c) return (int)(i - 1);
  return -1;
}

int str_diffs(const str* a, const char* b)
{
  size_t n = strlen(b);
  size_t max = a->len < n ? a->len : n;
  for (size_t i = 0; i < max; i++)
    if (b[i] != a->s[i]) return b[i] - a->s[i];
  if (a->len > n) return 1;
  if (a->len < n) return -1;
  return 0;
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

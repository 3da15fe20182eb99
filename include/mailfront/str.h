/* mailfront/str.h -- length-tracked growable byte strings: bglibs' str.
 *
 * The layout, the prototypes and the behaviour are those of bglibs' str
 * (libbg), which the original's plugins use: s points to len bytes
 * followed by a NUL (the data may itself contain NULs), size is the
 * allocated capacity.  A zeroed str ({0,0,0}) is a valid empty string.
 * Functions that can allocate return 1 on success and 0 when memory is
 * exhausted; here also when a length would exceed STR_MAX (bglibs wraps
 * around there instead).  str_free releases the storage and leaves an
 * empty str.  As in bglibs, str_ready/str_realloc, str_findfirst and
 * str_findlast are macros over str_alloc, str_findnext and str_findprev,
 * and the find functions return -1 when the byte is absent.  The mailfront
 * driver exports these functions with bglibs' semantics (checked against
 * Debian's libbg.so.2 by tests/unit/str_bglibs.c).
 *
 * Next to a bglibs header: when <bglibs/str.h> is installed, this header
 * includes it (its declarations are a superset of the ones below), so a
 * plugin may include both, in either order.  mailfront's own sources are
 * compiled with MAILFRONT_OWN_STR, which always uses the declarations
 * below.  str_case_diffs and STR_MAX are mailfront's additions. */
#ifndef MAILFRONT_STR_H
#define MAILFRONT_STR_H

#if !defined(STR__H__) && !defined(MAILFRONT_OWN_STR) && defined(__has_include)
#if __has_include(<bglibs/str.h>)
#include <bglibs/str.h>
#endif
#endif

#ifndef STR__H__
#define STR__H__   /* bglibs' guard: its str.h is not included after this */

struct str
{
  char* s;
  unsigned len;
  unsigned size;
};
typedef struct str str;

int str_alloc(str* s, unsigned size, int copy);
#define str_ready(S,SZ) str_alloc(S,SZ,0)
#define str_realloc(S,SZ) str_alloc(S,SZ,1)
void str_free(str* s);
int str_truncate(str* s, unsigned len);
int str_copy(str* s, const str* in);
int str_copys(str* s, const char* in);
int str_copyb(str* s, const char* in, unsigned len);
int str_cat(str* s, const str* in);
int str_cats(str* s, const char* in);
int str_catc(str* s, char in);
int str_catb(str* s, const char* in, unsigned len);
int str_catu(str* s, unsigned long in);
int str_cat2s(str* s, const char* a, const char* b);
int str_cat3s(str* s, const char* a, const char* b, const char* c);
void str_lower(str* s);
/* The first difference b[i] - a[i] (as char), else by length: 1 when a is
 * longer, -1 when shorter, 0 when equal. */
int str_diffs(const str* a, const char* b);
/* Index of ch from pos on / at or before pos (pos -1: from the end), or
 * -1 when absent. */
#define str_findfirst(S,C) str_findnext(S,C,0)
#define str_findlast(S,C) str_findprev(S,C,-1)
int str_findnext(const str* s, char ch, unsigned pos);
int str_findprev(const str* s, char ch, unsigned pos);

#endif

/* mailfront's additions */
#define STR_MAX 0x7fffff00u
/* Case-insensitive comparison with a C string (0 when equal). */
int str_case_diffs(const str* s, const char* cstr);

#endif

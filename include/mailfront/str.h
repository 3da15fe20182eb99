/* mailfront/str.h -- length-tracked growable byte strings.
 *
 * The layout is that of bglibs' str, which upstream modules use:
 * s points to len bytes followed by a NUL (kept for convenience; the data
 * may itself contain NULs), size is the allocated capacity.  A zeroed str
 * ({0,0,0}) is a valid empty string.  Functions that can allocate return
 * 1 on success and 0 when memory is exhausted or the length would exceed
 * STR_MAX; the string is then unchanged.  str_free releases the storage
 * and leaves an empty str. */
#ifndef MAILFRONT_STR_H
#define MAILFRONT_STR_H

struct str
{
  char* s;
  unsigned len;
  unsigned size;
};
typedef struct str str;

#define STR_MAX 0x7fffff00u

int str_ready(str* s, unsigned size);
int str_copyb(str* s, const char* b, unsigned len);
int str_copys(str* s, const char* cstr);
int str_copy(str* s, const str* from);
int str_catb(str* s, const char* b, unsigned len);
int str_cats(str* s, const char* cstr);
int str_cat(str* s, const str* from);
int str_catc(str* s, char c);
int str_catu(str* s, unsigned long u);
int str_cat2s(str* s, const char* a, const char* b);
int str_cat3s(str* s, const char* a, const char* b, const char* c);
void str_truncate(str* s, unsigned len);
void str_free(str* s);
int str_lower(str* s);
/* Index of the first/last c, or len when absent. */
unsigned str_findfirst(const str* s, char c);
unsigned str_findlast(const str* s, char c);
/* Case-sensitive and case-insensitive comparison with a C string. */
int str_diffs(const str* s, const char* cstr);
int str_case_diffs(const str* s, const char* cstr);

#endif

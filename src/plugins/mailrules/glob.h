/* glob.h -- the shell-style glob of mail rules and content patterns
 * (mailrules.md "Patterns", plugins.md "patterns").
 *
 * glob_match(p, plen, s, slen) returns 1 when pattern p matches the whole
 * of s, else 0.  Both are byte strings with explicit lengths (they may hold
 * NUL).  Syntax: `*` any sequence (also empty), `?` one byte, `[set]`,
 * `[!set]` / `[^set]` one byte in / not in set; inside a set `\` escapes the
 * next byte and there are no ranges (`[a-c]` is `a`, `-`, `c`); `[]` is an
 * empty set.  Outside a set every other byte, `\` included, matches itself
 * exactly (callers fold case beforehand when they want that).
 * Reference behaviour kept: a `[` without a closing `]` matches any one
 * byte and then ends the match successfully, whatever follows.
 *
 * The matcher is iterative with single-star backtracking: O(plen * slen)
 * time in the worst case, no recursion, no allocation; after a star it
 * jumps with memchr to the next occurrence of a literal byte.  Header-only (static
 * functions) so that both plugins share one definition. */
#ifndef MF_PLUGINS_GLOB_H
#define MF_PLUGINS_GLOB_H
#include <stddef.h>
#include <string.h>

enum glob_set { GLOB_SET_NO, GLOB_SET_YES, GLOB_SET_UNCLOSED };

/* Match byte c against the set starting at p[at] == '['; on a closed set
 * *end is the index after its `]`. */
static enum glob_set glob_set_match(const char* p, size_t plen, size_t at, unsigned char c, size_t* end)
{
  size_t j = at + 1;
  int negate = 0, hit = 0;
  if (j < plen && (p[j] == '!' || p[j] == '^')) { negate = 1; j++; }
  for (;;) {
    if (j >= plen) return GLOB_SET_UNCLOSED;
    unsigned char ch = (unsigned char)p[j];
    if (ch == ']') { *end = j + 1; break; }
    if (ch == '\\') {
      if (j + 1 >= plen) return GLOB_SET_UNCLOSED;
      ch = (unsigned char)p[j + 1];
      j += 2;
    } else {
      j++;
    }
    if (ch == c) hit = 1;
  }
  return (hit != negate) ? GLOB_SET_YES : GLOB_SET_NO;
}

static int glob_match(const char* p, size_t plen, const char* s, size_t slen)
{
  size_t pi = 0, si = 0, star_p = 0, star_s = 0;
  int have_star = 0;
  char c0;
  for (;;) {
    if (pi < plen) {
      char c = p[pi];
      if (c == '*') {
        while (pi < plen && p[pi] == '*') pi++;
        if (pi == plen) return 1;          /* trailing star eats the rest */
        have_star = 1;
        star_p = pi;
        star_s = si;
        continue;
      }
      if (si < slen) {
        if (c == '?') { pi++; si++; continue; }
        if (c == '[') {
          size_t end = 0;
          enum glob_set r = glob_set_match(p, plen, pi, (unsigned char)s[si], &end);
          if (r == GLOB_SET_UNCLOSED) return 1;
          if (r == GLOB_SET_YES) { pi = end; si++; continue; }
        } else if (c == s[si]) {
          pi++; si++; continue;
        }
      }
    } else if (si == slen) {
      return 1;
    }
    if (!have_star || star_s >= slen) return 0;
    pi = star_p;
    si = ++star_s;
    /* After a star, a literal byte can only match where it occurs: jump
     * there instead of retrying every position (`*word*` patterns). */
    c0 = p[star_p];
    if (c0 != '?' && c0 != '[') {
      const char* q = si < slen ? memchr(s + si, c0, slen - si) : 0;
      if (!q) return 0;
      si = star_s = (size_t)(q - s);
    }
  }
}

#endif

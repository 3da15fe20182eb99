/* fuzz.h -- helpers shared by the libFuzzer harnesses in fuzz/.
 *
 * Each harness is one file NAME.c defining LLVMFuzzerTestOneInput; it
 * #includes the source it fuzzes (as the unit tests do) so that static
 * parser functions are reachable, and links build-fuzz/libmf.a and
 * build-fuzz/libcore.a (every core object but main.o).  A harness checks
 * the parser's stated invariants with FUZZ_ASSERT (an abort is a crash to
 * libFuzzer) besides what ASan and UBSan find.  fuzz_take() splits the
 * input into pieces: a leading byte chooses a length, so one input can
 * drive several calls (chunks, lines, parameters). */
#ifndef MF_FUZZ_H
#define MF_FUZZ_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define FUZZ_ASSERT(c) do { if (!(c)) { fprintf(stderr, "fuzz invariant failed: %s (%s:%d)\n", #c, __FILE__, __LINE__); abort(); } } while (0)

struct fuzz_in { const uint8_t* p; size_t n; };

/* The next byte, or 0 at the end. */
static inline uint8_t fuzz_byte(struct fuzz_in* in)
{
  if (!in->n) return 0;
  in->n--;
  return *in->p++;
}

/* The next piece: up to `max` bytes, its length chosen by one byte of
 * input (so chunk boundaries are fuzzed too).  *len = 0 at the end. */
static inline const uint8_t* fuzz_take(struct fuzz_in* in, size_t max, size_t* len)
{
  size_t want = (size_t)fuzz_byte(in) % (max + 1);
  if (want == 0) want = 1;
  if (want > in->n) want = in->n;
  const uint8_t* p = in->p;
  in->p += want;
  in->n -= want;
  *len = want;
  return p;
}

/* A heap copy of exactly n bytes (so ASan sees any read past the end),
 * plus a NUL at [n] for the parsers that take C strings. */
static inline char* fuzz_dup(const uint8_t* p, size_t n)
{
  char* s = malloc(n + 1);
  if (!s) abort();
  for (size_t i = 0; i < n; i++) s[i] = (char)p[i];
  s[n] = 0;
  return s;
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
#endif

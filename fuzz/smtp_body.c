/* smtp_body.c -- fuzzes the DATA decoder (src/protocols/smtp/body.c) in
 * its three modes (LF-tolerant, strict CRLF, strict with normalisation),
 * fed in chunks whose sizes come from the input.  Invariants: emitted
 * blocks are at most SMTP_BLOCK bytes; `used` never exceeds the chunk
 * and is the whole chunk until the end is found; the decoder emits at most
 * one byte more than it consumed (a final line end).  The same input split differently decodes identically. */
#include "fuzz.h"
#include "protocols/smtp/body.c"
#include <string.h>

struct sink { str out; };

static void emit(void* ctx, const char* b, unsigned len)
{
  struct sink* k = ctx;
  FUZZ_ASSERT(len <= SMTP_BLOCK);
  FUZZ_ASSERT(str_catb(&k->out, b, len));
}

/* Decode the body bytes with the given chunking; returns the decoded
 * bytes in k and whether the end was found. */
static int decode(int mode, const uint8_t* body, size_t n, struct fuzz_in chunking, struct sink* k,
                  size_t* consumed)
{
  struct smtp_body* b = malloc(sizeof *b);
  FUZZ_ASSERT(b);
  smtp_body_start(b, mode != 0, mode == 2, emit, k);
  size_t pos = 0;
  int done = 0;
  while (pos < n && !done) {
    size_t len = chunking.p ? (size_t)fuzz_byte(&chunking) * 37 % 4099 + 1 : n - pos;
    if (len > n - pos) len = n - pos;
    unsigned long used = 0;
    char* chunk = fuzz_dup(body + pos, len);
    done = smtp_body_feed(b, chunk, len, &used);
    free(chunk);
    FUZZ_ASSERT(used <= len);
    if (!done) FUZZ_ASSERT(used == len);
    pos += used;
  }
  smtp_body_flush(b);
  free(b);
  *consumed = pos;
  return done;
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
  struct fuzz_in in = { data, size };
  int mode = fuzz_byte(&in) % 3;
  size_t nsplit = fuzz_byte(&in) % 16;
  struct fuzz_in chunking = { in.p, nsplit < in.n ? nsplit : in.n };
  in.p += chunking.n;
  in.n -= chunking.n;

  struct sink a = { { 0, 0, 0 } }, b = { { 0, 0, 0 } };
  size_t ca, cb;
  int da = decode(mode, in.p, in.n, chunking, &a, &ca);
  struct fuzz_in whole = { 0, 0 };   /* no chunking: one big chunk */
  int db = decode(mode, in.p, in.n, whole, &b, &cb);
  FUZZ_ASSERT(da == db && ca == cb);
  FUZZ_ASSERT(a.out.len == b.out.len && (a.out.len == 0 || memcmp(a.out.s, b.out.s, a.out.len) == 0));
  FUZZ_ASSERT(a.out.len <= ca + 1);
  str_free(&a.out);
  str_free(&b.out);
  return 0;
}

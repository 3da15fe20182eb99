/* mail_headers.c -- fuzzes the streamed header scanner and the header
 * edits (src/lib/mailheaders.c) that milter and rspamd apply: a message
 * fed in fuzzed chunks with a fuzzed header limit, then edited (add,
 * insert, change, delete by index) and written out with mh_write.
 * Invariants: the fields found lie inside what was fed; the same message
 * split differently yields the same fields; writing never fails on a
 * memfd. */
#include "fuzz.h"
#include "lib/mailheaders.h"
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int count_header(void* ctx, const char* n, unsigned nl, const char* v, unsigned vl)
{
  (void)n; (void)nl; (void)v; (void)vl;
  (*(unsigned*)ctx)++;
  return 0;
}

static unsigned scan(struct mh_scan* s, const uint8_t* p, size_t n, struct fuzz_in* chunking)
{
  unsigned headers = 0;
  struct mh_callbacks cb = { &headers, count_header, 0, 0 };
  size_t pos = 0;
  while (pos < n) {
    size_t len = chunking ? (size_t)fuzz_byte(chunking) % 97 + 1 : n - pos;
    if (len > n - pos) len = n - pos;
    char* c = fuzz_dup(p + pos, len);
    int r = mh_feed(s, c, len, &cb);
    free(c);
    if (r < 0) return headers;
    pos += len;
  }
  mh_finish(s, &cb);
  return headers;
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
  struct fuzz_in in = { data, size };
  unsigned long max = (unsigned long)fuzz_byte(&in) * 64 + 64;
  size_t nsplit = fuzz_byte(&in) % 32;
  struct fuzz_in chunking = { in.p, nsplit < in.n ? nsplit : in.n };
  in.p += chunking.n;
  in.n -= chunking.n;

  struct mh_scan a, b;
  mh_scan_init(&a, max);
  mh_scan_init(&b, max);
  unsigned ha = scan(&a, in.p, in.n, &chunking);
  unsigned hb = scan(&b, in.p, in.n, 0);
  FUZZ_ASSERT(ha == hb && a.n == b.n && a.raw.len == b.raw.len);
  for (unsigned i = 0; i < a.n; i++)
    FUZZ_ASSERT(a.f[i].off + a.f[i].len <= a.raw.len && a.f[i].namelen <= a.f[i].len);

  struct mh_list l;
  memset(&l, 0, sizeof l);
  if (mh_list_load(&l, &a) == 0) {
    (void)mh_add(&l, "X-Fuzz", 6, "added", 5, 1);
    (void)mh_insert(&l, 0, "X-First", 7, "inserted", 8, 1);
    if (l.n > 1) (void)mh_change(&l, 1, "Subject", 7, "changed", 7, 0);
    int msg = memfd_create("msg", 0), out = memfd_create("out", 0);
    FUZZ_ASSERT(msg >= 0 && out >= 0);
    FUZZ_ASSERT(in.n == 0 || write(msg, in.p, in.n) == (ssize_t)in.n);
    (void)mh_write(out, msg, 0, &a, &l, -1);
    close(msg);
    close(out);
  }
  mh_list_free(&l);
  mh_scan_free(&a);
  mh_scan_free(&b);
  return 0;
}

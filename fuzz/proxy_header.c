/* proxy_header.c -- fuzzes mailfrontd's PROXY protocol parser
 * (src/daemon/proxy.c) the way the listener calls it: on every prefix of
 * the bytes received so far, with the versions chosen by the first byte.
 * Invariants: PROXY_MORE on a prefix is never followed by a different
 * verdict on the same prefix; once DONE, every longer prefix is DONE with
 * the same header length; a version 1 header is at most PROXY_V1_MAX
 * bytes and lies inside the bytes given; a refusal has a reason. */
#include "fuzz.h"
#include "daemon/proxy.c"
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
  struct fuzz_in in = { data, size };
  unsigned versions = fuzz_byte(&in) % 3 + 1;       /* v1, v2 or both */
  if (in.n > 4096) in.n = 4096;
  int done = 0;
  size_t done_len = 0;
  for (size_t n = 0; n <= in.n; n++) {
    unsigned char* b = (unsigned char*)fuzz_dup(in.p, n);
    struct proxy_result r;
    memset(&r, 0, sizeof r);
    const char* why = 0;
    enum proxy_status st = proxy_parse(b, n, versions, &r, &why);
    free(b);
    if (done) {
      FUZZ_ASSERT(st == PROXY_DONE && r.header_len == done_len);
      continue;
    }
    if (st == PROXY_BAD) {
      FUZZ_ASSERT(why && *why);
      break;
    }
    if (st == PROXY_DONE) {
      FUZZ_ASSERT(r.version == 1 || r.version == 2);
      if (r.version == 1) FUZZ_ASSERT(r.header_len <= n && r.header_len <= PROXY_V1_MAX);
      else FUZZ_ASSERT(r.header_len >= 16);
      done = 1;
      done_len = r.header_len;
    }
  }
  return 0;
}

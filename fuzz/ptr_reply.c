/* ptr_reply.c -- fuzzes mailfrontd's PTR answer decoding (first_ptr in
 * src/daemon/rdns.c, on glibc's ns_* parser) against any DNS reply: a
 * result of -1, 0 or 1; on 1 the name fits the buffer, is NUL-terminated
 * and holds only the bytes rdns accepts for TCPREMOTEHOST. */
#include "fuzz.h"
#include "plugins/rbl/dnstxt.c"
#include "daemon/rdns.c"

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
  if (size > 65535) return 0;
  unsigned char* msg = (unsigned char*)fuzz_dup(data, size);
  char out[256];
  size_t outlen = size > 0 ? 1 + data[0] % sizeof out : sizeof out;
  int r = first_ptr(msg, (int)size, out, outlen);
  FUZZ_ASSERT(r >= -1 && r <= 1);
  if (r == 1) {
    size_t n = strnlen(out, outlen);
    FUZZ_ASSERT(n < outlen);
    FUZZ_ASSERT(usable(out));
  }
  free(msg);
  return 0;
}

/* cvm_reply.c -- fuzzes the CVM v2 reply parser (cvm_reply_parse in
 * src/auth/cvm.c) with a random echo of 0..8 bytes taken from the input:
 * the result is a code, and a success always carries the facts the
 * protocol requires (username, uid, gid, directory present). */
#include "fuzz.h"
#include "auth/cvm.c"

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
  struct fuzz_in in = { data, size };
  size_t rlen = fuzz_byte(&in) % 9;
  if (rlen > in.n) rlen = in.n;
  unsigned char rnd[8];
  for (size_t i = 0; i < rlen; i++) rnd[i] = fuzz_byte(&in);
  char* pkt = fuzz_dup(in.p, in.n);
  struct cvm_reply r;
  memset(&r, 0, sizeof r);
  int code = cvm_reply_parse(pkt, in.n, rnd, (unsigned)rlen, &r);
  FUZZ_ASSERT(code >= 0 && code <= 255);
  if (code == CVME_OK) {
    FUZZ_ASSERT(CVM_HAS(&r, CVM_FACT_USERNAME) && CVM_HAS(&r, CVM_FACT_USERID));
    FUZZ_ASSERT(CVM_HAS(&r, CVM_FACT_GROUPID) && CVM_HAS(&r, CVM_FACT_DIRECTORY));
  }
  cvm_reply_free(&r);
  free(pkt);
  return 0;
}

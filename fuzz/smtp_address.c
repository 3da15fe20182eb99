/* smtp_address.c -- fuzzes the MAIL/RCPT argument parser
 * (src/protocols/smtp/address.c): any bytes give 0 or -1, never a crash;
 * on success the address and the parameters are no longer than the input
 * and both stay NUL-terminated strs. */
#include "fuzz.h"
#include "protocols/smtp/address.c"

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
  char* arg = fuzz_dup(data, size);
  str addr = { 0, 0, 0 }, params = { 0, 0, 0 };
  int r = smtp_parse_address(arg, size, &addr, &params);
  FUZZ_ASSERT(r == 0 || r == -1);
  if (r == 0) {
    FUZZ_ASSERT(addr.len <= size);
    FUZZ_ASSERT(params.len <= size + 1);
    FUZZ_ASSERT(addr.s[addr.len] == 0 && params.s[params.len] == 0);
  }
  str_free(&addr);
  str_free(&params);
  free(arg);
  return 0;
}

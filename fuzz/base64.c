/* base64.c -- fuzzes the strict base64 decoder (src/auth/base64.c):
 * any bytes decode or are refused; what decodes re-encodes to text that
 * decodes to the same bytes, and encoded output is 4/3 of the input. */
#include "fuzz.h"
#include "auth/base64.c"
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
  char* text = fuzz_dup(data, size);
  str out = { 0, 0, 0 }, again = { 0, 0, 0 }, back = { 0, 0, 0 };
  if (base64_decode(text, size, &out)) {
    FUZZ_ASSERT(out.len <= size);
    FUZZ_ASSERT(base64_encode(out.s ? out.s : "", out.len, &again));
    FUZZ_ASSERT(again.len == (out.len + 2) / 3 * 4);
    FUZZ_ASSERT(base64_decode(again.s ? again.s : "", again.len, &back));
    FUZZ_ASSERT(back.len == out.len && (out.len == 0 || memcmp(back.s, out.s, out.len) == 0));
  }
  /* And the encoder on the raw bytes. */
  FUZZ_ASSERT(base64_encode(text, size, &again));
  FUZZ_ASSERT(base64_decode(again.s ? again.s : "", again.len, &back));
  FUZZ_ASSERT(back.len == size && (size == 0 || memcmp(back.s, text, size) == 0));
  str_free(&out);
  str_free(&again);
  str_free(&back);
  free(text);
  return 0;
}

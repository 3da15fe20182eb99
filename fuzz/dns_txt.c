/* dns_txt.c -- fuzzes the DNS reply parser of the rbl plugin
 * (dnstxt_parse in src/plugins/rbl/dnstxt.c): any reply gives a count or
 * an error; a positive count comes with a NUL-terminated text (the crash
 * of an all-empty TXT answer was a finding of the review: the text must
 * never be NULL when the count is >= 1). */
#include "fuzz.h"
#include "plugins/rbl/dnstxt.c"

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
  if (size > 65535) return 0;
  unsigned char* msg = (unsigned char*)fuzz_dup(data, size);
  str out = { 0, 0, 0 };
  int n = dnstxt_parse(msg, (int)size, &out);
  if (n >= 1) {
    FUZZ_ASSERT(out.s != 0);
    FUZZ_ASSERT(strlen(out.s) <= out.len);
  }
  str_free(&out);
  free(msg);
  return 0;
}

/* mailrules.c -- fuzzes the mail rules parser and matcher
 * (src/plugins/mailrules/parse.c, match.c): the input is split at the
 * first NUL into a rules file and an address; a file parses or is refused
 * with a reason, and a parsed file can be walked for the address as sender
 * and as recipient.  List files ([[FILE]], cdb) named by fuzzed rules are
 * opened relative to a directory that holds none, so they fail cleanly. */
#include "fuzz.h"
#include "plugins/mailrules/parse.c"
#include "plugins/mailrules/match.c"
#include <string.h>

static int count_fired(const struct rule* r, void* ctx)
{
  (void)r;
  (void)ctx;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
  for (size_t i = 0; i + 3 < size; i++)
    if (data[i] == '[' && data[i + 1] == '[' && (data[i + 2] == '/' || data[i + 2] == '.'
                                                  || (data[i + 2] == '@' && (data[i + 3] == '/' || data[i + 3] == '.'))))
      return 0;
  const uint8_t* nul = memchr(data, 0, size);
  size_t flen = nul ? (size_t)(nul - data) : size;
  char* file = fuzz_dup(data, flen);
  FILE* f = fmemopen(file, flen ? flen : 1, "r");
  if (!f) { free(file); return 0; }
  if (!flen) { fclose(f); f = fmemopen((void*)"", 1, "r"); }
  struct ruleset rs;
  memset(&rs, 0, sizeof rs);
  str why = { 0, 0, 0 };
  enum rules_error e = ruleset_parse(&rs, f, "fuzz", &why);
  fclose(f);
  if (e == RULES_OK && nul) {
    size_t alen = size - flen - 1;
    char* addr = fuzz_dup(nul + 1, alen);
    struct addr a;
    addr_set(&a, addr, alen);
    int stop = 0;
    (void)rules_walk(&rs, &rs.sender, &a, 0, count_fired, &stop, &stop);
    (void)rules_walk(&rs, &rs.recipient, &a, &a, count_fired, &stop, &stop);
    free(addr);
  } else if (e != RULES_OK) {
    FUZZ_ASSERT(why.len > 0);
  }
  ruleset_free(&rs);
  str_free(&why);
  free(file);
  return 0;
}

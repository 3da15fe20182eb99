/* imap_command.c -- fuzzes imapfront-auth's command parser
 * (src/programs/imapfront-auth/parse.c) the way main.c drives it: lines
 * (LF-separated) are parsed; when a line ends in a literal {N} or {N+},
 * the next min(N, 4096) input bytes are the literal and parsing continues
 * with the following line.  Invariants: at most IMAP_MAX_ARGS arguments;
 * an error carries a text; the tag and name are only set together with
 * in_args. */
#include "fuzz.h"
#include <string.h>
#include "programs/imapfront-auth/parse.c"
#include "lib/linein.h"

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
  struct imap_command c;
  memset(&c, 0, sizeof c);
  imap_command_reset(&c);
  const uint8_t* p = data;
  const uint8_t* end = data + size;
  while (p < end) {
    const uint8_t* nl = memchr(p, '\n', (size_t)(end - p));
    size_t len = nl ? (size_t)(nl + 1 - p) : (size_t)(end - p);
    char* line = fuzz_dup(p, len);
    size_t n = line_chomp(line, len);
    FUZZ_ASSERT(n <= len);
    enum imap_parse_result r = imap_parse_line(&c, line, n);
    free(line);
    p += len;
    FUZZ_ASSERT(c.nargs <= IMAP_MAX_ARGS);
    if (r == IMAP_PARSE_LITERAL) {
      size_t want = c.literal_len < 4096 ? (size_t)c.literal_len : 4096;
      if (want > (size_t)(end - p)) want = (size_t)(end - p);
      char* lit = fuzz_dup(p, want);
      int ok = imap_add_literal(&c, lit, want);
      free(lit);
      p += want;
      if (!ok) imap_command_reset(&c);
      continue;
    }
    if (r == IMAP_PARSE_ERROR) FUZZ_ASSERT(c.error && *c.error);
    imap_command_reset(&c);
  }
  imap_command_free(&c);
  return 0;
}

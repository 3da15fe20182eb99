/* patterns.c -- fuzzes the patterns plugin (src/plugins/patterns.c): the
 * input is split at the first NUL into a patterns file and a message; the
 * file is read through a memfd, the message is fed to the data_block hook
 * in fuzzed chunks with a fuzzed $PATTERNS_LINEMAX.  Invariants: a reply,
 * when there is one, is 554 with a NUL-terminated text from the file or
 * the default; the kept line never exceeds the line limit. */
#include "fuzz.h"
#include "plugins/patterns.c"
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
  struct fuzz_in in = { data, size };
  char lm[8];
  snprintf(lm, sizeof lm, "%u", (unsigned)fuzz_byte(&in) % 80);
  setenv("PATTERNS_LINEMAX", lm, 1);
  const uint8_t* nul = memchr(in.p, 0, in.n);
  size_t flen = nul ? (size_t)(nul - in.p) : in.n;
  int fd = memfd_create("patterns", 0);
  FUZZ_ASSERT(fd >= 0);
  FUZZ_ASSERT(write(fd, in.p, flen) == (ssize_t)flen);
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  setenv("PATTERNS", path, 1);
  struct patterns pt;
  memset(&pt, 0, sizeof pt);
  FUZZ_ASSERT(patterns_start(&pt) == 0);
  close(fd);
  if (nul) {
    struct fuzz_in msg = { nul + 1, in.n - flen - 1 };
    while (msg.n) {
      size_t len;
      const uint8_t* p = fuzz_take(&msg, 200, &len);
      char* chunk = fuzz_dup(p, len);
      const response* r = patterns_feed(&pt, chunk, len);
      free(chunk);
      FUZZ_ASSERT(pt.line.len <= pt.linemax);
      if (r) {
        FUZZ_ASSERT(r->number == 554 && r->message);
        (void)strlen(r->message);
        break;
      }
    }
  }
  patset_free(&pt.own);
  str_free(&pt.line);
  return 0;
}

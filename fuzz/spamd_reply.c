/* spamd_reply.c -- fuzzes the SPAMC/1.2 reply handling of the
 * spamassassin plugin (exchange() in src/plugins/spamassassin.c) against a
 * fuzzed spamd reply: it fails or replaces the message, never reads more
 * than the bound, never crashes. */
#include "scanner.h"
#include "plugins/netclient.c"
#include "plugins/spamassassin.c"

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
  if (size > SCANNER_MAX_REPLY) return 0;
  int sock[2], fd;
  if (scanner_setup(data, size, sock, &fd) != 0) return 0;
  struct sa_cfg c;
  memset(&c, 0, sizeof c);
  c.nc.timeout = c.nc.connect_timeout = c.nc.send_timeout = 2000;
  int spam = -1;
  int ok = exchange(sock[0], fd, sizeof scanner_msg - 1, &c, &spam);
  FUZZ_ASSERT(ok == 0 || ok == 1);
  FUZZ_ASSERT(spam == 0 || spam == 1);
  if (ok) {
    off_t end = lseek(fd, 0, SEEK_END);
    FUZZ_ASSERT(end >= 0 && (size_t)end <= size);
  }
  scanner_done(sock, fd);
  return 0;
}

/* clamd_reply.c -- fuzzes the INSTREAM reply handling of the clamav plugin
 * (exchange() in src/plugins/clamav.c) against a fuzzed clamd reply: a
 * verdict (clean or a 554 whose text is bounded) or a failure. */
#include "scanner.h"
#include "plugins/netclient.c"
#include "plugins/clamav.c"

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
  if (size > SCANNER_MAX_REPLY) return 0;
  int sock[2], fd;
  if (scanner_setup(data, size, sock, &fd) != 0) return 0;
  struct clam_cfg c;
  memset(&c, 0, sizeof c);
  c.nc.timeout = c.nc.connect_timeout = c.nc.send_timeout = 2000;
  struct clam_result res;   /* the session's verdict state */
  memset(&res, 0, sizeof res);
  const response* verdict = (const response*)&c;   /* must be overwritten on success */
  int ok = exchange(&res, sock[0], fd, sizeof scanner_msg - 1, &c, &verdict);
  FUZZ_ASSERT(ok == 0 || ok == 1);
  if (ok && verdict) {
    FUZZ_ASSERT(verdict->number == 554 || verdict == &resp_oom);
    FUZZ_ASSERT(strlen(verdict->message) <= MAX_REPLY + 32);
  }
  str_free(&res.text);
  scanner_done(sock, fd);
  return 0;
}

/* session.c -- fuzzes whole sessions in-process through the core's
 * mf_session (src/core/mf.h): the first input byte chooses the protocol
 * (SMTP, QMQP, QMTP) and a set of limits, the rest is the client's byte
 * stream, read from a memfd to its end.  The modules are the fuzz build's
 * protocol-*.so and back ends (instrumented like the harness), loaded once
 * per protocol by mf_load with a plugin chain that exercises the limits
 * (counters), header injection (add-received) and acceptance.  The echo
 * back end logs to stderr, which fuzz/run.sh closes for this harness
 * (-close_fd_mask=2; sanitizer reports still reach libFuzzer).
 * Invariant: a session ends with exit status 0, 1 or 111; ASan/UBSan and
 * libFuzzer's leak and timeout checks do the rest. */
#include "fuzz.h"
#include "core/mf.h"
#include <fcntl.h>
#include <libgen.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static const char* const protocols[] = { "smtp", "qmqp", "qmtp" };
static struct mf_config* configs[3];
static int devnull = -1;

/* Limits chosen by the first byte: (byte / 3) % 4. */
static char* limits[4][6] = {
  { 0 },
  { "DATABYTES=2000", "MAXRCPTS=3", "SMTP_MAXLINE=64", 0 },
  { "SMTP_BARE_NEWLINE=normalize", "MAXNOTIMPL=2", "QMQP_MAXADDR=40", "QMTP_MAXADDR=40", 0 },
  { "DATABYTES=1", "MAXHOPS=2", "SIZE=10", 0 },
};

int LLVMFuzzerInitialize(int* argc, char*** argv)
{
  (void)argc;
  /* Modules: ../lib beside the harness's bin directory (make fuzz-build). */
  char* exe = realpath((*argv)[0], 0);
  FUZZ_ASSERT(exe);
  char* bindir = dirname(exe);
  static char modules[4096];
  snprintf(modules, sizeof modules, "%s/../lib", bindir);
  free(exe);
  setenv("MODULE_PATH", modules, 1);
  setenv("TCPLOCALHOST", "fuzz.example", 1);
  setenv("TCPREMOTEIP", "192.0.2.1", 1);
  setenv("TIMEOUT", "5", 1);
  devnull = open("/dev/null", O_WRONLY);
  FUZZ_ASSERT(devnull >= 0);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
  struct fuzz_in in = { data, size };
  unsigned sel = fuzz_byte(&in);
  unsigned p = sel % 3;
  if (!configs[p]) {
    char* args[] = { (char*)protocols[p], "echo", "counters", "add-received", "accept", 0 };
    const response* err = 0;
    configs[p] = mf_load(5, args, 0, &err);
    FUZZ_ASSERT(configs[p]);
  }
  int fd = memfd_create("session", 0);
  FUZZ_ASSERT(fd >= 0);
  FUZZ_ASSERT(in.n == 0 || write(fd, in.p, in.n) == (ssize_t)in.n);
  lseek(fd, 0, SEEK_SET);
  int status = mf_session(configs[p], fd, devnull, limits[(sel / 3) % 4]);
  close(fd);
  FUZZ_ASSERT(status == 0 || status == 1 || status == 111);
  return 0;
}

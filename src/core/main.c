/* main.c -- the mailfront program: `mailfront PROTOCOL BACKEND [PLUGINS...]`.
 *
 * mf_load of the command line, then one mf_session on fds 0/1 (core/mf.h).
 * A start-up failure is reported through the protocol when it loaded,
 * else as a Fatal log line (exit 1); a missing protocol or back end name
 * exits 111.  `mailfront --version` prints the version (version.c);
 * `mailfront --check PROTOCOL BACKEND [PLUGINS...]` checks a configuration
 * without serving a session (check.c).  This is the only place that exits. */
#include "core/check.h"
#include "core/mf.h"
#include "core/version.h"
#include "lib/log.h"
#include <signal.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char** argv)
{
  const response* err = 0;
  if (argc == 2 && strcmp(argv[1], "--version") == 0) return version_print(stdout) < 0 || fflush(stdout) != 0 ? 111 : 0;
  if (argc >= 2 && strcmp(argv[1], "--check") == 0) return check_main(argc - 1, argv + 1);
  log_program("mailfront");
  signal(SIGPIPE, SIG_IGN);
  if (argc < 3) {
    log_parts(LOG_FATAL, "Protocol or backend name are missing from the command line", 0, 0, 0);
    return 111;
  }
  struct mf_config* cfg = mf_load(argc - 1, argv + 1, 0, &err);
  if (!cfg) {
    int failed = mf_load_failed(argv + 1, 0, 1, err);
    mf_error_free(err);
    return failed;
  }
  int status = mf_session(cfg, 0, 1, 0);
  mf_free(cfg);
  return status;
}

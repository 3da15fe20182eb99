/* mf.h -- the mailfront driver as a library of two steps.
 *
 * mf_load opens the modules named on a `mailfront` command line once and
 * returns a configuration that owns them (protocol, back end, the ordered
 * plugin list and the command table); mf_session runs one connection with
 * that configuration and returns the exit status `mailfront` would exit
 * with.  A listener loads once and runs a session per connection (in a
 * child, or in-process as the tests do); `mailfront` is mf_load followed
 * by one mf_session on fds 0/1 (src/core/main.c).
 *
 * Ownership: the configuration belongs to the caller and is freed by
 * mf_free (module handles stay open: code of a module may still be
 * referenced by the process).  A session owns nothing of the caller's:
 * the fds are neither closed nor shut down by mf_session.  Error
 * responses returned through *err stay valid until the next mf_load or
 * mf_reload call (like dlerror()).  Nothing here exits or installs
 * signal handlers: the caller ignores SIGPIPE (a client or qmail-queue
 * that goes away must show as a write error, not kill the process). */
#ifndef MF_MF_H
#define MF_MF_H
#include <mailfront/mailfront.h>

struct mf_config;

/* Load `PROTOCOL BACKEND [PLUGINS...]` (argv[0] is PROTOCOL) and $PLUGINS;
 * run each module's load-time hook.  env (NULL-terminated NAME=VALUE, or
 * NULL for the process environment) supplies $PLUGINS, $MODULE_PATH and
 * $MSG_DEBUG.  NULL on failure, *err says why: a response the caller
 * owns and releases with mf_error_free. */
struct mf_config* mf_load(int argc, char** argv, char** env, const response** err);

/* Run one session on in_fd/out_fd; env: extra NAME=VALUE entries
 * (NULL-terminated, may be NULL) looked up before the process environment.
 * Returns the exit status `mailfront` would exit with.  Runs the init
 * hooks, the session, the exit handler (reset step, bytes log line). */
int mf_session(struct mf_config* cfg, int in_fd, int out_fd, char** env);

/* SIGHUP: re-run the modules' version-4 reload hooks (plugins in order,
 * then the back end).  Every hook runs: a failing module keeps its old
 * state (its contract), the others take their new one; -1 and *err (the
 * first error, for mf_error_free) when one failed, 0 on success. */
int mf_reload(struct mf_config* cfg, const response** err);

/* 1 when every module of cfg (protocol, back end, plugins) is version 4:
 * per the ABI, safe for many sessions one after another in one process.
 * Else 0 and *who names the first that is not. */
int mf_reusable(const struct mf_config* cfg, const char** who);

/* Release an error of mf_load or mf_reload (NULL is fine). */
void mf_error_free(const response* err);

void mf_free(struct mf_config* cfg);

/* The start-up failure of `mailfront` after mf_load failed: err is sent
 * through the protocol argv[0] on out_fd when that protocol loads, else
 * logged as Fatal.  Returns the exit status (1). */
int mf_load_failed(char** argv, char** env, int out_fd, const response* err);
#endif

/* session.h -- the driver's per-connection state.
 *
 * One `struct session` holds everything a connection needs: the loaded
 * modules, the session environment, the string and number tables, the
 * temporary message file, the client streams and the deadlines.  The ABI of
 * upstream mailfront has no session argument in its hooks, so the core keeps
 * one pointer to the current session (session_current); every exported
 * accessor works on it.  Owned by main; freed by session_free. */
#ifndef MF_SESSION_H
#define MF_SESSION_H

#include <mailfront/mailfront.h>
#include <mailfront/iobuf.h>

struct kv { char* name; char* value; unsigned long num; };
struct kvlist { struct kv* v; unsigned n, cap; };

struct session
{
  struct protocol* protocol;
  struct plugin* backend;
  struct plugin* plugins;          /* ordered list, linked by ->next */
  unsigned flags;                  /* or of every loaded module's flags */
  unsigned debug;                  /* $MSG_DEBUG */
  int fd;                          /* temporary message file, or -1 */
  const response* data_error;      /* stored error of the current message */
  char** env; unsigned nenv, capenv; /* session environment, NAME=VALUE */
  struct kvlist strs, nums;
  struct command* commands;        /* backend's then plugins' commands */
  ibuf in; obuf out;
  long long deadline_ms;           /* whole-session deadline (monotonic) */
  str errmsg;                      /* text of dynamic error responses */
  response err;
  int exit_registered;
};

struct session* session_current(void);
int session_init(struct session* s);
void session_free(struct session* s);
/* Arm the whole-session limit, seconds from now. */

/* Whether the whole-session limit has passed. */

/* A response with a formatted message kept in the session. */
const response* session_error(unsigned number, const char* a, const char* b, const char* c);

#endif

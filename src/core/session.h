/* session.h -- the driver's configuration and per-connection state.
 *
 * struct mf_config (built once by mf_load) owns the loaded modules: the
 * protocol, the back end, the ordered plugin list and the command table.
 * struct session (one per mf_session) holds what a connection needs: the
 * configuration it runs with, the active back end, the session
 * environment, the string and number tables, the temporary message file,
 * the client streams, the deadlines and the modules' per-session contexts.
 *
 * The ABI of upstream mailfront has no session argument in its hooks, so
 * the core keeps one pointer to the current session (session_current,
 * set by session_init, cleared by session_free); the exported accessors
 * work on it.  Core functions take the session explicitly. */
#ifndef MF_SESSION_H
#define MF_SESSION_H

#include <mailfront/mailfront.h>
#include <mailfront/iobuf.h>

struct kv { char* name; char* value; unsigned long num; };
struct kvlist { struct kv* v; unsigned n, cap; };

/* A response whose text is built at run time (dynamic error replies). */
struct errbuf { str text; response r; };
const response* errbuf_set(struct errbuf* e, unsigned number, const char* a, const char* b, const char* c);

/* One loaded plugin: the module's object and the name it was loaded by. */
struct mf_entry { struct plugin* p; char* name; };
struct mf_plist { struct mf_entry* v; unsigned n, cap; };

struct mf_config
{
  struct protocol* protocol;
  struct plugin* backend;
  struct mf_plist plugins;         /* in call order */
  unsigned flags;                  /* or of every loaded module's flags */
  unsigned debug;                  /* $MSG_DEBUG */
  struct command* commands;        /* backend's then plugins' commands */
  struct errbuf err;               /* load-time error texts */
};

struct session
{
  struct mf_config* cfg;
  struct protocol* protocol;
  const char* protocol_name;       /* set by the protocol (EHLO: ESMTP), else protocol->name */
  struct plugin* backend;          /* cfg's, or one switch_backend chose */
  unsigned flags;                  /* cfg's, plus switched back ends' */
  void** ctx;                      /* per-session contexts: [0] back end, [1+i] plugin i */
  unsigned nopened;                /* how many of those were opened */
  void* proto_ctx;                 /* the protocol's (version 4) */
  int proto_opened;
  char** extra_env;                /* mf_session's env, before the process's */
  int fd;                          /* temporary message file, or -1 */
  const response* data_error;      /* stored error of the current message */
  unsigned long long msg_bytes;    /* data bytes of the current message */
  char** env; unsigned nenv, capenv; /* session environment, NAME=VALUE */
  struct kvlist strs, nums;
  ibuf in; obuf out;
  long long deadline_ms;           /* whole-session deadline (monotonic) */
  struct errbuf err;               /* text of dynamic error responses */
};

struct session* session_current(void);
/* Set up s on in_fd/out_fd with cfg (may be NULL before loading) and the
 * extra environment env (may be NULL); s becomes the current session.
 * -1 when memory is short. */
int session_init(struct session* s, struct mf_config* cfg, int in_fd, int out_fd, char** env);
void session_free(struct session* s);

/* A response with a formatted message kept in the current session. */
const response* session_error(unsigned number, const char* a, const char* b, const char* c);

/* NAME's value in a NULL-terminated NAME=VALUE list; env NULL: the
 * process environment. */
const char* envlist_get(char** env, const char* name);

/* The init step (plugins, then the back end). */
const response* handle_init(void);
/* The version-4 modules' per-session contexts (mf.c): session_open of the
 * protocol, the back end and every plugin, in that order (an error reply
 * stops at the failing module); session_close of every back end and plugin
 * context opened, in reverse order, then the protocol's. */
const response* session_contexts_open(struct session* s);
void session_contexts_close(struct session* s);

#endif

/* mailfront/mailfront.h -- the module ABI of mailfront (version 3).
 *
 * This one header is enough to write a plugin, a backend or a protocol.
 * It is source compatible with upstream mailfront's header of the same
 * name: the same constants, structure layouts and function names.
 *
 * HOW A MODULE IS LOADED
 *   mailfront PROTOCOL BACKEND [PLUGIN[:PLUGIN...] ...] opens
 *   $MODULE_PATH/protocol-PROTOCOL.so, backend-BACKEND.so and for each
 *   plugin plugin-NAME.so (built-in plugin names are resolved first).
 *   Each module exports one object: `struct protocol protocol`,
 *   `struct plugin backend` or `struct plugin plugin`, whose `version`
 *   must be PROTOCOL_VERSION / PLUGIN_VERSION.  The functions below are
 *   exported by the mailfront program itself; build modules with
 *   `cc -shared -fPIC` and leave them unresolved.
 *
 * HOOK ORDER (SMTP)
 *   init once; HELO/EHLO: reset, helo; MAIL: reset, sender; RCPT:
 *   recipient; DATA: data_start, data_block x n, message_end; reset at
 *   exit.  QMQP/QMTP per message: reset, data_start, data_block x n,
 *   sender, recipient x n, message_end.
 *
 * CHAIN RULE (one step)
 *   Plugins are called in list order, skipping those without the hook.
 *   NULL: pass on.  An error (>= 400): stop, it is the result.  An
 *   acceptance with RESPONSE_FINAL: stop, it is the result.  Another
 *   acceptance: remembered if it is the first, walk on.  Then the backend's
 *   hook runs (for reset and data_start the backend runs FIRST, so plugins
 *   can inject header lines after it).  With no acceptance at all, sender
 *   and recipient are refused ("Mail system is not configured to accept
 *   ...").  An acceptance without text lets the backend's text show.
 *
 * WHAT A HOOK MAY CHANGE
 *   sender/recipient: the address str (rewrite it; later plugins, the
 *   backend and the protocol see the new value).  params holds the ESMTP
 *   parameters as NUL-separated KEY=VALUE items (empty for QMQP/QMTP).
 *   helo: append complete capability lines, each ending in '\n', to
 *   `capabilities` (EHLO only; ignore it for HELO).
 *   data_start/message_end: `fd` is the temporary message file or -1 (only
 *   present when some module has FLAG_NEED_FILE); lseek before reading.
 *   To rewrite the message, write a scratchfile() and dup2 it over fd in
 *   message_end.  data_block: `bytes` is NOT NUL-terminated.
 *
 * MEMORY
 *   Responses returned by hooks must outlive the call (static storage).
 *   Strings returned by session_get*() belong to the session; copy them if
 *   kept across hooks that may change them.
 *
 * EXPORTED SYMBOLS
 *   The mailfront program exports exactly the functions and objects
 *   declared in the headers of include/mailfront/ (the list is
 *   src/core/exports.map) and nothing else:
 *     this header: getprotoenv, UNKNOWN, program, handle_*, respond*,
 *       backend_data_block, scratchfile, load_plugin, load_backend,
 *       switch_backend, get_netstring*, queuedir_*, session_*, msg1-msg4,
 *       warn1, warn2;
 *     responses.h: resp_*, number_ok, response_ok;
 *     str.h: bglibs' str_alloc, str_free, str_truncate, str_copy*,
 *       str_cat*, str_lower, str_diffs, str_findnext, str_findprev (with
 *       bglibs' behaviour), and str_case_diffs;
 *     iobuf.h: the ibuf and obuf functions, exported as mf_ibuf_* and
 *       mf_obuf_* (the header maps the names), so that a plugin linked
 *       with bglibs keeps libbg's own.
 *   A module exports only its entry object (plugin, backend, protocol).
 *   Plugins built against the original (with libbg) load: see
 *   docs/plugin-compat.md.
 */
#ifndef MAILFRONT_MAILFRONT_H
#define MAILFRONT_MAILFRONT_H

#include "responses.h"
#include "constants.h"
#include "str.h"
/* The I/O buffers: only their names here (identical redeclarations, so that
 * a plugin may also include bglibs' <bglibs/iobuf.h> or <bglibs/cdb.h>);
 * code that calls the ibuf and obuf functions includes <mailfront/iobuf.h>
 * (not together with <bglibs/iobuf.h>). */
struct ibuf;
struct obuf;
typedef struct ibuf ibuf;
typedef struct obuf obuf;

#define FLAG_NEED_FILE (1<<0)
#define PLUGIN_VERSION 3
#define PROTOCOL_VERSION 3

/* A command added to SMTP by a plugin or backend.  Matching is
 * case-insensitive on `name`.  fn_enabled (optional) returning 0 hides the
 * entry.  fn_noparam is called when the command has no argument,
 * fn_hasparam with the argument otherwise; either may be NULL.  The
 * function sends its own replies (respond()) and returns non-zero to go on
 * or 0 to end the session.  Arrays end with an entry whose name is NULL. */
struct command
{
  const char* name;
  int (*fn_enabled)(void);
  int (*fn_noparam)(void);
  int (*fn_hasparam)(str* param);
};

/* A plugin, or a backend.  Every field but version may be 0.  next and
 * name are filled in by the core.  The flags of every loaded module are
 * or-ed into the session's flags. */
struct plugin
{
  unsigned version;
  struct plugin* next;
  const char* name;
  unsigned flags;
  const struct command* commands;
  const response* (*init)(void);
  const response* (*helo)(str* hostname, str* capabilities);
  const response* (*reset)(void);
  const response* (*sender)(str* address, str* params);
  const response* (*recipient)(str* address, str* params);
  const response* (*data_start)(int fd);
  const response* (*data_block)(const char* bytes, unsigned long len);
  const response* (*message_end)(int fd);
};

/* A wire protocol.  name appears in Received: headers.  respond_line
 * encodes one reply line (final = last line of the reply) and returns 0 on
 * write failure.  init returns non-zero to abort start-up.  mainloop owns
 * the connection and returns the process exit status. */
struct protocol
{
  unsigned version;
  const char* name;
  int (*respond_line)(unsigned number, int final,
                      const char* msg, unsigned long len);
  int (*init)(void);
  int (*mainloop)(const struct command* commands);
};

/* ${PROTO}NAME from the environment ($PROTO defaults to TCP); NULL when
 * unset or empty.  getprotoenv(NULL) or ("") returns the prefix itself. */
extern const char* getprotoenv(const char* name);

/* The string "unknown". */
extern const char UNKNOWN[];
/* "mailfront": the program name that bglibs' msg functions print (plugins
 * built against the original log through libbg, which reads it). */
extern const char program[];

/* Handler steps, called by protocol modules (see HOOK ORDER). */
extern const response* handle_helo(str* host, str* capabilities);
extern const response* handle_reset(void);
extern const response* handle_sender(str* sender, str* params);
extern const response* handle_recipient(str* recip, str* params);
extern const response* handle_data_start(void);
extern void handle_data_bytes(const char* bytes, unsigned len);
extern const response* handle_message_end(void);

/* Replies.  respond() masks RESPONSE_FINAL, splits the text at '\n' and
 * sends each line through the protocol; replies >= 400 are logged.  Each
 * returns 0 when writing to the client failed. */
extern int respond(const response*);
extern int respond_line(unsigned number, int final,
                        const char* msg, unsigned long len);
extern int respond_multiline(unsigned number, int final, const char* msg);

/* Inject bytes downstream of the plugins (to the temp file if there is
 * one, else to the backend's data_block).  Returns an error on failure. */
extern const response* backend_data_block(const char* data, unsigned long len);

/* A new unlinked read/write temporary file under $TMPDIR, or -1. */
extern int scratchfile(void);

/* Load a module by name; NULL on success or an error response. */
extern const response* load_plugin(struct plugin** pptr, const char* name);
extern const response* load_backend(struct plugin** bptr, const char* name);
/* Make b the active backend; returns the previous one. */
extern struct plugin* switch_backend(struct plugin* backend);

/* Netstrings: 1 = ok, 0 = format error, -1 = end of input.  get_netstring
 * refuses (0) a length above $NETSTRING_MAX (default 1 MiB) and allocates
 * only as the data arrives. */
int get_netstring_len(ibuf* in, unsigned long* i);
int get_netstring(ibuf* in, str* s);

/* The queue-directory writer, parameterised by a variable prefix
 * (QUEUEDIR for backend-queuedir, RBL_QUEUEDIR for rbl). */
extern void queuedir_init(const char* prefix);
extern const response* queuedir_reset(void);
extern const response* queuedir_sender(str* address, str* params);
extern const response* queuedir_recipient(str* address, str* params);
extern const response* queuedir_data_start(int fd);
extern const response* queuedir_data_block(const char* bytes, unsigned long len);
extern const response* queuedir_message_end(int fd);

/* Session state.
 * session_getenv: first NAME= entry of the session environment, else the
 * process environment.  session_getenvu: the smallest positive decimal
 * value of NAME among the process variable and all session entries, 0 if
 * none.  session_getenvu_dflt: the first all-digit value (session, then
 * process), else dflt.  Strings and numbers are two separate tables. */
extern const char* session_protocol(void);
extern const char* session_getenv(const char* name);
extern unsigned long session_getenvu(const char* name);
extern unsigned long session_getenvu_dflt(const char* name, unsigned long dflt);
extern int session_exportenv(void);
extern int session_putenv(const char* s);
extern int session_setenv(const char* name, const char* value, int overwrite);
extern void session_resetenv(void);
extern void session_delnum(const char* name);
extern void session_delstr(const char* name);
extern unsigned long session_getnum(const char* name, unsigned long dflt);
extern int session_hasnum(const char* name, unsigned long* num);
extern const char* session_getstr(const char* name);
extern void session_setnum(const char* name, unsigned long value);
extern void session_setstr(const char* name, const char* value);

/* Logging to stderr as `mailfront[PID]: TEXT` (one line per call).  When
 * bglibs' <bglibs/msg.h> is included first, its macros of the same names
 * are used instead (as by the original's plugins). */
#ifndef MSG__H__
extern void msg1(const char* a);
extern void msg2(const char* a, const char* b);
extern void msg3(const char* a, const char* b, const char* c);
extern void msg4(const char* a, const char* b, const char* c, const char* d);
extern void warn1(const char* a);
extern void warn2(const char* a, const char* b);
#endif

/* Extensions of this implementation (not in upstream's ABI). */
/* Whole-session limit ($SESSION_TIMEOUT): re-arm, and test for expiry. */
extern void session_set_timeout(unsigned seconds);
extern int session_expired(void);
/* Variable lookup returning the first all-digit value, else dflt. */

/* The client connection (fd 0 / fd 1 with $TIMEOUT), for protocols. */
extern ibuf* session_input(void);
extern obuf* session_output(void);

#endif

/* mailfront/mailfront.h -- the module ABI of mailfront (version 4; version 3
 * plugins and back ends load unchanged).
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
 *   load once per configuration (version 4); per session: session_open
 *   (version 4), init; HELO/EHLO: reset, helo; MAIL: reset, sender;
 *   RCPT: recipient; DATA: data_start, data_block x n, message_end;
 *   reset at exit, then session_close (version 4).  QMQP/QMTP per
 *   message: reset, data_start, data_block x n, sender, recipient x n,
 *   message_end.
 *
 * ONE PROCESS, MANY SESSIONS
 *   A listener (mailfrontd) or a test may load the modules once and run
 *   many sessions in one process, one after another.  Keep per-session
 *   state in the version-4 context, not in statics; what `load` builds is
 *   shared by all sessions and must not change while they run; release
 *   in session_close whatever a session acquired (memory, fds, sockets,
 *   processes) and put back what it changed in the process (environment
 *   variables, working directory).  Declaring version 4 is the promise:
 *   mailfrontd runs several sessions of one client in one process (-n)
 *   only when every loaded module is version 4.  A version-3 plugin that
 *   keeps state in statics still works: each session then runs in its
 *   own process (mailfront, mailfrontd with a version-3 module).
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
/* PLUGIN_VERSION stays 3, upstream's value, so that a plugin which uses
 * none of the version-4 fields still loads into upstream mailfront too;
 * a plugin that fills in a version-4 field sets .version =
 * PLUGIN_VERSION_4.  The core accepts both. */
#define PLUGIN_VERSION 3
#define PLUGIN_VERSION_4 4
#define PROTOCOL_VERSION 3
#define PROTOCOL_VERSION_4 4

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

/* A plugin, or a backend.  Every field but version may be 0.  The core
 * never writes to a module's object: next and name are kept for source
 * compatibility and are not used (a plugin's name is the one it was
 * loaded by).  The flags of every loaded module are or-ed into the
 * session's flags.
 *
 * VERSION 4 (PLUGIN_VERSION_4) adds the fields after message_end; the
 * core reads them only when version is 4, so a version-3 object (which
 * ends at message_end, e.g. a binary plugin built for mailfront 2.x)
 * loads unchanged.
 *   load          once when the configuration is loaded (mf_load), before
 *                 any session, plugins in list order then the back end:
 *                 parse rule files, certificates, ... once.
 *                 An error aborts loading.  In a listener this runs in the
 *                 parent; keep what it builds read-only afterwards.
 *   reload        on SIGHUP of a listener (mf_reload): rebuild what load
 *                 built.  On an error the listener keeps running and
 *                 logs it; the plugin must then keep its old state.
 *   session_open  at the start of every session, before init: set *ctx to
 *                 the plugin's per-session state (or leave it NULL).  An
 *                 error ends the session like an init error.
 *   session_close at the end of every session that was opened (after
 *                 the final reset): free ctx.
 *   Hooks find their context with plugin_context(&plugin) (or
 *   &backend): per-session state without statics, so one process can
 *   run many sessions one after another. */
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
  /* version 4 */
  const response* (*load)(void);
  const response* (*reload)(void);
  const response* (*session_open)(void** ctx);
  void (*session_close)(void* ctx);
};

/* The per-session context the session_open hook of `self` set, or NULL
 * (also for a version-3 module or outside a session). */
extern void* plugin_context(const struct plugin* self);

/* A wire protocol.  name appears in Received: headers.  respond_line
 * encodes one reply line (final = last line of the reply) and returns 0 on
 * write failure.  init returns non-zero to abort start-up.  mainloop owns
 * the connection and returns the process exit status.
 * Version 4 (PROTOCOL_VERSION_4; version 3 still loads) adds per-session
 * state: session_open runs first in every session (before the plugins'),
 * setting *ctx (an error ends the session with exit status 1);
 * session_close runs last, after the final flush.  The protocol's
 * functions find it with protocol_context(). */
struct protocol
{
  unsigned version;
  const char* name;
  int (*respond_line)(unsigned number, int final,
                      const char* msg, unsigned long len);
  int (*init)(void);
  int (*mainloop)(const struct command* commands);
  /* version 4 */
  const response* (*session_open)(void** ctx);
  void (*session_close)(void* ctx);
};

/* The context the protocol's session_open set, or NULL. */
extern void* protocol_context(void);

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
 * (QUEUEDIR for backend-queuedir, RBL_QUEUEDIR for rbl).  One instance
 * per user and session: queuedir_open (NULL when memory is short; the
 * steps then answer 451), queuedir_close (removes an unfinished message
 * and frees).  The prefix string must outlive the instance. */
struct queuedir;
extern struct queuedir* queuedir_open(const char* prefix);
extern void queuedir_close(struct queuedir* q);
extern const response* queuedir_reset(struct queuedir* q);
extern const response* queuedir_sender(struct queuedir* q, str* address, str* params);
extern const response* queuedir_recipient(struct queuedir* q, str* address, str* params);
extern const response* queuedir_data_start(struct queuedir* q, int fd);
extern const response* queuedir_data_block(struct queuedir* q, const char* bytes, unsigned long len);
extern const response* queuedir_message_end(struct queuedir* q, int fd);
/* queuedir_sweep removes the temporary files of $PREFIX/$PREFIX_TMP that
 * a killed writer left (its pid gone and $PREFIX_TMP_MAXAGE seconds old,
 * or any file 36 hours old), at most once every $PREFIX_TMP_SWEEP seconds
 * across processes; a writer runs it at its first sender.  Returns the
 * number of files removed, -1 when the directory cannot be read. */
extern int queuedir_sweep(const char* prefix);

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
/* The driver's logging state (opaque), which the logging code linked into
 * this tree's own modules shares; not for plugins' use. */
struct mf_log_state;
extern struct mf_log_state mf_log_state;
/* The protocol name session_protocol() reports from now on (a string of
 * static storage; e.g. SMTP says "ESMTP" after EHLO). */
extern void session_set_protocol_name(const char* name);
/* The error that ended the current message's data so far (a data_block
 * hook's refusal, a write failure), or NULL: lets a protocol answer a
 * BDAT chunk before the message ends.  The data that follows is dropped. */
extern const response* handle_data_status(void);
/* Whole-session limit ($SESSION_TIMEOUT): re-arm, and test for expiry. */
extern void session_set_timeout(unsigned seconds);
extern int session_expired(void);
/* Variable lookup returning the first all-digit value, else dflt. */

/* From a message_end hook with the message file: reset the backend and
 * hand it sender, recipients (NUL-terminated items), data_start and the
 * whole file again, so that the message_end that follows delivers the
 * file's current content to the new envelope.  NULL or the backend's
 * first error.  (plugin-milter, for end-of-data envelope changes.) */
extern const response* backend_resubmit(const str* sender, const str* rcpts);

/* The client connection (fd 0 / fd 1 with $TIMEOUT), for protocols. */
extern ibuf* session_input(void);
extern obuf* session_output(void);

#endif

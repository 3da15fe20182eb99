/* log.h -- diagnostics on stderr, one line per call, in one of two formats
 * (see log.c).
 *
 * classic (the default): `PROGRAM[PID]: PREFIX TEXT`, byte for byte the
 *   lines of the original.  Prefixes: LOG_FATAL, LOG_WARN, LOG_ERR,
 *   LOG_DEBUG or 0.
 * kv ($LOGFORMAT=kv): one `key=value` line per event for log shippers:
 *   prog=PROGRAM pid=PID sid=SESSION [ip=IP] event=EVENT FIELDS...
 *   Events: session_start, command, reply, message, session_end, and log
 *   (any other line: level=info|fatal|warn|error|debug text=...).
 *
 * The program calls log_program once (it also reads $LOGFORMAT), and
 * brackets each session with log_session_begin/log_session_end.  Callers
 * never pass credentials; in kv, log_cmd also drops the argument of AUTH
 * and PASS as a second line of defence. */
#ifndef MF_LOG_H
#define MF_LOG_H
#include <mailfront/str.h>
#define LOG_FATAL "Fatal: "
#define LOG_WARN "Warning: "
#define LOG_ERR "Error: "
#define LOG_DEBUG "Debug: "

enum log_format { LOG_CLASSIC, LOG_KV };

/* What log.c keeps (one instance per process: see log.c). */
struct mf_log_state
{
  const char* program;
  enum log_format format;
  char sid[48];              /* "" outside a session */
  str ip;
  long long start_ms;
  unsigned long sessions;
};

/* The program name of every line; reads $LOGFORMAT ("kv" selects kv). */
void log_program(const char* name);
void log_set_format(enum log_format f);
enum log_format log_get_format(void);

/* A new session: a fresh session id for every following line, the
 * client's address (NULL: none) and the start time.  kv: event
 * session_start.  classic: nothing. */
void log_session_begin(const char* ip);
/* The same with the address from the process environment, the UCSPI
 * variable ${PROTO}REMOTEIP ($PROTO defaults to TCP): for programs run
 * by tcpserver. */
void log_session_begin_env(void);
/* The end of the session: kv: event session_end with status, bytes_in,
 * bytes_out and duration_ms; classic: `bytes in: N bytes out: M` when
 * classic_bytes is set (mailfront's exit line), else nothing. */
void log_session_end(int status, unsigned long long in, unsigned long long out, int classic_bytes);

/* A client command: classic `PREFIXARG` (e.g. prefix "MAIL ", arg
 * "FROM:<a@b>"); kv: event=command command=VERB arg=ARG, where VERB is
 * the prefix's first word (or the arg's first word when the prefix is
 * empty).  kv never writes the argument of AUTH (but its mechanism) or
 * PASS; callers hide credentials from the classic line themselves (the
 * classic line is the original's, byte for byte). */
void log_cmd(const char* prefix, const char* arg, unsigned long len);
/* A reply the server sent: classic `CODE TEXT`; kv: event=reply code=CODE
 * text=TEXT. */
void log_reply(unsigned code, const char* text, unsigned long len);
/* The outcome of one message (kv only): event=message result=RESULT
 * code=CODE bytes=BYTES. */
void log_message(const char* result, unsigned code, unsigned long long bytes);

/* One structured field: len < 0 means strlen(val). */
struct log_field { const char* key; const char* val; long len; };
/* A kv event of the caller's (kv only; classic: nothing). */
void log_event(const char* event, const struct log_field* fields, unsigned n);

/* Free text: classic as always; kv: event=log level=... text=.... */
void log_parts(const char* prefix, const char* a, const char* b, const char* c, const char* d);
void log_bytes(const char* prefix, const char* a, const char* b, unsigned long blen);
void log_fmt(const char* prefix, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void msg1(const char* a);
void msg2(const char* a, const char* b);
void msg3(const char* a, const char* b, const char* c);
void msg4(const char* a, const char* b, const char* c, const char* d);
void warn1(const char* a);
void warn2(const char* a, const char* b);
#endif

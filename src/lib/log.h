/* log.h -- diagnostics on stderr, one `PROGRAM[PID]: PREFIX TEXT` line per
 * call (see log.c).  Prefixes: LOG_FATAL, LOG_WARN, LOG_ERR, LOG_DEBUG or 0. */
#ifndef MF_LOG_H
#define MF_LOG_H
#define LOG_FATAL "Fatal: "
#define LOG_WARN "Warning: "
#define LOG_ERR "Error: "
#define LOG_DEBUG "Debug: "
void log_program(const char* name);
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

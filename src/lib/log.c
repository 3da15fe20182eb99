/* log.c -- one diagnostic line per call on fd 2: `PROGRAM[PID]: TEXT`.
 * The program name is set once by main (log_program).  Lines are built in
 * one buffer and written with a single write(2) so concurrent processes do
 * not interleave.  Bytes that would break the line (CR, LF, NUL) are shown
 * as '?'.  Never fails visibly: logging errors are ignored. */
#include "log.h"
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <mailfront/str.h>

static const char* program = "mailfront";

void log_program(const char* name) { program = name; }

static void emit(const char* prefix, const char* const* parts, int n, const unsigned long* lens)
{
  str line = {0, 0, 0};
  char pid[32];
  snprintf(pid, sizeof pid, "[%ld]: ", (long)getpid());
  str_cat2s(&line, program, pid);
  if (prefix) str_cats(&line, prefix);
  for (int i = 0; i < n; i++) {
    if (parts[i] == 0) continue;
    unsigned long l = lens ? lens[i] : strlen(parts[i]);
    unsigned start = line.len;
    str_catb(&line, parts[i], (unsigned)(l > 65536 ? 65536 : l));
    for (unsigned j = start; j < line.len; j++)
      if (line.s[j] == '\n' || line.s[j] == '\r' || line.s[j] == 0) line.s[j] = '?';
  }
  str_catc(&line, '\n');
  if (line.s) {
    ssize_t w = write(2, line.s, line.len);
    (void)w;
  }
  str_free(&line);
}

void log_parts(const char* prefix, const char* a, const char* b, const char* c, const char* d)
{
  const char* parts[4] = { a, b, c, d };
  emit(prefix, parts, 4, 0);
}

void log_bytes(const char* prefix, const char* a, const char* b, unsigned long blen)
{
  const char* parts[2] = { a, b };
  unsigned long lens[2] = { a ? strlen(a) : 0, blen };
  emit(prefix, parts, 2, lens);
}

void log_fmt(const char* prefix, const char* fmt, ...)
{
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  log_parts(prefix, buf, 0, 0, 0);
}

void msg1(const char* a) { log_parts(0, a, 0, 0, 0); }
void msg2(const char* a, const char* b) { log_parts(0, a, b, 0, 0); }
void msg3(const char* a, const char* b, const char* c) { log_parts(0, a, b, c, 0); }
void msg4(const char* a, const char* b, const char* c, const char* d) { log_parts(0, a, b, c, d); }
void warn1(const char* a) { log_parts("Warning: ", a, 0, 0, 0); }
void warn2(const char* a, const char* b) { log_parts("Warning: ", a, b, 0, 0); }

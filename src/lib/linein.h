/* linein.h -- one command line from a client, line end removed: the line
 * reader of the line-based programs (pop3front-auth, pop3front-maildir,
 * imapfront-auth and their SASL exchanges).
 *
 * line_read: ibuf_getline (at most max bytes kept; the rest of a longer
 * line is consumed and *toolong set), then *len is the line's length
 * without its end: the LF, then one CR before it (a final line without
 * LF is kept whole).  Returns ibuf_getline's result: 1 a line, 0 end of
 * input, -1 error or timeout (in->timedout tells which).  The bytes stay
 * in line (the caller wipes them when they may be secret).
 * line_chomp: the same rule on a buffer: the length without the end. */
#ifndef MF_LINEIN_H
#define MF_LINEIN_H

#include <mailfront/iobuf.h>
#include <stddef.h>

int line_read(ibuf* in, str* line, unsigned long max, size_t* len, int* toolong);
size_t line_chomp(const char* line, size_t len);

#endif

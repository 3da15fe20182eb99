/* ctlfile.h -- qmail control files as lower-cased string sets.
 *
 * qmailval_load() reads a file the way qmail's control files are read by the
 * original plugin: one entry per line, surrounding whitespace removed
 * (CR included), empty lines and lines starting with '#' skipped, entries
 * lower-cased.  The file is bounded by maxbytes.  A missing file (ENOENT)
 * is an empty set.  Any other failure, a file over the bound, or a line
 * holding a NUL byte is an error: qmailval_load() returns -1 and writes a
 * one-line explanation naming the file (and line) into `err`.
 * The set owns its memory; qmailval_free() releases it. */
#ifndef QMAILVALIDATE_CTLFILE_H
#define QMAILVALIDATE_CTLFILE_H

#include <mailfront/str.h>
#include <stddef.h>

struct ctlset
{
  char** items;   /* sorted, NUL-terminated, lower-case */
  size_t count;
};

int qmailval_load(struct ctlset* set, const char* path, unsigned long maxbytes, str* err);
int qmailval_parse(struct ctlset* set, const char* path, const char* data, size_t len, str* err);
int qmailval_contains(const struct ctlset* set, const char* key, size_t len);
void qmailval_free(struct ctlset* set);

#endif

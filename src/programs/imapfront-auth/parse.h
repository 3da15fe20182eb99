/* parse.h -- imapfront-auth: the IMAP command-line parser (the rules of
 * the original imapfront-auth, stated below), without I/O.
 *
 * A command is one input line, possibly continued after literals:
 *   TAG SP COMMAND *(SP ARG)      ARG = atom | "quoted" | {N} / {N+}
 * The caller strips the line end (LF and one CR before it: line_read,
 * lib/linein.h) and feeds the
 * line to imap_parse_line().  The result says what happens next:
 *   IMAP_PARSE_DONE     the command is complete (tag, name, args)
 *   IMAP_PARSE_LITERAL  a literal of cmd->literal_len bytes follows; the
 *                       caller checks the size limit, sends "+ OK" unless
 *                       cmd->literal_plus (RFC 7888 non-synchronising),
 *                       reads exactly that many bytes, passes them to
 *                       imap_add_literal() and then feeds the next input
 *                       line to imap_parse_line() again
 *   IMAP_PARSE_ERROR    cmd->error is the reply text after "TAG " (e.g.
 *                       "BAD Syntax error: missing integer"); the tag is
 *                       cmd->tag when cmd->has_tag, else "*"
 *   IMAP_PARSE_NOMEM    out of memory
 * Whitespace is C isspace() (locale "C"); any other byte, NUL included,
 * is data.  Error texts are the reference's; a literal size that overflows
 * an unsigned long is reported as ULONG_MAX (the caller's limit rejects it).
 * Memory: the struct owns its strs; imap_command_free() releases them,
 * imap_command_reset() empties them for the next command (keeping storage). */
#ifndef IMAP_PARSE_H
#define IMAP_PARSE_H

#include <mailfront/str.h>
#include <stddef.h>

#define IMAP_MAX_ARGS 16

enum imap_parse_result { IMAP_PARSE_DONE, IMAP_PARSE_LITERAL, IMAP_PARSE_ERROR, IMAP_PARSE_NOMEM };

struct imap_command
{
  str tag;
  str name;
  str args[IMAP_MAX_ARGS];
  unsigned nargs;
  int has_tag;                  /* tag parsed: replies go to it, not "*" */
  int in_args;                  /* tag and name done: continuation lines hold arguments */
  unsigned long literal_len;    /* IMAP_PARSE_LITERAL: announced size */
  int literal_plus;             /* IMAP_PARSE_LITERAL: {N+} (no "+ OK") */
  const char* error;            /* IMAP_PARSE_ERROR: static text */
};

void imap_command_reset(struct imap_command* c);
void imap_command_free(struct imap_command* c);
enum imap_parse_result imap_parse_line(struct imap_command* c, const char* line, size_t len);
/* The literal's bytes become the next argument: 1 ok, 0 out of memory. */
int imap_add_literal(struct imap_command* c, const char* data, size_t len);

#endif

/* parse.c -- imapfront-auth: IMAP command-line parser (contract in
 * parse.h).  Every index is checked against the given length; nothing
 * here reads past `len`, allocates outside the command's strs, or does
 * I/O. */
#include "parse.h"
#include <limits.h>

static const char E_SYNTAX[] = "BAD Syntax error";
static const char E_MISSING_INT[] = "BAD Syntax error: missing integer";
static const char E_INVALID_INT[] = "BAD Syntax error: invalid integer";
static const char E_MISSING_LF[] = "BAD Syntax error: missing LF after integer";
static const char E_UNTERMINATED[] = "BAD Syntax error: unterminated quoted string";
static const char E_TOO_MANY[] = "BAD Too many command arguments";

static int is_space(char ch) { return ch == ' ' || (ch >= '\t' && ch <= '\r'); }
static int is_digit(char ch) { return ch >= '0' && ch <= '9'; }

static void empty(str* s)
{
  s->len = 0;
  if (s->s) s->s[0] = 0;
}

void imap_command_reset(struct imap_command* c)
{
  empty(&c->tag);
  empty(&c->name);
  for (unsigned i = 0; i < IMAP_MAX_ARGS; i++) empty(&c->args[i]);
  c->nargs = 0;
  c->has_tag = c->in_args = 0;
  c->literal_len = 0;
  c->literal_plus = 0;
  c->error = 0;
}

void imap_command_free(struct imap_command* c)
{
  str_free(&c->tag);
  str_free(&c->name);
  for (unsigned i = 0; i < IMAP_MAX_ARGS; i++) str_free(&c->args[i]);
  imap_command_reset(c);
}


static enum imap_parse_result fail(struct imap_command* c, const char* text)
{
  c->error = text;
  return IMAP_PARSE_ERROR;
}

/* Copy the next run of non-space bytes starting at *i into out. */
static int take_word(const char* line, size_t len, size_t* i, str* out)
{
  size_t start = *i;
  while (*i < len && !is_space(line[*i])) (*i)++;
  return str_copyb(out, line + start, (unsigned)(*i - start));
}

/* {N} or {N+} at line[*i] == '{'. */
static enum imap_parse_result literal(struct imap_command* c, const char* line, size_t len, size_t i)
{
  unsigned long n = 0;
  int over = 0;
  size_t first = ++i;
  for (; i < len && is_digit(line[i]); i++) {
    unsigned d = (unsigned)(line[i] - '0');
    if (n > (ULONG_MAX - d) / 10) over = 1;
    else n = n * 10 + d;
  }
  if (i == first) return fail(c, E_MISSING_INT);
  if (i == len) return fail(c, E_MISSING_LF);
  c->literal_plus = 0;
  if (line[i] == '+' && i + 1 < len && line[i + 1] == '}') {
    c->literal_plus = 1;
    i++;
  }
  if (line[i] != '}') return fail(c, E_INVALID_INT);
  if (i + 1 != len) return fail(c, E_MISSING_LF);
  c->literal_len = over ? ULONG_MAX : n;
  return IMAP_PARSE_LITERAL;
}

/* "..." at line[*i] == '"'; backslash quotes the next byte. */
static enum imap_parse_result quoted(struct imap_command* c, const char* line, size_t len, size_t* i, str* out)
{
  size_t j = *i + 1;
  empty(out);
  for (;;) {
    if (j >= len) return fail(c, E_UNTERMINATED);
    char ch = line[j++];
    if (ch == '"') break;
    if (ch == '\\') {
      if (j >= len) return fail(c, E_UNTERMINATED);
      ch = line[j++];
    }
    if (!str_catc(out, ch)) return IMAP_PARSE_NOMEM;
  }
  *i = j;
  return IMAP_PARSE_DONE;
}

enum imap_parse_result imap_parse_line(struct imap_command* c, const char* line, size_t len)
{
  size_t i = 0;
  if (!c->in_args) {
    while (i < len && is_space(line[i])) i++;
    if (i == len) return fail(c, E_SYNTAX);
    if (!take_word(line, len, &i, &c->tag)) return IMAP_PARSE_NOMEM;
    c->has_tag = 1;
    while (i < len && is_space(line[i])) i++;
    if (i == len) return fail(c, E_SYNTAX);
    if (!take_word(line, len, &i, &c->name)) return IMAP_PARSE_NOMEM;
    c->in_args = 1;
  }
  for (;;) {
    while (i < len && is_space(line[i])) i++;
    if (i == len) return IMAP_PARSE_DONE;
    if (c->nargs >= IMAP_MAX_ARGS) return fail(c, E_TOO_MANY);
    str* arg = &c->args[c->nargs];
    if (line[i] == '{') return literal(c, line, len, i);
    if (line[i] == '"') {
      enum imap_parse_result r = quoted(c, line, len, &i, arg);
      if (r != IMAP_PARSE_DONE) return r;
    }
    else if (!take_word(line, len, &i, arg))
      return IMAP_PARSE_NOMEM;
    c->nargs++;
  }
}

int imap_add_literal(struct imap_command* c, const char* data, size_t len)
{
  if (c->nargs >= IMAP_MAX_ARGS || len > STR_MAX) return 0;
  if (!str_copyb(&c->args[c->nargs], data, (unsigned)len)) return 0;
  c->nargs++;
  return 1;
}

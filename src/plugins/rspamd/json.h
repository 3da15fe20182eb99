/* json.h -- a small JSON reader for rspamd's replies.
 *
 * json_parse() checks a whole document (RFC 8259; nesting bounded by
 * JSON_MAX_DEPTH) and records one token per value, in document order; an
 * object's members are key and value tokens in turn.  Every token knows
 * where its subtree ends (`after`), so walking skips what it does not need.
 * Tokens point into the caller's text, which must outlive them.
 *
 * Contract:
 *   json_parse   0, or -1 for malformed text, too deep nesting, or memory.
 *   json_member  the value token of key in object token obj, or -1.
 *   json_string  a string token decoded to UTF-8 into out (escapes and
 *                \u surrogate pairs); -1 if not a string or invalid.
 *   json_number  a number token as a double; -1 if not a number.
 * Memory: j->t is malloc()ed; json_free releases it. */
#ifndef MF_RSPAMD_JSON_H
#define MF_RSPAMD_JSON_H

#include <mailfront/str.h>

#define JSON_MAX_DEPTH 32

enum json_type { JSON_OBJECT, JSON_ARRAY, JSON_STRING, JSON_NUMBER, JSON_LITERAL };

struct json_tok
{
  enum json_type type;
  unsigned start, end;      /* text of the token (strings: inside the quotes) */
  unsigned after;           /* index of the first token after this subtree */
};

struct json
{
  const char* s;
  unsigned len;
  struct json_tok* t;
  unsigned n, cap;
};

int json_parse(struct json* j, const char* s, unsigned len);
void json_free(struct json* j);
int json_member(const struct json* j, int obj, const char* key);
int json_string(const struct json* j, int tok, str* out);
int json_number(const struct json* j, int tok, double* out);

#endif

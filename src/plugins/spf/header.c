/* spf/header.c -- the Received-SPF (RFC 7208 section 9.1) and
 * Authentication-Results (RFC 8601) fields of plugin-spf (see spf.h).
 * Peer values (sender, HELO name) are never copied raw: they appear as a
 * quoted-string with escapes, as a dot-atom when they are one, or are
 * reduced to their domain or left out; no CR, LF or control character can
 * reach a header. */
#include "spf.h"
#include <string.h>

/* RFC 5322 atext plus the dot. */
static int atext(unsigned char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || (c && strchr("!#$%&'*+-/=?^_`{|}~.", c));
}

static int dot_atom_n(const char* s, size_t n)
{
  if (n == 0 || s[0] == '.' || s[n - 1] == '.') return 0;
  for (size_t i = 0; i < n; i++)
    if (!atext((unsigned char)s[i]) || (s[i] == '.' && s[i + 1] == '.')) return 0;
  return 1;
}

static int dot_atom(const char* s) { return dot_atom_n(s, strlen(s)); }

/* A quoted-string: '"' and '\' escaped, other bytes outside printable
 * ASCII replaced by '?'. */
static int cat_quoted(str* out, const char* s)
{
  if (!str_catc(out, '"')) return 0;
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if ((c == '"' || c == '\\') && !str_catc(out, '\\')) return 0;
    if (!str_catc(out, (c >= 32 && c < 127) ? (char)c : '?')) return 0;
  }
  return str_catc(out, '"');
}

static int cat_value(str* out, const char* s)
{
  return dot_atom(s) ? str_cats(out, s) : cat_quoted(out, s);
}

/* A name for a comment: safe characters only, parentheses excluded. */
static int cat_comment_text(str* out, const char* s)
{
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    int ok = atext(c) || c == '@' || c == ':' || c == '[' || c == ']';
    if (!str_catc(out, ok ? (char)c : '?')) return 0;
  }
  return 1;
}

/* The domain the result is about: the sender's, or the HELO name. */
static const char* subject(const struct spf_facts* f)
{
  if (f->helo_identity) return f->helo;
  const char* at = strrchr(f->from, '@');
  return at ? at + 1 : f->from;
}

struct comment { const char* result; const char* a; const char* b; };
/* "<a><domain><b><ip><c>" per result word. */
static const struct comment comments[] = {
  { "pass", "domain of ", " designates %s as permitted sender" },
  { "fail", "domain of ", " does not designate %s as permitted sender" },
  { "softfail", "domain of transitioning ", " does not designate %s as permitted sender" },
  { "neutral", "%s is neither permitted nor denied by domain of ", "" },
  { "none", "domain of ", " does not designate permitted sender hosts" },
  { "temperror", "temporary error in processing during lookup of ", "" },
  { "permerror", "permanent error in processing domain of ", "" },
};

/* Expand one template part: "%s" is the client address. */
static int cat_part(str* out, const char* t, const char* ip)
{
  const char* p = strstr(t, "%s");
  if (!p) return str_cats(out, t);
  return str_catb(out, t, (unsigned)(p - t)) && cat_comment_text(out, ip) && str_cats(out, p + 2);
}

int spf_received_header(str* out, const struct spf_facts* f)
{
  const struct comment* c = 0;
  for (size_t i = 0; i < sizeof comments / sizeof comments[0]; i++)
    if (strcmp(comments[i].result, f->result) == 0) c = &comments[i];
  if (!str_cats(out, "Received-SPF: ") || !str_cats(out, f->result) || !str_cats(out, " (")
      || !cat_comment_text(out, f->receiver) || !str_cats(out, ": "))
    return 0;
  if (c && !(cat_part(out, c->a, f->ip) && cat_comment_text(out, subject(f)) && cat_part(out, c->b, f->ip))) return 0;
  if (!str_cats(out, ")\n\tclient-ip=") || !cat_comment_text(out, f->ip) || !str_cats(out, "; envelope-from=")
      || !cat_quoted(out, f->from) || !str_cats(out, ";\n\thelo="))
    return 0;
  if (!cat_value(out, f->helo[0] ? f->helo : "unknown") || !str_cats(out, "; receiver=")
      || !cat_value(out, f->receiver) || !str_cats(out, "; identity=")
      || !str_cats(out, f->helo_identity ? "helo" : "mailfrom") || !str_cats(out, ";\n"))
    return 0;
  return 1;
}

int spf_authres_header(str* out, const struct spf_facts* f)
{
  if (!str_cats(out, "Authentication-Results: ") || !cat_value(out, f->receiver)
      || !str_cats(out, ";\n\tspf=") || !str_cats(out, f->result))
    return 0;
  if (f->helo_identity) {
    if (dot_atom(f->helo) && (!str_cats(out, " smtp.helo=") || !str_cats(out, f->helo))) return 0;
  } else {
    /* local-part@domain when both are dot-atoms, else the domain alone */
    const char* at = strrchr(f->from, '@');
    const char* v = 0;
    if (at && dot_atom(at + 1)) v = dot_atom_n(f->from, (size_t)(at - f->from)) ? f->from : at + 1;
    if (v && (!str_cats(out, " smtp.mailfrom=") || !str_cats(out, v))) return 0;
  }
  return str_cats(out, "\n");
}

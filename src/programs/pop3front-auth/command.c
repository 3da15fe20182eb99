/* command.c -- pop3front-auth: command-line helpers (contract in
 * command.h).  Everything is bounded by the given lengths. */
#include "command.h"
#include <string.h>

void pop3auth_split(const char* line, size_t len, struct pop3auth_cmdline* out)
{
  size_t i = 0;
  while (i < len && line[i] != ' ') i++;
  out->verb = line;
  out->verblen = i;
  while (i < len && line[i] == ' ') i++;
  out->arg = line + i;
  out->arglen = len - i;
}

static char ascii_upper(char c) { return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c; }

int pop3auth_verb_is(const struct pop3auth_cmdline* c, const char* name)
{
  size_t i;
  for (i = 0; i < c->verblen; i++)
    if (name[i] == 0 || ascii_upper(c->verb[i]) != name[i]) return 0;
  return name[i] == 0;
}

size_t pop3auth_chomp(const char* line, size_t len)
{
  if (len > 0 && line[len - 1] == '\n') len--;
  if (len > 0 && line[len - 1] == '\r') len--;
  return len;
}

int pop3auth_credential_ok(const char* s, size_t len, size_t max)
{
  return len <= max && (len == 0 || memchr(s, 0, len) == 0);
}

size_t pop3auth_mech_len(const char* arg, size_t len)
{
  size_t i = 0;
  while (i < len && arg[i] != ' ') i++;
  return i;
}

/* command.c -- pop3front-auth: command-line helpers (contract in
 * command.h).  Everything is bounded by the given lengths. */
#include "command.h"
#include <string.h>

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

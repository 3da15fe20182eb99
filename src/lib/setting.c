/* setting.c -- see setting.h. */
#include "lib/setting.h"
#include <mailfront/mailfront.h>

unsigned long env_setting(const char* name, const struct env_number* spec)
{
  return env_number_parse(session_getenv(name), spec);
}

unsigned long env_setting2(const char* first, const char* second, const struct env_number* spec)
{
  const char* v = session_getenv(first);
  if (!v && second) v = session_getenv(second);
  return env_number_parse(v, spec);
}

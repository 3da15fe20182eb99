/* progenv.c -- see progenv.h (the rule is stated there). */
#include "progenv.h"
#include <stdlib.h>

unsigned long env_number_parse(const char* v, const struct env_number* spec)
{
  unsigned long n = 0;
  int digits = 0, over = 0;
  if (!v) return spec->dflt;
  while (*v == ' ' || *v == '\t') v++;
  for (; *v >= '0' && *v <= '9'; v++) {
    unsigned long d = (unsigned long)(*v - '0');
    digits = 1;
    if (over || n > (~0UL - d) / 10) { over = 1; continue; }
    n = n * 10 + d;
  }
  if (!digits) return spec->dflt;
  if (over || n > spec->max) return spec->max;
  if (n == 0) return spec->zero_ok ? 0 : spec->dflt;
  return n < spec->min ? spec->min : n;
}

unsigned long env_number(const char* name, const struct env_number* spec)
{
  return env_number_parse(getenv(name), spec);
}

unsigned long mf_env_number(const char* name, unsigned long max)
{
  const struct env_number spec = { 0, 0, max, 1 };
  return env_number(name, &spec);
}

unsigned long mf_env_override(const char* first, const char* second, unsigned long max)
{
  return getenv(first) ? mf_env_number(first, max) : mf_env_number(second, max);
}

/* progenv.c -- see progenv.h. */
#include "progenv.h"
#include <stdlib.h>
#include <time.h>

long long mf_mono_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

unsigned long mf_env_number(const char* name, unsigned long max)
{
  const char* v = getenv(name);
  unsigned long n = 0;
  if (!v) return 0;
  for (; *v >= '0' && *v <= '9'; v++) {
    unsigned long d = (unsigned long)(*v - '0');
    if (n > (max - d) / 10) return max;
    n = n * 10 + d;
  }
  return n;
}

unsigned long mf_env_override(const char* first, const char* second, unsigned long max)
{
  return getenv(first) ? mf_env_number(first, max) : mf_env_number(second, max);
}

/* linein.c -- see linein.h. */
#include "lib/linein.h"

size_t line_chomp(const char* line, size_t len)
{
  if (len > 0 && line[len - 1] == '\n') len--;
  if (len > 0 && line[len - 1] == '\r') len--;
  return len;
}

int line_read(ibuf* in, str* line, unsigned long max, size_t* len, int* toolong)
{
  int r = ibuf_getline(in, line, max, toolong);
  *len = r > 0 ? line_chomp(line->s, line->len) : 0;
  return r;
}

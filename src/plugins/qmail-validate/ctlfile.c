/* ctlfile.c -- loading and searching qmail control files (see ctlfile.h).
 * Pure library code: no mailfront session calls, errors as values. */
#include "ctlfile.h"
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int cmp_items(const void* a, const void* b)
{
  return strcmp(*(char* const*)a, *(char* const*)b);
}

void qmailval_free(struct ctlset* set)
{
  for (size_t i = 0; i < set->count; i++) free(set->items[i]);
  free(set->items);
  set->items = 0;
  set->count = 0;
}

static void set_err(str* err, const char* path, unsigned long line, const char* what)
{
  err->len = 0;
  str_cats(err, path);
  if (line) { str_cats(err, " line "); str_catu(err, line); }
  str_cats(err, ": ");
  str_cats(err, what);
}

int qmailval_parse(struct ctlset* set, const char* path, const char* data, size_t len, str* err)
{
  struct ctlset s = { 0, 0 };
  size_t cap = 0;
  unsigned long lineno = 0;
  size_t pos = 0;
  while (pos < len) {
    const char* line = data + pos;
    const char* nl = memchr(line, '\n', len - pos);
    size_t n = nl ? (size_t)(nl - line) : len - pos;
    pos += n + (nl ? 1 : 0);
    lineno++;
    if (memchr(line, 0, n)) {
      set_err(err, path, lineno, "NUL byte in line");
      qmailval_free(&s);
      return -1;
    }
    while (n > 0 && isspace((unsigned char)*line)) { line++; n--; }
    while (n > 0 && isspace((unsigned char)line[n - 1])) n--;
    if (n == 0 || line[0] == '#') continue;
    if (s.count == cap) {
      size_t ncap = cap ? cap * 2 : 16;
      char** ni = realloc(s.items, ncap * sizeof *ni);
      if (!ni) { set_err(err, path, 0, "out of memory"); qmailval_free(&s); return -1; }
      s.items = ni;
      cap = ncap;
    }
    char* item = malloc(n + 1);
    if (!item) { set_err(err, path, 0, "out of memory"); qmailval_free(&s); return -1; }
    for (size_t i = 0; i < n; i++) item[i] = (char)tolower((unsigned char)line[i]);
    item[n] = 0;
    s.items[s.count++] = item;
  }
  if (s.count) qsort(s.items, s.count, sizeof *s.items, cmp_items);
  qmailval_free(set);
  *set = s;
  return 0;
}

int qmailval_load(struct ctlset* set, const char* path, unsigned long maxbytes, str* err)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    if (errno == ENOENT) { qmailval_free(set); return 0; }
    set_err(err, path, 0, strerror(errno));
    return -1;
  }
  struct stat st;
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
    set_err(err, path, 0, S_ISDIR(st.st_mode) ? "is a directory" : "not a regular file");
    close(fd);
    return -1;
  }
  if ((unsigned long long)st.st_size > maxbytes) {
    set_err(err, path, 0, "file larger than $QMAILVALIDATE_MAXBYTES");
    close(fd);
    return -1;
  }
  size_t len = (size_t)st.st_size, got = 0;
  char* buf = malloc(len + 1);
  if (!buf) { set_err(err, path, 0, "out of memory"); close(fd); return -1; }
  while (got < len) {
    ssize_t r = read(fd, buf + got, len - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) { set_err(err, path, 0, strerror(errno)); free(buf); close(fd); return -1; }
    if (r == 0) break;   /* shrank meanwhile: use what is there */
    got += (size_t)r;
  }
  close(fd);
  int rc = qmailval_parse(set, path, buf, got, err);
  free(buf);
  return rc;
}

int qmailval_contains(const struct ctlset* set, const char* key, size_t len)
{
  size_t lo = 0, hi = set->count;
  if (memchr(key, 0, len)) return 0;   /* items never hold a NUL */
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    const char* it = set->items[mid];
    int c = strncmp(it, key, len);
    if (c == 0 && it[len] != 0) c = 1;
    if (c == 0) return 1;
    if (c < 0) lo = mid + 1; else hi = mid;
  }
  return 0;
}

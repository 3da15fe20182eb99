/* Unit tests of qmail-validate's control file reader (ctlfile.c). */
#include "../../src/plugins/qmail-validate/ctlfile.c"
#include "tap.h"
#include <stdio.h>

static int has(const struct ctlset* s, const char* k) { return qmailval_contains(s, k, strlen(k)); }

int main(void)
{
  struct ctlset s = { 0, 0 };
  str err = { 0, 0, 0 };
  const char text[] = "  Lead.COM\r\n#comment\n \t#also\n\nb.org\t \nmid dle\nlast";
  CHECK(qmailval_parse(&s, "control/rcpthosts", text, sizeof text - 1, &err) == 0, "parse ok");
  CHECK(s.count == 4, "four entries");
  CHECK(has(&s, "lead.com"), "stripped and lower-cased");
  CHECK(has(&s, "b.org"), "trailing tab stripped");
  CHECK(has(&s, "mid dle"), "inner space kept");
  CHECK(has(&s, "last"), "final line without LF");
  CHECK(!has(&s, "#comment") && !has(&s, "#also"), "comments skipped");
  CHECK(!has(&s, "lead.co") && !has(&s, "lead.com.") && !has(&s, ""), "exact match only");
  CHECK(!qmailval_contains(&s, "last\0x", 6), "key with NUL never matches");

  const char bad[] = "a.com\nb\0c\n";
  CHECK(qmailval_parse(&s, "control/badmailfrom", bad, sizeof bad - 1, &err) == -1, "NUL byte rejected");
  CHECK(err.s && strcmp(err.s, "control/badmailfrom line 2: NUL byte in line") == 0, "error names file and line");
  CHECK(s.count == 4, "set unchanged after an error");

  /* random bytes: never a fault, and every entry is trimmed and lower-case */
  unsigned seed = 99;
  int good = 1;
  for (int round = 0; round < 2000 && good; round++) {
    char buf[200];
    for (size_t i = 0; i < sizeof buf; i++) {
      seed = seed * 1103515245u + 12345u;
      unsigned v = (seed >> 16) % 8u;
      buf[i] = v == 0 ? '\n' : v == 1 ? ' ' : v == 2 ? '#' : v == 3 ? 'A' : (char)(seed >> 8);
    }
    struct ctlset f = { 0, 0 };
    if (qmailval_parse(&f, "fuzz", buf, sizeof buf, &err) == 0)
      for (size_t i = 0; i < f.count; i++) {
        size_t l = strlen(f.items[i]);
        if (l == 0 || f.items[i][0] == '#' || isspace((unsigned char)f.items[i][l - 1]) || strchr(f.items[i], 'A'))
          good = 0;
      }
    qmailval_free(&f);
  }
  CHECK(good, "2000 random files: entries trimmed, lower-cased, no comments");

  char dir[] = "/tmp/qmailval.XXXXXX";
  if (!mkdtemp(dir)) return 1;
  char path[256];
  snprintf(path, sizeof path, "%s/missing", dir);
  CHECK(qmailval_load(&s, path, 1000, &err) == 0 && s.count == 0, "missing file is empty");
  CHECK(qmailval_load(&s, dir, 1000, &err) == -1, "directory is an error");
  snprintf(path, sizeof path, "%s/f", dir);
  FILE* f = fopen(path, "w");
  fputs("x.com\ny.com\n", f);
  fclose(f);
  CHECK(qmailval_load(&s, path, 1000, &err) == 0 && has(&s, "y.com"), "file loaded");
  CHECK(qmailval_load(&s, path, 5, &err) == -1 && strstr(err.s, "larger"), "size bound enforced");
  unlink(path);
  rmdir(dir);
  qmailval_free(&s);
  str_free(&err);
  return done();
}

/* Unit tests: the queue-directory writer (backends.md "queuedir"). */
#include "tap.h"
#include "../../src/core/session.c"
#include "../../src/core/responses.c"
#include "../../src/core/handlers.c"
#include "../../src/core/queuedir.c"
#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>

static char top[256];

static int count(const char* sub, char* name)
{
  char path[512];
  snprintf(path, sizeof path, "%s/%s", top, sub);
  DIR* d = opendir(path);
  int n = 0;
  struct dirent* e;
  while (d && (e = readdir(d)))
    if (e->d_name[0] != '.') { n++; if (name) strcpy(name, e->d_name); }
  if (d) closedir(d);
  return n;
}

static int file_is(const char* name, const char* want, size_t wlen)
{
  char path[512], buf[4096];
  snprintf(path, sizeof path, "%s/new/%s", top, name);
  FILE* f = fopen(path, "rb");
  if (!f) return 0;
  size_t n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  return n == wlen && memcmp(buf, want, wlen) == 0;
}

static str S(const char* c) { str s = {0, 0, 0}; str_copys(&s, c); return s; }

int main(void)
{
  struct session s;
  char tmpl[] = "/tmp/mfqd.XXXXXX", name[256], path[512];
  snprintf(top, sizeof top, "%s", mkdtemp(tmpl));
  snprintf(path, sizeof path, "%s/tmp", top); mkdir(path, 0700);
  snprintf(path, sizeof path, "%s/new", top); mkdir(path, 0700);
  session_init(&s, 0, 0, 1, 0);
  struct queuedir* qd = queuedir_open("QUEUEDIR");
  CHECK(qd != 0, "a writer opens");
  str a = S("a@b"), r1 = S("c@d"), r2 = S(""), none = {0, 0, 0};

  unsetenv("QUEUEDIR");
  CHECK(queuedir_sender(qd, &a, &none) == &resp_qd_noconfig, "missing $QUEUEDIR refused");
  setenv("QUEUEDIR", top, 1);

  /* SMTP order: envelope, then data. */
  CHECK(queuedir_sender(qd, &a, &none) == 0, "sender creates the file");
  CHECK(count("tmp", 0) == 1 && count("new", 0) == 0, "file is written under tmp/");
  CHECK(queuedir_recipient(qd, &r1, &none) == 0 && queuedir_recipient(qd, &r2, &none) == 0, "recipients");
  CHECK(queuedir_data_start(qd, -1) == 0, "data start");
  queuedir_data_block(qd, "hello\n", 6);
  queuedir_data_block(qd, "world\n", 6);
  CHECK(queuedir_message_end(qd, -1) == 0, "message end accepts");
  CHECK(count("tmp", 0) == 0 && count("new", name) == 1, "moved to new/, tmp/ empty");
  CHECK(file_is(name, "a@b\0c@d\0\0\0hello\nworld\n", 22), "SMTP file format");
  CHECK(strlen(name) > 20 && name[10] == '.' && name[17] == '.', "name is SECONDS.MICROSECONDS.PID");
  char first[256];
  strcpy(first, name);

  /* QMQP/QMTP order: data before the envelope, same format. */
  queuedir_reset(qd);
  CHECK(queuedir_data_start(qd, -1) == 0, "data start before envelope spools");
  queuedir_data_block(qd, "body\n", 5);
  CHECK(queuedir_sender(qd, &a, &none) == 0 && queuedir_recipient(qd, &r1, &none) == 0, "envelope after data");
  CHECK(queuedir_message_end(qd, -1) == 0, "message end");
  CHECK(count("new", 0) == 2, "second message queued");
  DIR* d = opendir(path);
  struct dirent* e;
  while ((e = readdir(d))) if (e->d_name[0] != '.' && strcmp(e->d_name, first) != 0) strcpy(name, e->d_name);
  closedir(d);
  CHECK(file_is(name, "a@b\0c@d\0\0body\n", 14), "same format when data comes first");

  /* reset of an unfinished message removes it. */
  CHECK(queuedir_sender(qd, &a, &none) == 0 && queuedir_data_start(qd, -1) == 0, "unfinished message");
  queuedir_data_block(qd, "x", 1);
  queuedir_reset(qd);
  CHECK(count("tmp", 0) == 0 && count("new", 0) == 2, "reset removes the unfinished file");

  /* unwritable destination: error, nothing left behind. */
  setenv("QUEUEDIR_DEST", "missing", 1);
  CHECK(queuedir_sender(qd, &a, &none) == 0 && queuedir_data_start(qd, -1) == 0, "start with missing dest");
  CHECK(queuedir_message_end(qd, -1) == &resp_qd_write, "link failure is a 451");
  CHECK(count("tmp", 0) == 0, "and leaves no temp file");
  unsetenv("QUEUEDIR_DEST");
  str_free(&a); str_free(&r1); str_free(&r2);
  queuedir_close(qd);
  session_free(&s);
  return done();
}

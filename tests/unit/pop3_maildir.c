/* pop3_maildir.c -- unit tests of pop3front-maildir's maildir module: size
 * indicators (S=/W=), UIDs, read flags, the QUIT rename suffix, the sort
 * order, and scan/commit on a scratch maildir.  The expected sizes and UIDs
 * are what the 2.12 oracle reports for the same names. */
#include "tap.h"
#include "programs/pop3front-maildir/maildir.c"
#include <stdlib.h>

static unsigned long size_of(const char* name) { return msg_name_size(name, strlen(name)); }

static int uid_is(const char* name, const char* uid)
{
  size_t n = msg_uid_len(name, strlen(name));
  return n == strlen(uid) && memcmp(name, uid, n) == 0;
}

static void test_sizes(void)
{
  static const struct { const char* name; unsigned long size; } t[] = {
    { "1.a,S=10,W=12:2,", 12 }, { "2.a,W=12", 12 }, { "3.a,S=abc", 0 }, { "4.a,S=12x", 12 },
    { "5.a,X=1,S=10", 10 }, { "6.a,S=99999999999999999999999", ULONG_MAX },
    { "7.abc,foo,S=99", 0 }, { "8.a:2,,S=33", 0 }, { "9.a,S=0", 0 },
    { "10.a,S=-5", (unsigned long)-5 }, { "11.a,W=7,S=9", 7 }, { "12.a,S=", 0 },
    { "13.a,SS=4", 0 }, { "14.a,x=", 0 }, { "15.a,,S=4", 0 }, { "16.a,S=+4", 4 },
    { "17.a,S= 4", 4 }, { "19.a,W=4294967296", 4294967296UL }, { "20,S=3", 3 },
    { "22.a,S=4,foo", 4 }, { "23.a,foo=1,S=4", 0 }, { "24.a,W=4,S=5,W=6", 6 },
    { "25.a,S=4:2,,W=9", 4 }, { "26.a,S=4,W=abc", 0 }, { "27.a,S=4,W=0", 0 },
    { "28.a,S=4,Wx=5", 4 }, { "29.a,xS=5", 0 }, { "30.a,S=4,W=", 0 }, { "31.a,s=4", 0 },
    { "32.a,ab=4,S=5", 0 }, { "33.a,S=6,S=7", 6 }, { "34.a,W=8,W=9", 9 },
    { "35.a,a,S=5", 0 }, { "36.a,=,S=5", 0 }, { "37.a,S=5,", 5 }, { "38.a,S", 0 },
    { "40.a,,,S=5", 0 }, { "41.a,S=0,S=5", 5 }, { "42.a,W=0,S=5", 5 }, { "43.a,W=5,S=0", 5 },
    { "44.a,S=4x,W=6", 6 }, { "47.a,X=abc,S=7", 7 }, { "49.a,S=7,,W=8", 8 },
    { "50.a,S=7,x,W=8", 8 }, { "52.a,S=7,Wq=3,W=8", 8 }, { "53.a,S=7 ,W=8", 8 },
    { "54.a,S=1,W=8:2,S", 8 }, { "56.a,X=,W=3", 3 }, { "57.a,S=3,S=0", 3 },
    { "58.a,W=3,W=0", 0 }, { "59.a,W=3:,W=5", 3 }, { "60.a,W=3foo:2,", 3 }, { "", 0 },
    { ",", 0 }, { ",S", 0 }, { ",S=", 0 }, { ",S=1", 1 }, { "a,:S=1", 0 },
  };
  int bad = 0;
  for (size_t i = 0; i < sizeof t / sizeof *t; i++)
    if (size_of(t[i].name) != t[i].size) {
      bad++;
      printf("# size of %s: %lu, expected %lu\n", t[i].name, size_of(t[i].name), t[i].size);
    }
  CHECK(bad == 0, "size indicators as the reference reads them");
  /* The size scan never reads past the base name. */
  CHECK(msg_name_size("1,S=5", 3) == 0, "size: bounded by len");
  CHECK(msg_name_size("1,S=59", 5) == 5, "size: number bounded by len");
}

static void test_uids(void)
{
  CHECK(uid_is("1000.2.host,S=99", "1000.2.host"), "uid: size indicator cut");
  CHECK(uid_is("1.a,S=10,W=12:2,S", "1.a"), "uid: info and indicators cut");
  CHECK(uid_is("7.abc,foo,S=99", "7.abc,foo,S=99"), "uid: first comma not an indicator");
  CHECK(uid_is("36.a,=,S=5", "36.a,=,S=5"), "uid: ',=' is no indicator");
  CHECK(uid_is("14.a,x=", "14.a"), "uid: any letter before '='");
  CHECK(uid_is("38.a,S", "38.a,S"), "uid: comma at the end");
  CHECK(uid_is("a,:=5", "a,"), "uid: indicator test stops at ':'");
  CHECK(uid_is("abc:2,", "abc"), "uid: info cut");
  CHECK(uid_is("", ""), "uid: empty");
  char longname[100];
  memset(longname, 'a', 90);
  memcpy(longname + 90, ",S=5", 5);
  CHECK(msg_uid_len(longname, strlen(longname)) == 70, "uid: at most 70 characters");
}

static void test_flags(void)
{
  static const struct { const char* name; int read; const char* suffix; } t[] = {
    { "101.a", 0, ":2,S" }, { "102.b:2,", 0, "S" }, { "103.c:2,S", 1, "" },
    { "105.e:2,RF", 0, "S" }, { "106.f:1,xx", 0, "" }, { "106.f:1,S", 0, "" },
    { "111.k:2,aSb", 1, "" }, { "110.j:3,foo", 0, "" }, { "x:", 0, "" }, { "x:2", 0, "" },
    { "x,S=5:2,T", 0, "S" }, { "x:2,s", 0, "S" }, { "S:2,", 0, "S" },
  };
  int bad = 0;
  for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
    size_t len = strlen(t[i].name);
    if (msg_name_read(t[i].name, len) != t[i].read || strcmp(msg_read_suffix(t[i].name, len), t[i].suffix)) {
      bad++;
      printf("# flags of %s: read %d suffix '%s'\n", t[i].name, msg_name_read(t[i].name, len),
             msg_read_suffix(t[i].name, len));
    }
  }
  CHECK(bad == 0, "read flag and QUIT suffix");
}

static struct msg mk(const char* name)
{
  struct msg m;
  memset(&m, 0, sizeof m);
  msg_parse_name(&m, name, strlen(name));
  m.name = name;
  return m;
}

static int before(const char* a, const char* b)
{
  struct msg x = mk(a), y = mk(b);
  return msg_compare(&x, &y) < 0 && msg_compare(&y, &x) > 0;
}

static void test_order(void)
{
  CHECK(before("999.x:2,S", "1000.1.host"), "order: numeric");
  CHECK(before("9.a", "10.a"), "order: 9 before 10");
  CHECK(before("1000.1.host", "1000.2.host,S=99"), "order: equal numbers byte-wise");
  CHECK(before("007.b", "7.a") && before("7.a", "8.a"), "order: leading zeros");
  CHECK(before("10.a", "abc") && before("-x", "9"), "order: digit vs non-digit byte-wise");
  CHECK(before("abc", "abd"), "order: byte-wise");
  CHECK(before("a", "\xe9"), "order: bytes are unsigned");
  CHECK(before("99999999999999999999999.a", "100000000000000000000000.a"), "order: long numbers by value");
  struct msg x = mk("5.a"), y = mk("5.a");
  CHECK(msg_compare(&x, &y) == 0, "order: equal names");
}

/* ---- scan and commit on a scratch maildir ---------------------------- */

static void put(const char* path, const char* content)
{
  FILE* f = fopen(path, "w");
  if (!f) { perror(path); exit(2); }
  fputs(content, f);
  fclose(f);
}

static int exists(const char* path) { struct stat st; return lstat(path, &st) == 0; }

static void test_scan_commit(void)
{
  char tmpl[] = "/tmp/pop3_maildir.XXXXXX";
  char* dir = mkdtemp(tmpl);
  if (!dir || chdir(dir) < 0) { perror("mkdtemp"); exit(2); }
  struct maildir md = { 0, 0, 0, { 0, 0, 0 } };
  struct scan_limits nolim = { 0, 0, 0 };
  CHECK(maildir_scan(&md, &nolim) < 0 && md.count == 0, "scan: missing cur fails");
  mkdir("cur", 0700);
  CHECK(maildir_scan(&md, &nolim) < 0, "scan: missing new fails");
  mkdir("new", 0700);
  mkdir("tmp", 0700);
  put("new/20.b", "hello\n");
  put("new/10.a,S=99", "x\n");
  put("new/.hidden", "x\n");
  put("cur/30.c:2,S", "abc\n");
  put("cur/40.d:2,F", "abcd\n");
  put("cur/50.e", "abcde\n");
  if (symlink("/nonexistent", "cur/60.f") < 0) perror("symlink");
  CHECK(maildir_scan(&md, &nolim) == 0 && md.count == 6, "scan: six messages, dot file skipped");
  const char* order[] = { "10.a,S=99", "20.b", "30.c:2,S", "40.d:2,F", "50.e", "60.f" };
  int ok = md.count == 6;
  for (unsigned long i = 0; ok && i < 6; i++) ok = strcmp(md.msgs[i].name, order[i]) == 0;
  CHECK(ok, "scan: sorted");
  CHECK(md.count == 6 && md.msgs[0].size == 99 && md.msgs[1].size == 6 && md.msgs[0].dir == MSG_NEW,
        "scan: size from name, else from stat");
  CHECK(md.count == 6 && (md.msgs[5].flags & MSG_HIDDEN) && md.msgs[5].size == 0, "scan: stat failure hides");
  CHECK(md.count == 6 && (md.msgs[2].flags & MSG_READ) && !(md.msgs[3].flags & MSG_READ), "scan: read flags");

  struct scan_limits lim = { 0, 1, 1 };
  struct maildir small = { 0, 0, 0, { 0, 0, 0 } };
  CHECK(maildir_scan(&small, &lim) == 0 && small.count == 2, "scan: per-directory limits");
  lim = (struct scan_limits){ 3, 0, 0 };
  CHECK(maildir_scan(&small, &lim) == 0 && small.count == 3, "scan: total limit");
  lim = (struct scan_limits){ 0, 4, 0 };
  CHECK(maildir_scan(&small, &lim) == 0 && small.count == 6, "scan: limit above count");
  maildir_free(&small);

  str p = { 0, 0, 0 };
  CHECK(md.count == 6 && maildir_path(&p, &md.msgs[1]) && strcmp(p.s, "new/20.b") == 0, "path: new/");
  str_free(&p);

  if (md.count == 6) {
    md.msgs[0].flags |= MSG_READ;      /* new, retrieved */
    md.msgs[3].flags |= MSG_READ;      /* cur, 2,F retrieved */
    md.msgs[4].flags |= MSG_DELETED;   /* cur, deleted */
    md.msgs[5].flags |= MSG_DELETED;   /* hidden: never touched */
  }
  put("cur/20.b", "someone else's file\n");   /* a clash: never replaced */
  maildir_commit(&md);
  CHECK(exists("cur/10.a,S=99:2,S") && !exists("new/10.a,S=99"), "commit: read new message gets :2,S");
  CHECK(exists("new/20.b") && exists("cur/20.b"), "commit: existing target not replaced");
  CHECK(exists("cur/30.c:2,S"), "commit: flagged message unchanged");
  CHECK(exists("cur/40.d:2,FS") && !exists("cur/40.d:2,F"), "commit: S appended");
  CHECK(!exists("cur/50.e"), "commit: deleted message unlinked");
  CHECK(exists("cur/60.f"), "commit: hidden message left alone");
  CHECK(exists("new/.hidden"), "commit: dot file left alone");

  /* A failed rescan keeps the old list. */
  unsigned long before_count = md.count;
  rename("new", "new.x");
  CHECK(maildir_scan(&md, &nolim) < 0 && md.count == before_count, "scan: failure keeps the list");
  maildir_free(&md);
  CHECK(md.count == 0 && md.msgs == 0, "free: empty");
  char cmd[64];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (chdir("/") < 0 || system(cmd) != 0) printf("# cleanup failed\n");
}

/* Random names over the characters that matter: nothing is read past the
 * name (ASAN build: names are exact-size heap copies), the UID is a
 * prefix of the base name of at most 70 bytes, and sorting is consistent
 * (antisymmetric). */
static void fuzz(void)
{
  static const char alphabet[] = ",,SW==::0123456789a2.";
  unsigned seed = 777;
  int bad = 0;
  for (int iter = 0; iter < 100000; iter++) {
    char buf[2][100];
    size_t len[2];
    char* copy[2];
    struct msg m[2];
    for (int k = 0; k < 2; k++) {
      seed = seed * 1103515245u + 12345u;
      len[k] = (seed >> 16) % 90;
      for (size_t i = 0; i < len[k]; i++) {
        seed = seed * 1103515245u + 12345u;
        buf[k][i] = alphabet[(seed >> 16) % (sizeof alphabet - 1)];
      }
      copy[k] = malloc(len[k] + 1);
      memcpy(copy[k], buf[k], len[k]);
      copy[k][len[k]] = 0;
      memset(&m[k], 0, sizeof m[k]);
      msg_parse_name(&m[k], copy[k], len[k]);
      m[k].name = copy[k];
      const char* colon = memchr(copy[k], ':', len[k]);
      size_t base = colon ? (size_t)(colon - copy[k]) : len[k];
      if (m[k].uidlen > base || m[k].uidlen > MSG_UID_MAX) bad++;
      (void)msg_read_suffix(copy[k], len[k]);
    }
    int ab = msg_compare(&m[0], &m[1]), ba = msg_compare(&m[1], &m[0]);
    if ((ab < 0) != (ba > 0) || (ab == 0) != (ba == 0)) bad++;
    free(copy[0]);
    free(copy[1]);
  }
  CHECK(bad == 0, "fuzz: names parsed within bounds, order antisymmetric");
}

int main(void)
{
  test_sizes();
  test_uids();
  test_flags();
  test_order();
  fuzz();
  test_scan_commit();
  return done();
}

/* Unit tests of the streamed header scanner and the header edits
 * (src/lib/mailheaders.c), fed in every split of the input. */
#include "../../src/lib/mailheaders.c"
#include "tap.h"
#include <stdio.h>

static str seen;

static int h_header(void* c, const char* n, unsigned nl, const char* v, unsigned vl)
{
  (void)c;
  return str_catc(&seen, '[') && str_catb(&seen, n, nl) && str_catc(&seen, '=') && str_catb(&seen, v, vl)
    && str_catc(&seen, ']') ? 0 : -1;
}
static int h_eoh(void* c) { (void)c; return str_cats(&seen, "<EOH>") ? 0 : -1; }
static int h_body(void* c, const char* b, unsigned len) { (void)c; return str_catb(&seen, b, len) ? 0 : -1; }
static const struct mh_callbacks cb = { 0, h_header, h_eoh, h_body };

/* Feeds msg in two pieces split at every offset; every split must give
 * the same events as `want` and the same body offset. */
static int scan_all_splits(const char* msg, const char* want, unsigned long long body_off, unsigned long max)
{
  size_t n = strlen(msg);
  for (size_t cut = 0; cut <= n; cut++) {
    struct mh_scan s;
    mh_scan_init(&s, max);
    seen.len = 0;
    if (mh_feed(&s, msg, cut, &cb) < 0 || mh_feed(&s, msg + cut, n - cut, &cb) < 0 || mh_finish(&s, &cb) < 0)
      return 0;
    int ok = seen.len == strlen(want) && memcmp(seen.s, want, seen.len) == 0 && s.body_off == body_off;
    if (!ok) printf("# cut %zu: got %.*s (body at %llu)\n", cut, (int)seen.len, seen.s, s.body_off);
    mh_scan_free(&s);
    if (!ok) return 0;
  }
  return 1;
}

static int rewrite(const char* msg, unsigned long long base, int (*edit)(struct mh_list*), const char* want)
{
  FILE* in = tmpfile();
  FILE* out = tmpfile();
  fputs(msg, in);
  fflush(in);
  struct mh_scan s;
  mh_scan_init(&s, 1 << 20);
  struct mh_list l = { 0, 0, 0, 0 };
  static const struct mh_callbacks none = { 0, 0, 0, 0 };
  int ok = mh_feed(&s, msg + base, strlen(msg) - base, &none) == 0 && mh_finish(&s, &none) == 0
    && mh_list_load(&l, &s) == 0 && edit(&l) == 0 && mh_write(fileno(out), fileno(in), (off_t)base, &s, &l, -1) == 0;
  char buf[4096];
  ssize_t n = pread(fileno(out), buf, sizeof buf - 1, 0);
  buf[n > 0 ? n : 0] = 0;
  ok = ok && strcmp(buf, want) == 0;
  if (!ok) printf("# got [%s]\n", buf);
  mh_list_free(&l);
  mh_scan_free(&s);
  fclose(in);
  fclose(out);
  return ok;
}

static int e_none(struct mh_list* l) { (void)l; return 0; }
static int e_add(struct mh_list* l) { return mh_add(l, "X-A", 3, "v", 1, 0); }
static int e_ins(struct mh_list* l) { return mh_insert(l, 0, "X-I", 3, "top", 3, 0) | mh_insert(l, 99, "X-E", 3, "end", 3, 0); }
static int e_chg2(struct mh_list* l) { return mh_change(l, 2, "x-d", 3, "new", 3, 0); }
static int e_del(struct mh_list* l) { return mh_change(l, 1, "X-D", 3, "", 0, 0); }
static int e_missing(struct mh_list* l) { return mh_change(l, 3, "X-D", 3, "added", 5, 0); }
static int e_fold(struct mh_list* l) { return mh_add(l, "X-F", 3, "a\r\nb\nc", 6, 0); }
static int e_lead(struct mh_list* l) { return mh_add(l, "X-L", 3, "  raw", 5, 1); }
static int e_badname(struct mh_list* l) { return mh_add(l, "X A", 3, "v", 1, 0) == 0 ? -1 : 0; }

int main(void)
{
  CHECK(scan_all_splits("A: 1\nB: 2\n\nbody\n", "[A= 1\n][B= 2\n]<EOH>body\n", 11, 1 << 20), "LF message");
  CHECK(scan_all_splits("A: 1\r\nB:\r\n two\r\n\r\nbody\r\n", "[A= 1\r\n][B=\r\n two\r\n]<EOH>body\r\n", 18, 1 << 20),
        "CRLF message with a folded field");
  CHECK(scan_all_splits("A: 1\nnot a header\nmore\n", "[A= 1\n]<EOH>not a header\nmore\n", 5, 1 << 20),
        "a line that is no field starts the body");
  CHECK(scan_all_splits(" lead\nA: 1\n", "<EOH> lead\nA: 1\n", 0, 1 << 20), "continuation of nothing");
  CHECK(scan_all_splits("A: 1\nB: 2", "[A= 1\n][B= 2]<EOH>", 9, 1 << 20), "no newline at the end");
  CHECK(scan_all_splits("A: 1\n", "[A= 1\n]<EOH>", 5, 1 << 20), "only fields");
  CHECK(scan_all_splits("", "<EOH>", 0, 1 << 20), "empty message");
  CHECK(scan_all_splits("A: 1\nB: 22222\n\nx\n", "[A= 1\n]<EOH>B: 22222\n\nx\n", 5, 8),
        "header section over the limit: the rest is body");
  CHECK(scan_all_splits("A: 1\n\rx\n", "[A= 1\n]<EOH>\rx\n", 5, 1 << 20), "bare CR line");
  CHECK(scan_all_splits("Subject \t: x\n\nb", "[Subject= x\n]<EOH>b", 14, 1 << 20),
        "white space before the colon (obsolete syntax)");

  CHECK(rewrite("A: 1\n\nbody\n", 0, e_none, "A: 1\n\nbody\n"), "unchanged");
  CHECK(rewrite("A: 1\n\nbody\n", 0, e_add, "A: 1\nX-A: v\n\nbody\n"), "add");
  CHECK(rewrite("A: 1\n\nbody\n", 0, e_ins, "X-I: top\nA: 1\nX-E: end\n\nbody\n"), "insert at 0 and past the end");
  CHECK(rewrite("X-D: 1\nx-d: 2\n\nb\n", 0, e_chg2, "X-D: 1\nx-d: new\n\nb\n"), "change the second of a name");
  CHECK(rewrite("X-D: 1\n\tmore\nB: 2\n\nb\n", 0, e_del, "B: 2\n\nb\n"), "delete a folded field");
  CHECK(rewrite("X-D: 1\n\nb\n", 0, e_missing, "X-D: 1\nX-D: added\n\nb\n"), "change of a missing field adds it");
  CHECK(rewrite("A: 1\n\nb\n", 0, e_fold, "A: 1\nX-F: a\n\tb\n\tc\n\nb\n"), "folded value made valid");
  CHECK(rewrite("A: 1\n\nb\n", 0, e_lead, "A: 1\nX-L:  raw\n\nb\n"), "leading space kept");
  CHECK(rewrite("A: 1\n\nb\n", 0, e_badname, "A: 1\n\nb\n"), "bad field name refused");
  CHECK(rewrite("Received: x\nA: 1\n\nb\n", 12, e_ins, "Received: x\nX-I: top\nA: 1\nX-E: end\n\nb\n"),
        "prefix the milter did not see is kept");
  CHECK(rewrite("body only\n", 0, e_add, "X-A: v\n\nbody only\n"), "fields added before a bare body");

  FILE* f = tmpfile();
  int cr = 0;
  int ok = mh_body_lf(fileno(f), &cr, "a\r", 2) == 0 && mh_body_lf(fileno(f), &cr, "\nb\rc\r\n\r", 7) == 0
    && mh_body_lf_end(fileno(f), &cr) == 0;
  char buf[64];
  ssize_t n = pread(fileno(f), buf, sizeof buf, 0);
  CHECK(ok && n == 7 && memcmp(buf, "a\nb\rc\n\r", 7) == 0, "CRLF to LF across pieces");
  fclose(f);
  str_free(&seen);
  return done();
}

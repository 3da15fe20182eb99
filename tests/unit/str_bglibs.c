/* Differential test of the ABI's str_* functions against bglibs (issue 10
 * item 2): Debian's libbg.so.2 (package libbg2) is dlopen()ed and every
 * str_* function the driver exports that libbg also has is run on the same
 * generated inputs through both implementations; the results must be
 * identical: return value, len, the bytes, the terminating NUL.
 * (str_alloc without copy: only the result and len are compared once it
 * grows, as bglibs leaves the data undefined then; str_alloc and
 * str_truncate on a zero str: bglibs leaves the new buffer's first byte
 * uninitialised (not NUL-terminated), ours writes a NUL there, so only the
 * result and len are compared.)  str_ready,
 * str_findfirst and str_findlast are macros over str_alloc, str_findnext
 * and str_findprev in both headers.  str_case_diffs is ours only.
 * The test fails (never skips) when libbg.so.2 cannot be loaded. */
#include <mailfront/str.h>
#include "tap.h"
#include <dlfcn.h>
#include <stdlib.h>

#define LIBBG "libbg.so.2"
#define ROUNDS 20000

static struct
{
  int (*alloc)(str*, unsigned, int);
  void (*free_)(str*);
  int (*truncate)(str*, unsigned);
  int (*copy)(str*, const str*);
  int (*copys)(str*, const char*);
  int (*copyb)(str*, const char*, unsigned);
  int (*cat)(str*, const str*);
  int (*cats)(str*, const char*);
  int (*catc)(str*, char);
  int (*catb)(str*, const char*, unsigned);
  int (*catu)(str*, unsigned long);
  int (*cat2s)(str*, const char*, const char*);
  int (*cat3s)(str*, const char*, const char*, const char*);
  void (*lower)(str*);
  int (*diffs)(const str*, const char*);
  int (*findnext)(const str*, char, unsigned);
  int (*findprev)(const str*, char, unsigned);
} bg;

static unsigned long seed = 20261130;
static unsigned rnd(unsigned n)
{
  seed = seed * 6364136223846793005ul + 1442695040888963407ul;
  return n ? (unsigned)((seed >> 33) % n) : 0;
}

/* Random bytes from a small alphabet (so that finds and diffs hit), NULs
 * and bytes above 127 included. */
static const char alphabet[] = "aAbB@.:zZ \t\x80\xff" "0";
static void fill(char* b, unsigned n, int nul_ok)
{
  for (unsigned i = 0; i < n; i++) {
    b[i] = alphabet[rnd(sizeof alphabet - (nul_ok ? 0 : 1))];
    if (!nul_ok && b[i] == 0) b[i] = 'x';
  }
}

/* Two strs with the same content: a zero str, an empty allocated one or
 * random bytes. */
static void twin(str* a, str* b)
{
  memset(a, 0, sizeof *a);
  memset(b, 0, sizeof *b);
  unsigned kind = rnd(4);
  if (kind == 0) return;
  char buf[80];
  unsigned n = kind == 1 ? 0 : rnd(sizeof buf);
  fill(buf, n, 1);
  str_copyb(a, buf, n);
  bg.copyb(b, buf, n);
}

static int same(const str* a, const str* b, int data)
{
  if (a->len != b->len) return 0;
  if (!data) return 1;
  if ((a->s == 0) != (b->s == 0)) return a->len == 0 && (a->s == 0 || a->s[0] == 0) && (b->s == 0 || b->s[0] == 0);
  if (a->s == 0) return 1;
  return memcmp(a->s, b->s, a->len) == 0 && a->s[a->len] == 0 && b->s[b->len] == 0;
}

static void release(str* a, str* b)
{
  str_free(a);
  bg.free_(b);
}

static int failures;
static void expect(int ok, const char* fn, unsigned round)
{
  if (!ok && failures++ < 10) printf("# %s differs from bglibs (round %u)\n", fn, round);
}

/* One random operation on twins; compares results. */
static void one(unsigned round)
{
  str a, b;
  twin(&a, &b);
  int was_zero = a.s == 0;
  char buf[64], buf2[24], buf3[24];
  unsigned n = rnd(sizeof buf);
  fill(buf, n, 1);
  buf[n] = 0;
  unsigned n2 = rnd(sizeof buf2 - 1), n3 = rnd(sizeof buf3 - 1);
  fill(buf2, n2, 0); buf2[n2] = 0;
  fill(buf3, n3, 0); buf3[n3] = 0;
  char cs[64];
  unsigned ncs = rnd(sizeof cs - 1);
  fill(cs, ncs, 0);
  cs[ncs] = 0;
  char ch = alphabet[rnd(sizeof alphabet)];
  unsigned pos = rnd(5) == 0 ? (unsigned)-1 : rnd(100);
  int r1 = 0, r2 = 0, data = 1;
  const char* fn = "";
  str src = {0, 0, 0};
  switch (rnd(17)) {
  case 0: fn = "str_alloc(copy=0)"; { unsigned sz = rnd(200); int grows = a.s == 0 || sz + 1 >= a.size || sz + 1 >= b.size;
          r1 = str_alloc(&a, sz, 0); r2 = bg.alloc(&b, sz, 0); data = !grows; } break;
  case 1: fn = "str_alloc(copy=1)"; { unsigned sz = rnd(200); r1 = str_alloc(&a, sz, 1); r2 = bg.alloc(&b, sz, 1);
          data = !was_zero; } break;
  case 2: fn = "str_truncate"; { unsigned l = rnd(120); if (a.s == 0 && l == 0) l = 1;
          r1 = str_truncate(&a, l); r2 = bg.truncate(&b, l); data = !was_zero; } break;
  case 3: fn = "str_copy"; str_copyb(&src, buf, n); r1 = str_copy(&a, &src); r2 = bg.copy(&b, &src); break;
  case 4: fn = "str_copys"; r1 = str_copys(&a, cs); r2 = bg.copys(&b, cs); break;
  case 5: fn = "str_copyb"; r1 = str_copyb(&a, buf, n); r2 = bg.copyb(&b, buf, n); break;
  case 6: fn = "str_cat"; str_copyb(&src, buf, n); r1 = str_cat(&a, &src); r2 = bg.cat(&b, &src); break;
  case 7: fn = "str_cats"; r1 = str_cats(&a, cs); r2 = bg.cats(&b, cs); break;
  case 8: fn = "str_catc"; r1 = str_catc(&a, ch); r2 = bg.catc(&b, ch); break;
  case 9: fn = "str_catb"; r1 = str_catb(&a, buf, n); r2 = bg.catb(&b, buf, n); break;
  case 10: fn = "str_catu"; { unsigned long u = rnd(3) == 0 ? (unsigned long)-1 - rnd(1000) : (unsigned long)rnd(1u << 31) * rnd(4096);
           r1 = str_catu(&a, u); r2 = bg.catu(&b, u); } break;
  case 11: fn = "str_cat2s"; r1 = str_cat2s(&a, buf2, buf3); r2 = bg.cat2s(&b, buf2, buf3); break;
  case 12: fn = "str_cat3s"; r1 = str_cat3s(&a, buf2, cs, buf3); r2 = bg.cat3s(&b, buf2, cs, buf3); break;
  case 13: fn = "str_lower"; str_lower(&a); bg.lower(&b); break;
  case 14: fn = "str_diffs"; { const char* other = rnd(3) == 0 && a.s ? 0 : cs;
           char prefix[96];
           if (!other) {
             unsigned k = rnd(a.len + 1);
             memcpy(prefix, a.s, k);
             prefix[k] = 0;
             other = prefix;
           }
           if (a.s == 0) { str_copys(&a, ""); bg.copys(&b, ""); }
           r1 = str_diffs(&a, other); r2 = bg.diffs(&b, other); } break;
  case 15: fn = "str_findnext"; r1 = str_findnext(&a, ch, pos); r2 = bg.findnext(&b, ch, pos); break;
  case 16: fn = "str_findprev"; r1 = str_findprev(&a, ch, pos); r2 = bg.findprev(&b, ch, pos); break;
  }
  expect(r1 == r2 && same(&a, &b, data), fn, round);
  str_free(&src);
  release(&a, &b);
}

int main(void)
{
  void* h = dlopen(LIBBG, RTLD_NOW | RTLD_LOCAL);
  CHECK(h != 0, "Debian's " LIBBG " (package libbg2) loaded");
  if (!h) { printf("# %s\n", dlerror()); return done(); }
  struct { const char* name; void** slot; } syms[] = {
    { "str_alloc", (void**)&bg.alloc }, { "str_free", (void**)&bg.free_ }, { "str_truncate", (void**)&bg.truncate },
    { "str_copy", (void**)&bg.copy }, { "str_copys", (void**)&bg.copys }, { "str_copyb", (void**)&bg.copyb },
    { "str_cat", (void**)&bg.cat }, { "str_cats", (void**)&bg.cats }, { "str_catc", (void**)&bg.catc },
    { "str_catb", (void**)&bg.catb }, { "str_catu", (void**)&bg.catu }, { "str_cat2s", (void**)&bg.cat2s },
    { "str_cat3s", (void**)&bg.cat3s }, { "str_lower", (void**)&bg.lower }, { "str_diffs", (void**)&bg.diffs },
    { "str_findnext", (void**)&bg.findnext }, { "str_findprev", (void**)&bg.findprev },
  };
  int all = 1;
  for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
    *syms[i].slot = dlsym(h, syms[i].name);
    if (!*syms[i].slot) { printf("# %s missing in " LIBBG "\n", syms[i].name); all = 0; }
  }
  CHECK(all, "every compared function found in " LIBBG);
  if (!all) return done();

  /* the cases of the review: not found, empty, zero str */
  str z = {0, 0, 0}, e = {0, 0, 0}, t = {0, 0, 0};
  str_copys(&e, "");
  str_copys(&t, "user");
  CHECK(str_findlast(&t, '@') == -1 && bg.findprev(&t, '@', (unsigned)-1) == -1, "findlast: absent byte is -1");
  CHECK(str_findfirst(&t, '@') == -1 && bg.findnext(&t, '@', 0) == -1, "findfirst: absent byte is -1");
  CHECK(str_findlast(&z, '@') == -1 && str_findlast(&e, '@') == -1 && bg.findprev(&e, '@', (unsigned)-1) == -1,
        "findlast in a zero or empty str is -1");
  CHECK(str_findlast(&t, 'u') == 0 && str_findfirst(&t, 'r') == 3, "found at the ends");
  CHECK(str_diffs(&t, "usex") == bg.diffs(&t, "usex") && str_diffs(&t, "us") == bg.diffs(&t, "us")
        && str_diffs(&t, "users") == bg.diffs(&t, "users"), "diffs: sign and value as bglibs");
  str_free(&e);
  str_free(&t);

  for (unsigned r = 0; r < ROUNDS; r++) one(r);
  CHECK(failures == 0, "20000 random operations: identical results");
  dlclose(h);
  return done();
}

/* base64_strict -- unit tests of src/auth/base64.c: RFC 4648 test vectors,
 * round trips of every length 0..300 with all byte values, and rejection of
 * every kind of non-canonical input. */
#include "../../src/auth/base64.c"
#include "tap.h"

static int dec_ok(const char* in, const char* exp, unsigned elen)
{
  str o = {0, 0, 0};
  int ok = base64_decode(in, strlen(in), &o) && o.len == elen && memcmp(o.s, exp, elen) == 0;
  str_free(&o);
  return ok;
}

static int dec_bad(const char* in, unsigned long len)
{
  str o = {0, 0, 0};
  int r = base64_decode(in, len, &o);
  str_free(&o);
  return r == 0;
}

int main(void)
{
  static const char* vec[][2] = {
    { "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
    { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
  };
  str o = {0, 0, 0};
  for (unsigned i = 0; i < sizeof vec / sizeof vec[0]; i++) {
    CHECK(base64_encode(vec[i][0], strlen(vec[i][0]), &o) && strcmp(o.s, vec[i][1]) == 0, "RFC 4648 encode vector");
    CHECK(dec_ok(vec[i][1], vec[i][0], (unsigned)strlen(vec[i][0])), "RFC 4648 decode vector");
  }
  CHECK(dec_ok("AGFsaWNlAHNlY3JldA==", "\0alice\0secret", 13), "NULs survive decoding");
  CHECK(dec_ok("VXNlcm5hbWU6", "Username:", 9), "Username:");

  /* round trips */
  char buf[300];
  int all = 1;
  str d = {0, 0, 0};
  for (unsigned n = 0; n <= sizeof buf; n++) {
    for (unsigned i = 0; i < n; i++) buf[i] = (char)(i * 37 + n);
    if (!base64_encode(buf, n, &o) || o.len != (n + 2) / 3 * 4) all = 0;
    else if (!base64_decode(o.s, o.len, &d) || d.len != n || memcmp(d.s, buf, n) != 0) all = 0;
  }
  CHECK(all, "round trip of every length 0..300");

  /* strictness: input and its length; the decoded bytes (0: rejected) */
  static const struct { const char* in; unsigned long len; const char* exp; unsigned elen; const char* name; } strict[] = {
    { "YQ", 2, 0, 0, "missing padding rejected" },
    { "YQ=", 3, 0, 0, "short padding rejected" },
    { "=", 1, 0, 0, "lone = rejected" },
    { "====", 4, 0, 0, "all padding rejected" },
    { "Y===", 4, 0, 0, "three = rejected" },
    { "YQ==YQ==", 8, 0, 0, "padding in the middle rejected" },
    { "YR==", 4, "a", 1, "non-zero unused bits (1 byte) accepted" },
    { "Zm9=", 4, "fo", 2, "non-zero unused bits (2 bytes) accepted" },
    { "YR=a", 4, 0, 0, "data after padding rejected" },
    { "Y===", 4, 0, 0, "three padding characters rejected" },
    { "YWJj\r", 5, 0, 0, "trailing CR rejected" },
    { "YW Jj", 5, 0, 0, "space rejected" },
    { "YWJ\0", 4, 0, 0, "NUL rejected" },
    { "YWJ-", 4, 0, 0, "URL-safe alphabet rejected" },
    { "!!!!", 4, 0, 0, "punctuation rejected" },
    { "YW=j", 4, 0, 0, "= before data rejected" },
  };
  for (size_t i = 0; i < sizeof strict / sizeof strict[0]; i++)
    CHECK(strict[i].exp ? dec_ok(strict[i].in, strict[i].exp, strict[i].elen) : dec_bad(strict[i].in, strict[i].len),
          strict[i].name);
  int hi = 1;
  for (int c = 128; c < 256; c++) { char t[4] = { 'Y', 'W', 'J', (char)c }; if (!dec_bad(t, 4)) hi = 0; }
  CHECK(hi, "8-bit bytes rejected");
  CHECK(dec_ok("", "", 0), "empty input is empty output");
  str_free(&o);
  str_free(&d);
  return done();
}

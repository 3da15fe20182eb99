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

  /* strictness */
  CHECK(dec_bad("YQ", 2), "missing padding rejected");
  CHECK(dec_bad("YQ=", 3), "short padding rejected");
  CHECK(dec_bad("=", 1), "lone = rejected");
  CHECK(dec_bad("====", 4), "all padding rejected");
  CHECK(dec_bad("Y===", 4), "three = rejected");
  CHECK(dec_bad("YQ==YQ==", 8), "padding in the middle rejected");
  /* issue 10 item 5: non-zero pad bits are accepted, as the original does */
  CHECK(dec_ok("YR==", "a", 1), "non-zero unused bits (1 byte) accepted");
  CHECK(dec_ok("Zm9=", "fo", 2), "non-zero unused bits (2 bytes) accepted");
  CHECK(dec_bad("YR=a", 4), "data after padding rejected");
  CHECK(dec_bad("Y===", 4), "three padding characters rejected");
  CHECK(dec_bad("YWJj\r", 5), "trailing CR rejected");
  CHECK(dec_bad("YW Jj", 5), "space rejected");
  CHECK(dec_bad("YWJ\0", 4), "NUL rejected");
  CHECK(dec_bad("YWJ-", 4), "URL-safe alphabet rejected");
  CHECK(dec_bad("!!!!", 4), "punctuation rejected");
  CHECK(dec_bad("YW=j", 4), "= before data rejected");
  int hi = 1;
  for (int c = 128; c < 256; c++) { char t[4] = { 'Y', 'W', 'J', (char)c }; if (!dec_bad(t, 4)) hi = 0; }
  CHECK(hi, "8-bit bytes rejected");
  CHECK(dec_ok("", "", 0), "empty input is empty output");
  str_free(&o);
  str_free(&d);
  return done();
}

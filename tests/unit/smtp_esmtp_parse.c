/* smtp_esmtp_parse.c -- unit tests of the parsers added for the ESMTP
 * extensions (src/protocols/smtp/address.c, body.c chunk mode), each over
 * generated inputs and compared with an independent reference:
 *   - smtp_utf8_check: every 1-, 2- and 3-byte string, and random 4-byte
 *     and longer strings, against a decoder that computes code points;
 *   - smtp_parse_bdat: random strings over digits, signs, blanks and LAST,
 *     against a tokenizing reference, plus fixed edge cases (2^64-1, 2^64);
 *   - smtp_param_find: fixed cases;
 *   - smtp_parse_address: 500k random arguments stay within bounds;
 *   - the chunk-mode body decoder: random bodies cut at random places give
 *     the output of a one-shot reference (CRLF -> LF, bare CR/LF counted),
 *     with "." lines and "\r\n.\r\n" kept as content.
 * The parsers are called on buffers, without I/O (fuzzing harnesses can
 * call them the same way). */
#include "tap.h"
#include "../../src/protocols/smtp/address.c"
#include "../../src/protocols/smtp/body.c"
#include <stdint.h>
#include <stdlib.h>
#include <strings.h>

/* ---- UTF-8 ---- */

/* Reference: decode by the leading byte's bit pattern, then reject
 * overlong forms by the minimum code point per length, surrogates and
 * code points beyond U+10FFFF. */
static int ref_utf8(const unsigned char* p, unsigned long len)
{
  int eight = 0;
  unsigned long i = 0;
  while (i < len) {
    unsigned c = p[i];
    unsigned n;
    uint32_t cp;
    if (c < 0x80) { i++; continue; }
    eight = 1;
    if ((c & 0xE0) == 0xC0) { n = 2; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { n = 3; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { n = 4; cp = c & 0x07; }
    else return -1;
    if (i + n > len) return -1;
    for (unsigned k = 1; k < n; k++) {
      if ((p[i + k] & 0xC0) != 0x80) return -1;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    static const uint32_t min[5] = { 0, 0, 0x80, 0x800, 0x10000 };
    if (cp < min[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return -1;
    i += n;
  }
  return eight;
}

static unsigned long long rng_state = 0x9E3779B97F4A7C15ULL;
static unsigned rnd(void)
{
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (unsigned)(rng_state >> 16);
}

static void test_utf8(void)
{
  unsigned char b[16];
  unsigned long bad = 0, n = 0;
  for (unsigned a = 0; a < 256; a++) {
    b[0] = (unsigned char)a;
    n++; if (smtp_utf8_check((char*)b, 1) != ref_utf8(b, 1)) bad++;
    for (unsigned c = 0; c < 256; c++) {
      b[1] = (unsigned char)c;
      n++; if (smtp_utf8_check((char*)b, 2) != ref_utf8(b, 2)) bad++;
      for (unsigned d = 0; d < 256; d++) {
        b[2] = (unsigned char)d;
        n++; if (smtp_utf8_check((char*)b, 3) != ref_utf8(b, 3)) bad++;
      }
    }
  }
  CHECK(bad == 0, "utf8: every 1-, 2- and 3-byte string agrees with the reference");
  bad = 0;
  for (unsigned t = 0; t < 2000000; t++) {
    unsigned len = 4 + rnd() % 12;
    for (unsigned k = 0; k < len; k++) {
      unsigned r = rnd();
      /* bias towards lead and continuation bytes */
      b[k] = (unsigned char)(r % 4 == 0 ? 0x80 + (r >> 8) % 64 : r % 4 == 1 ? 0xE0 + (r >> 8) % 21 : r >> 8);
    }
    if (smtp_utf8_check((char*)b, len) != ref_utf8(b, len)) bad++;
  }
  CHECK(bad == 0, "utf8: 2M random 4..15-byte strings agree with the reference");
  CHECK(smtp_utf8_check("a@b", 3) == 0, "utf8: ASCII is 0");
  CHECK(smtp_utf8_check("\xc3\xa4@\xf0\x9f\x98\x80", 7) == 1, "utf8: valid non-ASCII is 1");
  CHECK(smtp_utf8_check("\xf4\x8f\xbf\xbf", 4) == 1, "utf8: U+10FFFF is valid");
  CHECK(smtp_utf8_check("\xf4\x90\x80\x80", 4) == -1, "utf8: U+110000 is invalid");
  CHECK(smtp_utf8_check("\xed\x9f\xbf", 3) == 1 && smtp_utf8_check("\xed\xa0\x80", 3) == -1,
        "utf8: U+D7FF valid, U+D800 (surrogate) invalid");
  CHECK(smtp_utf8_check("\xe0\x9f\xbf", 3) == -1 && smtp_utf8_check("\xc1\xbf", 2) == -1,
        "utf8: overlong forms invalid");
  (void)n;
}

/* ---- BDAT ---- */

/* Reference: split at blanks; one or two words; the first all digits
 * within 2^64-1 (compared as a decimal string), the second LAST. */
static int ref_bdat(const char* s, unsigned long len, unsigned long long* size, int* last)
{
  const char* w[3];
  unsigned long wl[3];
  unsigned nw = 0;
  if (len == 0 || s[0] < '0' || s[0] > '9') return -1;
  for (unsigned long i = 0; i < len; ) {
    if (s[i] == ' ' || s[i] == '\t') { i++; continue; }
    unsigned long j = i;
    while (j < len && s[j] != ' ' && s[j] != '\t') j++;
    if (nw == 3) return -1;
    w[nw] = s + i; wl[nw] = j - i; nw++;
    i = j;
  }
  if (nw < 1 || nw > 2) return -1;
  for (unsigned long k = 0; k < wl[0]; k++) if (w[0][k] < '0' || w[0][k] > '9') return -1;
  unsigned long z = 0;
  while (z + 1 < wl[0] && w[0][z] == '0') z++;
  const char* max = "18446744073709551615";
  unsigned long digits = wl[0] - z;
  if (digits > 20 || (digits == 20 && memcmp(w[0] + z, max, 20) > 0)) return -1;
  if (nw == 2 && !(wl[1] == 4 && strncasecmp(w[1], "LAST", 4) == 0)) return -1;
  unsigned long long v = 0;
  for (unsigned long k = z; k < wl[0]; k++) v = v * 10 + (unsigned)(w[0][k] - '0');
  *size = v;
  *last = nw == 2;
  return 0;
}

static void test_bdat(void)
{
  unsigned long long n;
  int last;
  CHECK(smtp_parse_bdat("0", 1, &n, &last) == 0 && n == 0 && !last, "bdat: 0");
  CHECK(smtp_parse_bdat("12 LAST", 7, &n, &last) == 0 && n == 12 && last, "bdat: 12 LAST");
  CHECK(smtp_parse_bdat("12 last  ", 9, &n, &last) == 0 && n == 12 && last, "bdat: lower case, trailing blanks");
  CHECK(smtp_parse_bdat("18446744073709551615", 20, &n, &last) == 0 && n == 18446744073709551615ULL,
        "bdat: 2^64-1 parses");
  CHECK(smtp_parse_bdat("18446744073709551616", 20, &n, &last) < 0, "bdat: 2^64 refused");
  CHECK(smtp_parse_bdat("-1", 2, &n, &last) < 0, "bdat: negative refused");
  CHECK(smtp_parse_bdat("1LAST", 5, &n, &last) < 0, "bdat: LAST needs a blank");
  CHECK(smtp_parse_bdat("", 0, &n, &last) < 0, "bdat: empty refused");
  CHECK(smtp_parse_bdat("1 LAST LAST", 11, &n, &last) < 0, "bdat: extra word refused");
  static const char alphabet[] = "0123456789999 \t-+LASTlastx";
  char s[40];
  unsigned long bad = 0;
  for (unsigned t = 0; t < 1000000; t++) {
    unsigned len = rnd() % 30;
    for (unsigned k = 0; k < len; k++) s[k] = alphabet[rnd() % (sizeof alphabet - 1)];
    if (t % 3 == 0 && len > 6) memcpy(s + len - 5, " LAST", 5);
    unsigned long long n1 = 0, n2 = 0;
    int l1 = 0, l2 = 0;
    int r1 = smtp_parse_bdat(s, len, &n1, &l1), r2 = ref_bdat(s, len, &n2, &l2);
    if (r1 != r2 || (r1 == 0 && (n1 != n2 || l1 != l2))) {
      if (bad++ < 5) printf("#   [%.*s]: %d %llu %d / ref %d %llu %d\n", (int)len, s, r1, n1, l1, r2, n2, l2);
    }
  }
  CHECK(bad == 0, "bdat: 1M random arguments agree with the reference");
}

/* ---- ESMTP parameters ---- */

static void test_params(void)
{
  str p = {0, 0, 0};
  const char* v = "unset";
  str_copyb(&p, "SIZE=10\0smtputf8\0BODY=8BITMIME", 30);
  CHECK(smtp_param_find(&p, "SMTPUTF8", &v) == 1 && v == 0, "params: bare keyword, any case");
  CHECK(smtp_param_find(&p, "BODY", &v) == 1 && v && strcmp(v, "8BITMIME") == 0, "params: value");
  CHECK(smtp_param_find(&p, "SIZ", &v) == 0, "params: no prefix match");
  CHECK(smtp_param_find(&p, "SMTPUTF", &v) == 0, "params: no prefix match of a keyword");
  str_copyb(&p, "SMTPUTF8X\0", 10);
  CHECK(smtp_param_find(&p, "SMTPUTF8", &v) == 0, "params: longer keyword is another one");
  p.len = 0;
  CHECK(smtp_param_find(&p, "SMTPUTF8", &v) == 0, "params: none");
  str_free(&p);
}

/* ---- address parser over generated inputs ---- */

/* Random MAIL/RCPT arguments from the characters that matter to the
 * parser: it must not crash, and a parse must take no more bytes than it
 * got, leave no blank inside the parameter list and be repeatable. */
static void test_address_generated(void)
{
  static const char alphabet[] = "<>\"\\:@ ,aZ\xc3\xa4\x80\xff=FROM";
  char in[64];
  str a = {0, 0, 0}, p = {0, 0, 0}, a2 = {0, 0, 0}, p2 = {0, 0, 0};
  unsigned long bad = 0, parsed = 0;
  for (unsigned t = 0; t < 500000; t++) {
    unsigned len = rnd() % sizeof in;
    for (unsigned k = 0; k < len; k++) in[k] = alphabet[rnd() % (sizeof alphabet - 1)];
    int r = smtp_parse_address(in, len, &a, &p);
    if (r == 0) {
      parsed++;
      if (a.len > len || p.len > len || memchr(p.s, ' ', p.len)) bad++;
      int k = smtp_utf8_check(a.s, a.len);
      if (k < -1 || k > 1) bad++;
    }
    int r2 = smtp_parse_address(in, len, &a2, &p2);
    if (r2 != r || (r == 0 && (a2.len != a.len || memcmp(a2.s, a.s, a.len) != 0 || p2.len != p.len
                                || memcmp(p2.s, p.s, p.len) != 0)))
      bad++;
  }
  CHECK(bad == 0 && parsed > 1000, "address: 500k generated arguments parse within bounds, repeatably");
  str_free(&a); str_free(&p); str_free(&a2); str_free(&p2);
}

/* ---- chunk-mode decoder ---- */

struct sink { char* buf; unsigned long len, cap, maxblock; };
static void collect(void* ctx, const char* b, unsigned len)
{
  struct sink* k = ctx;
  if (k->len + len > k->cap) {
    k->cap = (k->len + len) * 2 + 64;
    k->buf = realloc(k->buf, k->cap);
  }
  memcpy(k->buf + k->len, b, len);
  k->len += len;
  if (len > k->maxblock) k->maxblock = len;
}

/* Reference: CRLF -> LF; bare CR / LF counted and kept (or LF). */
static unsigned long ref_chunk(const char* in, unsigned long len, int normalize, char* out, unsigned long long* bare)
{
  unsigned long o = 0;
  *bare = 0;
  for (unsigned long i = 0; i < len; i++) {
    if (in[i] == '\r' && i + 1 < len && in[i + 1] == '\n') { out[o++] = '\n'; i++; }
    else if (in[i] == '\r') { (*bare)++; out[o++] = normalize ? '\n' : '\r'; }
    else if (in[i] == '\n') { (*bare)++; out[o++] = '\n'; }
    else out[o++] = in[i];
  }
  return o;
}

static void test_chunks(void)
{
  static const char* const pieces[] = { "\r\n", ".", "\r\n.\r\n", "MAIL FROM:<x@y>", "\r", "\n", "a", "..", "\xc3\xa4" };
  char in[9000], ref[9000];
  unsigned long bad = 0, bigblock = 0;
  for (unsigned t = 0; t < 20000; t++) {
    unsigned long len = 0;
    unsigned np = rnd() % 400;
    for (unsigned k = 0; k < np; k++) {
      const char* pc = pieces[rnd() % (sizeof pieces / sizeof pieces[0])];
      size_t l = strlen(pc);
      memcpy(in + len, pc, l);
      len += l;
    }
    int normalize = (int)(rnd() % 2);
    unsigned long long rbare;
    unsigned long rlen = ref_chunk(in, len, normalize, ref, &rbare);
    struct sink k = {0, 0, 0, 0};
    struct smtp_body b;
    smtp_body_start_chunked(&b, normalize, collect, &k);
    for (unsigned long i = 0; i < len; ) {
      unsigned long step = 1 + rnd() % 50, used;
      if (step > len - i) step = len - i;
      if (smtp_body_feed(&b, in + i, step, &used) != 0 || used != step) bad++;
      i += step;
      if (rnd() % 5 == 0) smtp_body_flush(&b);     /* a chunk ends here */
    }
    smtp_body_finish(&b);
    if (k.len != rlen || (rlen && memcmp(k.buf, ref, rlen) != 0) || b.bare != rbare) bad++;
    if (k.maxblock > SMTP_BLOCK) bigblock++;
    free(k.buf);
  }
  CHECK(bad == 0, "chunks: 20000 random bodies in random cuts match the reference");
  CHECK(bigblock == 0, "chunks: no block beyond SMTP_BLOCK");
  struct sink k = {0, 0, 0, 0};
  struct smtp_body b;
  unsigned long used;
  smtp_body_start_chunked(&b, 0, collect, &k);
  const char* smug = "x\r\n.\r\nMAIL FROM:<e@x>\r\n";
  CHECK(smtp_body_feed(&b, smug, strlen(smug), &used) == 0, "chunks: end-of-data line is no end");
  smtp_body_finish(&b);
  CHECK_MEM(k.buf, k.len, "x\n.\nMAIL FROM:<e@x>\n", "chunks: smuggling text kept as content, dot unchanged");
  free(k.buf);
}

int main(void)
{
  test_utf8();
  test_bdat();
  test_params();
  test_address_generated();
  test_chunks();
  return done();
}

/* smtp_body.c -- unit tests of the DATA decoder (protocols.md "Body
 * decoding" and "SMTP smuggling").  Every case is fed whole and in chunks
 * of 1, 2, 3 and 7 bytes: the result must not depend on how the input is
 * split.  Blocks handed downstream must never exceed SMTP_BLOCK bytes. */
#include "tap.h"
#include "../../src/protocols/smtp/body.c"
#include <stdlib.h>

struct sink
{
  char* buf;
  unsigned long len, cap;
  unsigned long blocks, maxblock, fullblocks, emptyblocks;
};

static void collect(void* ctx, const char* b, unsigned len)
{
  struct sink* k = ctx;
  if (k->len + len > k->cap) {
    k->cap = (k->len + len) * 2 + 64;
    k->buf = realloc(k->buf, k->cap);
    if (!k->buf) abort();
  }
  memcpy(k->buf + k->len, b, len);
  k->len += len;
  k->blocks++;
  if (len > k->maxblock) k->maxblock = len;
  if (len == SMTP_BLOCK) k->fullblocks++;
  if (len == 0) k->emptyblocks++;
}

struct result
{
  struct sink out;
  int end;
  unsigned long used;            /* input bytes consumed up to the end line */
  unsigned long long bare, total;
};

/* Decode in[0..len) in chunks of `chunk` bytes (0 = all at once). */
static void decode(struct result* r, int strict, int normalize, const char* in, unsigned long len, unsigned long chunk)
{
  struct smtp_body b;
  memset(r, 0, sizeof *r);
  smtp_body_start(&b, strict, normalize, collect, &r->out);
  unsigned long off = 0;
  while (off < len) {
    unsigned long n = chunk && chunk < len - off ? chunk : len - off;
    unsigned long used = 0;
    int end = smtp_body_feed(&b, in + off, n, &used);
    if (end) { r->end = 1; r->used = off + used; break; }
    if (used != n) { r->used = (unsigned long)-1; break; }   /* contract: all consumed */
    off += n;
  }
  if (!r->end) r->used = off;
  smtp_body_flush(&b);
  r->bare = b.bare;
  r->total = b.total;
}

/* One case: expected output, whether the end line is found, where. */
static void tcase(const char* name, int strict, int normalize, const char* in, unsigned long inlen,
                  const char* exp, unsigned long explen, int expend, long expused, long expbare)
{
  static const unsigned long chunks[] = { 0, 1, 2, 3, 7 };
  int good = 1;
  for (size_t i = 0; i < sizeof chunks / sizeof chunks[0]; i++) {
    struct result r;
    decode(&r, strict, normalize, in, inlen, chunks[i]);
    int ok = r.out.len == explen && (explen == 0 || memcmp(r.out.buf, exp, explen) == 0)
             && r.end == expend && r.total == r.out.len && r.out.maxblock <= SMTP_BLOCK
             && r.out.emptyblocks == 0
             && (expused < 0 || r.used == (unsigned long)expused)
             && (expbare < 0 || r.bare == (unsigned long long)expbare);
    if (!ok && good) {
      printf("#   %s (chunk %lu): end=%d used=%lu bare=%llu out(%lu)=[", name, chunks[i], r.end, r.used, r.bare, r.out.len);
      for (unsigned long j = 0; j < r.out.len && j < 80; j++) {
        unsigned char c = (unsigned char)r.out.buf[j];
        if (c >= 32 && c < 127) putchar(c); else printf("\\x%02x", c);
      }
      printf("]\n");
    }
    good &= ok;
    free(r.out.buf);
  }
  CHECK(good, name);
}
#define LEN(s) (sizeof(s) - 1)
/* lenient (LF-only session) and strict (CRLF session) cases */
#define L(name, in, exp, end, used) tcase(name, 0, 0, in, LEN(in), exp, LEN(exp), end, used, -1)
#define S(name, in, exp, end, used, bare) tcase(name, 1, 0, in, LEN(in), exp, LEN(exp), end, used, bare)
#define N(name, in, exp, end, used, bare) tcase(name, 1, 1, in, LEN(in), exp, LEN(exp), end, used, bare)

static void big_blocks(int strict)
{
  /* 10000 body bytes: blocks must be 4096, 4096, rest; nothing lost. */
  unsigned long n = 10000;
  char* in = malloc(n + 16);
  for (unsigned long i = 0; i < n; i++) in[i] = (i % 100 == 99) ? '\n' : (char)('a' + i % 26);
  unsigned long len = n;
  if (strict) {
    /* make every line end CRLF */
    char* s = malloc(2 * n + 16);
    unsigned long k = 0;
    for (unsigned long i = 0; i < n; i++) { if (in[i] == '\n') s[k++] = '\r'; s[k++] = in[i]; }
    free(in);
    in = s;
    len = k;
    memcpy(in + len, "\r\n.\r\n", 5);
    len += 5;
  } else {
    memcpy(in + len, "\n.\n", 3);
    len += 3;
  }
  struct result r;
  decode(&r, strict, 0, in, len, 0);
  CHECK(r.end && r.used == len, strict ? "strict 10000 bytes: end found at the last byte" : "10000 bytes: end found at the last byte");
  CHECK(r.out.len == n + 1 && r.out.buf[n] == '\n', strict ? "strict 10000 bytes: all data delivered" : "10000 bytes: all data delivered");
  CHECK(r.out.blocks == 3 && r.out.fullblocks == 2 && r.out.maxblock == SMTP_BLOCK,
        strict ? "strict 10000 bytes: blocks of 4096, 4096, 1809" : "10000 bytes: blocks of 4096, 4096, 1809");
  free(r.out.buf);
  /* one byte at a time gives the same blocks */
  decode(&r, strict, 0, in, len, 1);
  CHECK(r.out.blocks == 3 && r.out.fullblocks == 2 && r.out.len == n + 1,
        strict ? "strict 10000 bytes fed bytewise: same blocks" : "10000 bytes fed bytewise: same blocks");
  free(r.out.buf);
  free(in);
}

static void long_line(void)
{
  /* a 1 MiB line without any line end streams through in full blocks */
  unsigned long n = 1 << 20;
  char* in = malloc(n + 8);
  memset(in, 'x', n);
  memcpy(in + n, "\r\n.\r\n", 5);
  struct result r;
  decode(&r, 1, 0, in, n + 5, 65536);
  CHECK(r.end && r.out.len == n + 1 && r.out.fullblocks == n / SMTP_BLOCK && r.out.maxblock == SMTP_BLOCK,
        "1 MiB line: delivered in 4096-byte blocks");
  free(r.out.buf);
  free(in);
}

int main(void)
{
  /* ---- lenient: the original's algorithm (LF-only sessions) ---- */
  L("simple body", "hello\n.\n", "hello\n", 1, 8);
  L("CRLF converted to LF", "hello\r\nworld\r\n.\r\n", "hello\nworld\n", 1, 17);
  L("empty body", ".\n", "", 1, 2);
  L("empty body, CRLF", ".\r\n", "", 1, 3);
  L("leading empty line", "\n.\n", "\n", 1, 3);
  L("bytes after the end are not consumed", "a\n.\nMAIL FROM:<x>\n", "a\n", 1, 4);
  L("dot unstuffing ..x -> .x", "..x\n.\n", ".x\n", 1, 6);
  L("lone dot dropped: .x -> x", ".x\n.\n", "x\n", 1, 5);
  L("dot-dot line -> dot line", "x\n..\n.\n", "x\n.\n", 1, 7);
  L("dot then space", ". \n.\n", " \n", 1, 5);
  L("dot not at line start kept", "a.b\n.\n", "a.b\n", 1, 6);
  L("dot line in the middle", "x\n.y\n.\n", "x\ny\n", 1, 7);
  L("CR held at line start does not count: <CR>.<LF> ends", "\r.\n", "", 1, 3);
  L("<LF><CR>.<LF> ends the message", "x\n\r.\nMAIL", "x\n", 1, 5);
  L("<CR><CR><LF> -> <CR><LF>", "\r\r\n.\n", "\r\n", 1, 5);
  L(".<CR><CR><LF> -> <CR><LF>, no end", ".\r\r\n.\n", "\r\n", 1, 6);
  L("<CR>.<CR><LF> -> <CR><LF>, no end", "\r.\r\n.\n", "\r\n", 1, 6);
  L("bare CR inside a line kept", "a\rb\n.\n", "a\rb\n", 1, 6);
  L("three CRs kept", "a\r\r\rb\n.\n", "a\r\r\rb\n", 1, 8);
  L("CR before dot mid-line", "a\r.\n.\n", "a\r.\n", 1, 6);
  L("NUL and 8-bit bytes pass", "a\0b\xff\x80\n.\n", "a\0b\xff\x80\n", 1, 8);
  L("no end line: data so far", "abc\ndef", "abc\ndef", 0, 7);
  L("no end line: trailing CR held back", "abc\r", "abc", 0, 4);
  L("no end line: a pending dot", "abc\n.", "abc\n", 0, 5);
  L("dot CR at end of input", "abc\n.\r", "abc\n", 0, 6);
  L("period state ends with the line", ".\n", "", 1, 2);
  L("\\n.\\r\\n after LF", "a\n.\r\nb", "a\n", 1, 5);
  L("double end line: first wins", "a\n.\n.\n", "a\n", 1, 4);

  /* ---- strict: sessions that speak CRLF ---- */
  S("strict simple body", "hello\r\n.\r\n", "hello\n", 1, 10, 0);
  S("strict empty body", ".\r\n", "", 1, 3, 0);
  S("strict leading empty line", "\r\n.\r\n", "\n", 1, 5, 0);
  S("strict dot unstuffing", "..x\r\n.y\r\n.\r\n", ".x\ny\n", 1, 12, 0);
  S("strict dot-dot line", "x\r\n..\r\n.\r\n", "x\n.\n", 1, 10, 0);
  S("strict bytes after end untouched", "a\r\n.\r\nQUIT\r\n", "a\n", 1, 6, 0);
  S("strict NUL and 8-bit pass", "a\0\xfe\r\n.\r\n", "a\0\xfe\n", 1, 8, 0);
  /* smuggling: none of these ends the message; the final CRLF.CRLF does */
  S("strict LF.LF does not end", "a\n.\nMAIL FROM:<x>\r\n.\r\n", "a\n.\nMAIL FROM:<x>\n", 1, 22, 2);
  S("strict CR.LF does not end", "a\r.\nMAIL FROM:<x>\r\n.\r\n", "a\r.\nMAIL FROM:<x>\n", 1, 22, 2);
  S("strict LF.CRLF does not end", "a\n.\r\nMAIL FROM:<x>\r\n.\r\n", "a\n.\nMAIL FROM:<x>\n", 1, 23, 1);
  S("strict CRLF.LF does not end", "a\r\n.\nMAIL FROM:<x>\r\n.\r\n", "a\n\nMAIL FROM:<x>\n", 1, 23, 1);
  S("strict CR.CR does not end", "a\r.\rMAIL FROM:<x>\r\n.\r\n", "a\r.\rMAIL FROM:<x>\n", 1, 22, 2);
  S("strict CRLF.CR does not end", "a\r\n.\rMAIL\r\n.\r\n", "a\n\rMAIL\n", 1, 14, 1);
  S("strict <CR><CR><LF> counts one bare CR", "a\r\r\n.\r\n", "a\r\n", 1, 7, 1);
  S("strict bare LF then CRLF.CRLF ends", "a\n\r\n.\r\n", "a\n\n", 1, 7, 1);
  S("strict dot after bare LF is data", "a\n..\r\n.\r\n", "a\n..\n", 1, 9, 1);
  S("strict no end: data so far", "abc\r\ndef", "abc\ndef", 0, 8, 0);
  S("strict no end after LF.LF", "abc\n.\n", "abc\n.\n", 0, 6, 2);
  S("strict no end: CR held back", "abc\r", "abc", 0, 4, 0);
  S("strict no end: dot held", "abc\r\n.", "abc\n", 0, 6, 0);
  S("strict no end: dot CR held", "abc\r\n.\r", "abc\n", 0, 7, 0);
  /* normalize: bare CR and LF become line ends, still counted, never an end */
  N("normalize LF and CR become line ends", "a\nb\rc\r\n.\r\n", "a\nb\nc\n", 1, 10, 2);
  N("normalize LF.LF is data", "a\n.\nb\r\n.\r\n", "a\n.\nb\n", 1, 10, 2);
  N("normalize CR.CR is data", "a\r.\rb\r\n.\r\n", "a\n.\nb\n", 1, 10, 2);
  N("normalize <CR><CR><LF>", "a\r\r\n.\r\n", "a\n\n", 1, 7, 1);

  big_blocks(0);
  big_blocks(1);
  long_line();
  return done();
}

/* relay_wire.c -- unit tests of src/backends/relay/wire.c: reply lines,
 * reply text mapping, EHLO capabilities, the DATA/BDAT encoder, xtext and
 * parameter forwarding. */
#include "../../src/backends/relay/wire.c"
#include "tap.h"

static int reply_line(const char* l, unsigned* code, int* last, str* text)
{
  const char* t;
  unsigned long tl;
  if (relay_reply_line(l, strlen(l), code, last, &t, &tl) < 0) return -1;
  text->len = 0;
  return str_copyb(text, t, (unsigned)tl) ? 0 : -1;
}

static void test_reply_lines(void)
{
  unsigned code;
  int last;
  str t = {0, 0, 0};
  CHECK(reply_line("250 2.0.0 Ok\r\n", &code, &last, &t) == 0 && code == 250 && last && str_diffs(&t, "2.0.0 Ok") == 0, "final line");
  CHECK(reply_line("250-PIPELINING\n", &code, &last, &t) == 0 && !last && str_diffs(&t, "PIPELINING") == 0, "continuation line");
  CHECK(reply_line("354", &code, &last, &t) == 0 && code == 354 && last && t.len == 0, "code only");
  CHECK(reply_line("199 x", &code, &last, &t) < 0, "code below 200 refused");
  CHECK(reply_line("600 x", &code, &last, &t) < 0, "code above 599 refused");
  CHECK(reply_line("25 x", &code, &last, &t) < 0, "two digits refused");
  CHECK(reply_line("250x", &code, &last, &t) < 0, "bad separator refused");
  CHECK(reply_line("", &code, &last, &t) < 0, "empty line refused");
  CHECK(reply_line("abc def", &code, &last, &t) < 0, "no code refused");
  str_free(&t);
}

static void test_reply_text(void)
{
  str o = {0, 0, 0};
  CHECK(relay_reply_append(&o, 550, "5.1.1 No such user", 18) == 0 && str_diffs(&o, "5.1.1 No such user") == 0, "enhanced code kept");
  o.len = 0;
  CHECK(relay_reply_append(&o, 452, "Too many", 8) == 0 && str_diffs(&o, "4.0.0 Too many") == 0, "missing enhanced code added");
  CHECK(relay_reply_append(&o, 452, "second", 6) == 0 && str_diffs(&o, "4.0.0 Too many\n4.0.0 second") == 0, "lines joined with LF");
  o.len = 0;
  CHECK(relay_reply_append(&o, 250, "a\rb\001c", 5) == 0 && str_diffs(&o, "2.0.0 a?b?c") == 0, "control bytes masked");
  o.len = 0;
  CHECK(relay_reply_append(&o, 550, "5.7.1", 5) == 0 && str_diffs(&o, "5.7.1") == 0, "bare enhanced code");
  o.len = 0;
  CHECK(relay_reply_append(&o, 550, "5.1.10x y", 9) == 0 && str_diffs(&o, "5.0.0 5.1.10x y") == 0, "not an enhanced code");
  o.len = 0;
  CHECK(relay_reply_append(&o, 550, "", 0) == 0 && str_diffs(&o, "5.0.0 ") == 0, "empty text");
  str_free(&o);
}

static void add(struct relay_caps* c, const char* line) { relay_caps_add(c, line, strlen(line)); }

static void test_caps(void)
{
  struct relay_caps c;
  memset(&c, 0, sizeof c);
  add(&c, "PIPELINING");
  add(&c, "SIZE 10240000");
  add(&c, "auth LOGIN plain");
  add(&c, "XFORWARD NAME ADDR PROTO HELO");
  add(&c, "CHUNKING");
  add(&c, "SIZEX");
  add(&c, "AUTH=LOGIN");
  CHECK(c.bits == (CAP_PIPELINING | CAP_SIZE | CAP_AUTH | CAP_XFORWARD | CAP_CHUNKING), "capability bits");
  CHECK(c.size == 10240000, "SIZE value");
  CHECK(c.auth_plain && c.auth_login, "AUTH mechanisms, case-insensitive");
  CHECK(relay_attr_offered(&c.xforward, "ADDR") && relay_attr_offered(&c.xforward, "helo")
        && !relay_attr_offered(&c.xforward, "PORT") && !relay_attr_offered(&c.xforward, "NAM"), "XFORWARD attributes");
  add(&c, "SIZE 99999999999999999999999999");
  CHECK(c.size == ~0UL, "SIZE overflow saturates");
  relay_caps_clear(&c);
  CHECK(c.bits == 0 && c.size == 0 && !c.auth_plain && c.xforward.len == 0, "clear");
  str_free(&c.xforward);
}

static void enc(int dot, const char* const* parts, const char* want, const char* name)
{
  struct relay_enc e;
  str o = {0, 0, 0};
  relay_enc_start(&e, dot);
  for (int i = 0; parts[i]; i++) relay_enc_feed(&e, parts[i], strlen(parts[i]), &o);
  relay_enc_end(&e, &o);
  CHECK(o.len == strlen(want) && memcmp(o.s, want, o.len) == 0, name);
  str_free(&o);
}

static void test_encoder(void)
{
  enc(1, (const char*[]){ "a\n.b\n..c\n", 0 }, "a\r\n..b\r\n...c\r\n.\r\n", "dot-stuffing, CRLF");
  enc(1, (const char*[]){ "a\n", ".", "b\n.", 0 }, "a\r\n..b\r\n..\r\n.\r\n", "dots across block boundaries");
  enc(1, (const char*[]){ "no newline", 0 }, "no newline\r\n.\r\n", "final line completed");
  enc(1, (const char*[]){ 0 }, ".\r\n", "empty message");
  enc(1, (const char*[]){ "x.\ny\r\n", 0 }, "x.\r\ny\r\r\n.\r\n", "dots inside a line, CR kept");
  enc(0, (const char*[]){ "a\n.b\n", 0 }, "a\r\n.b\r\n", "BDAT: no stuffing, no final dot");
  enc(0, (const char*[]){ "tail", 0 }, "tail\r\n", "BDAT: final line completed");
}

static void test_xtext(void)
{
  str o = {0, 0, 0};
  CHECK(relay_xtext(&o, "a+b=c d\xe9", 8) == 0 && str_diffs(&o, "a+2Bb+3Dc+20d+E9") == 0, "xtext");
  str_free(&o);
}

static void test_params(void)
{
  struct relay_caps c;
  memset(&c, 0, sizeof c);
  const char* refused;
  str o = {0, 0, 0};
  str p = {0, 0, 0};
  str_copyb(&p, "SIZE=10\0BODY=8BITMIME\0FOO=bar\0RET=HDRS", 38);
  CHECK(relay_params(&c, 0, &p, &o, &refused) == 0 && o.len == 0, "nothing offered: all dropped");
  c.bits = CAP_SIZE | CAP_8BITMIME;
  CHECK(relay_params(&c, 0, &p, &o, &refused) == 0 && str_diffs(&o, " SIZE=10 BODY=8BITMIME") == 0, "offered ones kept");
  o.len = 0;
  str_copyb(&p, "SMTPUTF8", 8);
  CHECK(relay_params(&c, 0, &p, &o, &refused) == 1 && refused && strcmp(refused, "SMTPUTF8") == 0, "SMTPUTF8 without extension refused");
  c.bits |= CAP_SMTPUTF8 | CAP_DSN;
  CHECK(relay_params(&c, 0, &p, &o, &refused) == 0 && str_diffs(&o, " SMTPUTF8") == 0, "SMTPUTF8 passed");
  o.len = 0;
  str_copyb(&p, "NOTIFY=NEVER\0ORCPT=rfc822;a@b", 29);
  CHECK(relay_params(&c, 1, &p, &o, &refused) == 0 && str_diffs(&o, " NOTIFY=NEVER ORCPT=rfc822;a@b") == 0, "RCPT DSN parameters");
  o.len = 0;
  CHECK(relay_params(&c, 0, &p, &o, &refused) == 0 && o.len == 0, "RCPT parameters not on MAIL");
  str_copyb(&p, "SIZE=1\r\nRSET", 12);
  CHECK(relay_params(&c, 0, &p, &o, &refused) < 0, "CR/LF in a value refused");
  str_free(&o);
  str_free(&p);
}

static void test_address(void)
{
  str a = {0, 0, 0};
  str_copys(&a, "user@example.org");
  CHECK(relay_address_ok(&a) == 0, "plain address");
  str_copys(&a, "");
  CHECK(relay_address_ok(&a) == 0, "null sender");
  str_copys(&a, "a@b>\r\nRCPT TO:<x@y");
  CHECK(relay_address_ok(&a) < 0, "injection refused");
  str_copyb(&a, "a\0b", 3);
  CHECK(relay_address_ok(&a) < 0, "NUL refused");
  str_free(&a);
}

/* Property: for random bodies split at random points, DATA encoding then
 * SMTP decoding (unstuff a leading dot, CRLF -> LF, stop at ".") gives the
 * body back with a final LF; random reply lines never crash the parser. */
static unsigned long rnd_state = 12345;
static unsigned rnd(void) { rnd_state = rnd_state * 6364136223846793005UL + 1442695040888963407UL; return (unsigned)(rnd_state >> 33); }

static int decode_dot(const str* wire, str* out)
{
  unsigned i = 0;
  out->len = 0;
  while (i < wire->len) {
    const char* crlf = 0;
    for (unsigned j = i; j + 1 < wire->len; j++) if (wire->s[j] == '\r' && wire->s[j + 1] == '\n') { crlf = wire->s + j; break; }
    if (!crlf) return -1;
    unsigned end = (unsigned)(crlf - wire->s);
    if (end - i == 1 && wire->s[i] == '.') return end + 2 == wire->len ? 0 : -1;
    unsigned start = wire->s[i] == '.' ? i + 1 : i;
    if (!str_catb(out, wire->s + start, end - start) || !str_catc(out, '\n')) return -1;
    i = end + 2;
  }
  return -1;
}

static void test_random(void)
{
  static const char alphabet[] = ".\n.a\r b";
  int enc_ok = 1, parse_ok = 1;
  str body = {0, 0, 0}, wire = {0, 0, 0}, back = {0, 0, 0}, text = {0, 0, 0};
  for (int round = 0; round < 2000; round++) {
    body.len = wire.len = 0;
    unsigned n = rnd() % 200;
    for (unsigned i = 0; i < n; i++) str_catc(&body, alphabet[rnd() % (sizeof alphabet - 1)]);
    struct relay_enc e;
    relay_enc_start(&e, 1);
    for (unsigned i = 0; i < body.len; ) {
      unsigned k = 1 + rnd() % 17;
      if (k > body.len - i) k = body.len - i;
      relay_enc_feed(&e, body.s + i, k, &wire);
      i += k;
    }
    relay_enc_end(&e, &wire);
    if (body.len && body.s[body.len - 1] != '\n') str_catc(&body, '\n');
    /* a CR before LF stays a byte of the line */
    if (decode_dot(&wire, &back) < 0 || back.len != body.len || (body.len && memcmp(back.s, body.s, body.len) != 0)) enc_ok = 0;
    char line[64];
    unsigned ll = rnd() % sizeof line;
    for (unsigned i = 0; i < ll; i++) line[i] = (char)(rnd() % 3 == 0 ? '0' + rnd() % 10 : rnd() % 256);
    unsigned code;
    int last;
    const char* t;
    unsigned long tl;
    if (relay_reply_line(line, ll, &code, &last, &t, &tl) == 0) {
      if (code < 200 || code > 599 || t < line || t + tl > line + ll) parse_ok = 0;
      text.len = 0;
      if (relay_reply_append(&text, code, t, tl) < 0) parse_ok = 0;
      for (unsigned i = 0; i < text.len; i++) if ((unsigned char)text.s[i] < 0x20) parse_ok = 0;
    }
  }
  CHECK(enc_ok, "random bodies survive DATA encoding and decoding");
  CHECK(parse_ok, "random reply lines: codes in range, text inside the line, no control bytes out");
  str_free(&body); str_free(&wire); str_free(&back); str_free(&text);
}

int main(void)
{
  test_random();
  test_reply_lines();
  test_reply_text();
  test_caps();
  test_encoder();
  test_xtext();
  test_params();
  test_address();
  return done();
}

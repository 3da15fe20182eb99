/* netstring_qmqp_qmtp.c -- unit and fuzz tests of the netstring parsers
 * of QMQP and QMTP: the core readers (src/core/netstring.c:
 * get_netstring_len, get_netstring) and the protocols' own
 * (src/protocols/qmxp.c, qmqp.c, qmtp.c).
 *
 * Both protocol files are compiled into this test with a fake driver: the
 * handler steps record what they were called with into a transcript, the
 * client input comes from a memfd read through a deliberately small input
 * buffer (so every netstring crosses buffer boundaries), and replies are
 * collected from a second memfd.  Each case checks the exact reply stream,
 * the exit status and the transcript; the fuzz loop mutates valid streams
 * and checks the invariants: no crash (run under ASan by `make asan`),
 * status 0/111, well-formed reply netstrings, data blocks <= 8192 bytes. */
#include "tap.h"
#include "core/netstring.c"
#include "protocols/qmxp.c"
#include <stdarg.h>
#include <sys/mman.h>
#include <unistd.h>

/* ---- the fake driver ---- */

static ibuf t_in;
static obuf t_out;
static int t_outfd = -1;
static str t_log;                       /* transcript of handler calls */
static unsigned long t_maxblock, t_bytes;
static const char* t_fail_hook;         /* hook answering t_fail */
static response t_fail;
static int (*t_respond_line)(unsigned, int, const char*, unsigned long);

static void* t_proto_ctx;               /* the protocol's session context */
void* protocol_context(void) { return t_proto_ctx; }
ibuf* session_input(void) { return &t_in; }
obuf* session_output(void) { return &t_out; }
void session_set_timeout(unsigned seconds) { (void)seconds; }
int session_expired(void) { return 0; }
const char* session_getenv(const char* name) { return getenv(name); }

static void note(const char* a, const str* s)
{
  if (t_log.len) str_catc(&t_log, ';');
  str_cats(&t_log, a);
  if (s) { str_catc(&t_log, ' '); str_cat(&t_log, s); }
}

static const response* answer(const char* hook)
{
  return t_fail_hook && strcmp(t_fail_hook, hook) == 0 ? &t_fail : 0;
}

const response* handle_reset(void) { note("reset", 0); return answer("reset"); }
const response* handle_data_start(void) { note("data_start", 0); return answer("data_start"); }
const response* handle_sender(str* a, str* p) { (void)p; note("sender", a); return answer("sender"); }
const response* handle_recipient(str* a, str* p) { (void)p; note("recipient", a); return answer("recipient"); }
const response* handle_message_end(void) { note("message_end", 0); return answer("message_end"); }
void handle_data_bytes(const char* b, unsigned len)
{
  (void)b;
  if (len > t_maxblock) t_maxblock = len;
  t_bytes += len;
}

RESPONSE(accepted_message, 250, "2.6.0 Message accepted.");
RESPONSE(oom, 451, "4.3.0 Out of memory.");

int respond(const response* r)
{
  const char* m = r->message ? r->message : "";
  for (;;) {
    const char* nl = strchr(m, '\n');
    if (!nl) break;
    if (!t_respond_line(r->number, 0, m, (unsigned long)(nl - m))) return 0;
    m = nl + 1;
  }
  return t_respond_line(r->number, 1, m, strlen(m)) && obuf_flush(&t_out) == 0;
}

/* ---- both protocols in one program ---- */

/* Each file defines `struct protocol protocol`; give each its own name
 * (and a structure of the same layout) after the real header was read. */
struct qmqp_proto { unsigned version; const char* name; int (*respond_line)(unsigned, int, const char*, unsigned long); int (*init)(void); int (*mainloop)(const struct command*);
                   const response* (*session_open)(void**); void (*session_close)(void*); };
struct qmtp_proto { unsigned version; const char* name; int (*respond_line)(unsigned, int, const char*, unsigned long); int (*init)(void); int (*mainloop)(const struct command*);
                   const response* (*session_open)(void**); void (*session_close)(void*); };
#define protocol qmqp_proto
#include "protocols/qmqp.c"
#undef protocol
#define protocol qmtp_proto
#include "protocols/qmtp.c"
#undef protocol

struct result { int status; str out; };

/* Run one session of `proto` on input (len bytes) with an input buffer of
 * bufsize bytes; the replies land in r->out, the transcript in t_log. */
static void session(const char* proto, const char* input, size_t len, unsigned long bufsize, struct result* r)
{
  int in = memfd_create("in", 0);
  t_outfd = memfd_create("out", 0);
  size_t off = 0;
  while (off < len) {
    ssize_t w = write(in, input + off, len - off);
    if (w <= 0) break;
    off += (size_t)w;
  }
  lseek(in, 0, SEEK_SET);
  ibuf_init(&t_in, in, bufsize);
  obuf_init(&t_out, t_outfd, 64);
  t_log.len = 0;
  t_maxblock = t_bytes = 0;
  int is_qmqp = strcmp(proto, "qmqp") == 0;
  (is_qmqp ? qmqp_proto.session_open : qmtp_proto.session_open)(&t_proto_ctx);
  if (is_qmqp) { t_respond_line = qmqp_proto.respond_line; r->status = qmqp_proto.mainloop(0); }
  else { t_respond_line = qmtp_proto.respond_line; r->status = qmtp_proto.mainloop(0); }
  obuf_flush(&t_out);
  (is_qmqp ? qmqp_proto.session_close : qmtp_proto.session_close)(t_proto_ctx);
  t_proto_ctx = 0;
  off_t size = lseek(t_outfd, 0, SEEK_END);
  lseek(t_outfd, 0, SEEK_SET);
  r->out.len = 0;
  str_ready(&r->out, (unsigned)size);
  r->out.len = (unsigned)(read(t_outfd, r->out.s, (size_t)size) > 0 ? size : 0);
  r->out.s[r->out.len] = 0;
  ibuf_close(&t_in);
  obuf_close(&t_out);
  close(in);
  close(t_outfd);
}

/* Run and compare replies, status and (if log) the transcript. */
static void expect(const char* name, const char* proto, const char* input, size_t len,
                   const char* out, int status, const char* log)
{
  static const unsigned long sizes[] = { 1, 3, 16384 };
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    struct result r = { -1, {0, 0, 0} };
    char label[256];
    session(proto, input, len, sizes[i], &r);
    snprintf(label, sizeof label, "%s [%s, buffer %lu]", name, proto, sizes[i]);
    int ok = r.status == status && r.out.len == strlen(out) && memcmp(r.out.s, out, r.out.len) == 0
      && (!log || (t_log.len == strlen(log) && memcmp(t_log.s, log, t_log.len) == 0));
    CHECK(ok, label);
    if (!ok) printf("#   got status %d reply '%s' log '%s'\n", r.status, r.out.s, t_log.s ? t_log.s : "");
    str_free(&r.out);
  }
}

#define EXPECT(name, proto, lit, out, status, log) expect(name, proto, lit, sizeof(lit) - 1, out, status, log)

/* Every reply is a sequence of netstrings `N:[KZD]TEXT,`. */
static int well_formed(const str* s)
{
  unsigned i = 0;
  while (i < s->len) {
    unsigned long n = 0;
    unsigned digits = 0;
    while (i < s->len && s->s[i] >= '0' && s->s[i] <= '9') { n = n * 10 + (unsigned long)(s->s[i++] - '0'); digits++; }
    if (!digits || i >= s->len || s->s[i++] != ':' || n == 0 || n > s->len - i) return 0;
    char c = s->s[i];
    if (c != 'K' && c != 'Z' && c != 'D') return 0;
    i += (unsigned)n;
    if (i >= s->len || s->s[i++] != ',') return 0;
  }
  return 1;
}

static unsigned long long rng = 88172645463325252ull;
static unsigned long next_rand(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return (unsigned long)rng; }

/* ---- the core readers (src/core/netstring.c) ---- */

static ibuf c_in;
static int c_fd = -1;

static void feed(const char* s, size_t len)
{
  if (c_fd >= 0) { ibuf_close(&c_in); close(c_fd); }
  c_fd = memfd_create("in", 0);
  if (write(c_fd, s, len) != (ssize_t)len) return;
  lseek(c_fd, 0, SEEK_SET);
  ibuf_init(&c_in, c_fd, 2);
}

#define FEED(lit) feed(lit, sizeof(lit) - 1)

static int len_of(const char* lit, size_t n, unsigned long* out)
{
  feed(lit, n);
  *out = 12345;
  return get_netstring_len(&c_in, out);
}
#define LEN(lit, out) len_of(lit, sizeof(lit) - 1, out)

static void core_readers(void)
{
  unsigned long n;
  char c;
  str s = {0, 0, 0};

  CHECK(LEN("0:", &n) == 1 && n == 0, "0:");
  CHECK(LEN("12:", &n) == 1 && n == 12, "12:");
  CHECK(LEN("007:", &n) == 1 && n == 7, "leading zeros accepted");
  CHECK(LEN("18446744073709551615:", &n) == 1 && n == 18446744073709551615ul, "largest unsigned long");
  CHECK(LEN("18446744073709551616:", &n) == 0, "overflow is a format error");
  CHECK(LEN("99999999999999999999999:", &n) == 0, "too many digits");
  CHECK(LEN("000000000000000000000001:", &n) == 0, "more than 20 digits even with zeros");
  CHECK(LEN(":", &n) == 0, "empty length is a format error");
  CHECK(LEN("1x:", &n) == 0, "non-digit");
  CHECK(LEN("-1:", &n) == 0, "sign");
  CHECK(LEN(" 1:", &n) == 0, "blank");
  CHECK(LEN("", &n) == -1, "EOF at start");
  CHECK(LEN("12", &n) == -1, "EOF inside the digits");
  CHECK(n == 12345, "length untouched on failure");
  FEED("3:abc,rest");
  CHECK(get_netstring_len(&c_in, &n) == 1 && n == 3 && ibuf_getc(&c_in, &c) == 1 && c == 'a', "colon consumed, data next");

  FEED("3:abc,");
  CHECK(get_netstring(&c_in, &s) == 1 && s.len == 3 && memcmp(s.s, "abc", 3) == 0 && s.s[3] == 0, "get_netstring");
  FEED("0:,");
  CHECK(get_netstring(&c_in, &s) == 1 && s.len == 0, "empty netstring");
  FEED("3:a\0c,");
  CHECK(get_netstring(&c_in, &s) == 1 && s.len == 3 && s.s[1] == 0, "NUL inside data kept");
  FEED("3:abc;");
  CHECK(get_netstring(&c_in, &s) == 0, "bad terminator");
  FEED("3:abc");
  CHECK(get_netstring(&c_in, &s) == -1, "EOF at terminator");
  FEED("3:ab");
  CHECK(get_netstring(&c_in, &s) == -1, "EOF in data");
  FEED("x:");
  CHECK(get_netstring(&c_in, &s) == 0, "bad length");
  FEED("2:ab,2:cd,");
  CHECK(get_netstring(&c_in, &s) == 1 && get_netstring(&c_in, &s) == 1 && memcmp(s.s, "cd", 2) == 0, "two in a row");
  /* issue 10 item 13: bounded; memory follows the bytes that arrive */
  str_free(&s);
  FEED("2000000000:abc");
  CHECK(get_netstring(&c_in, &s) == 0 && s.size < 4096, "2 GB announced: format error, nothing allocated");
  setenv("NETSTRING_MAX", "2100000000", 1);
  FEED("2000000000:abc");
  CHECK(get_netstring(&c_in, &s) == -1 && s.size <= 65536 + 65536 / 8 + 64, "allowed length: grows only with the data");
  setenv("NETSTRING_MAX", "2", 1);
  FEED("3:abc,");
  CHECK(get_netstring(&c_in, &s) == 0, "$NETSTRING_MAX respected");
  FEED("2:ab,");
  CHECK(get_netstring(&c_in, &s) == 1 && s.len == 2, "length at the limit accepted");
  unsetenv("NETSTRING_MAX");

  str_free(&s);
  ibuf_close(&c_in);
  close(c_fd);
}

int main(void)
{
  core_readers();

  /* -- reply encoding -- */
  str s = {0, 0, 0};
  CHECK(qmxp_class(250) == 'K' && qmxp_class(399) == 'K' && qmxp_class(200) == 'K', "2xx/3xx are K");
  CHECK(qmxp_class(400) == 'Z' && qmxp_class(499) == 'Z' && qmxp_class(199) == 'Z' && qmxp_class(0) == 'Z', "4xx and <200 are Z");
  CHECK(qmxp_class(500) == 'D' && qmxp_class(554) == 'D' && qmxp_class(1023) == 'D', "5xx and above are D");
  CHECK(qmxp_class(250 | RESPONSE_FINAL) == 'K', "FINAL bit ignored");
  qmxp_encode(&s, 250, "2.6.0 Message accepted.", 23);
  CHECK_MEM(s.s, s.len, "24:K2.6.0 Message accepted.,", "encode acceptance");
  s.len = 0;
  qmxp_encode(&s, 451, "", 0);
  CHECK_MEM(s.s, s.len, "1:Z,", "encode empty text");
  str_free(&s);

  /* -- QMQP -- */
  EXPECT("qmqp accepted", "qmqp", "28:4:ab\nc,3:a@b,3:c@d,3:e@f,,",
         "24:K2.6.0 Message accepted.,", 0,
         "reset;data_start;sender a@b;recipient c@d;recipient e@f;message_end");
  CHECK(t_bytes == 4 && t_maxblock == 4, "qmqp body bytes counted");
  EXPECT("qmqp empty input", "qmqp", "", "", 0, "reset");
  EXPECT("qmqp eof in wrapper length", "qmqp", "12", "", 0, "reset");
  EXPECT("qmqp eof in body length", "qmqp", "12:4", "", 0, "reset");
  EXPECT("qmqp bad wrapper", "qmqp", "x", "26:ZInvalid wrapper netstring,", 111, "reset");
  EXPECT("qmqp empty wrapper length", "qmqp", ":", "26:ZInvalid wrapper netstring,", 111, "reset");
  EXPECT("qmqp overflowing wrapper", "qmqp", "18446744073709551616:", "26:ZInvalid wrapper netstring,", 111, "reset");
  EXPECT("qmqp bad body length", "qmqp", "1:x", "31:ZInvalid message body netstring,", 111, "reset");
  EXPECT("qmqp zero body", "qmqp", "1:0:,", "20:ZZero length message,", 111, "reset");
  EXPECT("qmqp eof in body", "qmqp", "1:5:ab", "23:ZEOF while reading body,", 111, "reset;data_start");
  EXPECT("qmqp huge body length", "qmqp", "1:18446744073709551615:ab", "23:ZEOF while reading body,", 111, "reset;data_start");
  EXPECT("qmqp eof at comma", "qmqp", "1:2:ab", "24:ZEOF while reading comma,", 111, "reset;data_start");
  EXPECT("qmqp bad comma", "qmqp", "1:2:ab;", "29:ZInvalid netstring terminator,", 111, "reset;data_start");
  EXPECT("qmqp eof in sender", "qmqp", "1:2:ab,3:a", "33:ZEOF while reading sender address,", 111, "reset;data_start");
  EXPECT("qmqp bad sender", "qmqp", "1:2:ab,3:a@b;", "25:ZInvalid sender netstring,", 111, "reset;data_start");
  EXPECT("qmqp huge sender skipped", "qmqp", "1:2:ab,4000000000:a@b,", "33:ZEOF while reading sender address,", 111, "reset;data_start");
  EXPECT("qmqp eof in recipient", "qmqp", "1:2:ab,3:a@b,3:c", "33:ZEOF while reading recipient list,", 111, "reset;data_start;sender a@b");
  EXPECT("qmqp bad recipient", "qmqp", "1:2:ab,3:a@b,3:c@d;", "28:ZInvalid recipient netstring,", 111, "reset;data_start;sender a@b");
  EXPECT("qmqp eof before end", "qmqp", "1:2:ab,3:a@b,3:c@d,", "33:ZEOF before end of recipient list,", 111, "reset;data_start;sender a@b;recipient c@d");
  EXPECT("qmqp no recipients", "qmqp", "1:2:ab,0:,,", "24:K2.6.0 Message accepted.,", 0, "reset;data_start;sender ;message_end");
  EXPECT("qmqp NUL sender", "qmqp", "1:2:ab,3:a\0b,3:c@d,,", "42:D5.1.7 Sender address contains a NUL byte.,", 0, "reset;data_start");

  t_fail_hook = "sender";
  t_fail = (response){ 553, "5.7.1 No\nnever" };
  EXPECT("qmqp sender refused, multi-line", "qmqp", "1:2:ab,3:a@b,3:c@d,,", "15:D5.7.1 No\nnever,", 0, "reset;data_start;sender a@b");
  t_fail_hook = "reset";
  t_fail = (response){ 451, "4.3.0 later" };
  EXPECT("qmqp reset error kept", "qmqp", "1:2:ab,3:a@b,3:c@d,,", "12:Z4.3.0 later,", 0, "reset");
  t_fail_hook = "data_start";
  EXPECT("qmqp data_start error", "qmqp", "1:2:ab,3:a@b,3:c@d,,", "12:Z4.3.0 later,", 0, "reset;data_start");
  CHECK(t_bytes == 0, "no data after a data_start error");
  t_fail_hook = "message_end";
  t_fail = (response){ 250, 0 };
  EXPECT("qmqp text-less acceptance", "qmqp", "1:2:ab,3:a@b,,", "24:K2.6.0 Message accepted.,", 0, 0);
  t_fail = (response){ 100, "low" };
  EXPECT("qmqp code below 200 is Z", "qmqp", "1:2:ab,3:a@b,,", "4:Zlow,", 0, 0);
  t_fail_hook = 0;

  /* -- QMTP -- */
  EXPECT("qmtp two messages", "qmtp", "4:\nab\n,3:a@b,6:3:c@d,,2:\nx,0:,0:,",
         "24:K2.6.0 Message accepted.,24:K2.6.0 Message accepted.,", 0,
         "reset;data_start;sender a@b;recipient c@d;message_end;reset;data_start;sender ;message_end;reset");
  EXPECT("qmtp LF only", "qmtp", "1:\n,0:,0:,", "24:K2.6.0 Message accepted.,", 0, 0);
  CHECK(t_bytes == 0, "qmtp leading LF not passed on");
  EXPECT("qmtp zero", "qmtp", "0:,", "20:ZZero length message,", 111, "reset");
  EXPECT("qmtp non-LF", "qmtp", "2:ab,", "37:ZCannot handle non-LF line terminator,", 111, "reset");
  EXPECT("qmtp eof at NL", "qmtp", "2:", "26:ZEOF while reading body NL,", 111, "reset");
  EXPECT("qmtp eof in list length", "qmtp", "2:\nx,0:,6", "33:ZEOF while reading recipient list,", 111, 0);
  EXPECT("qmtp bad list length", "qmtp", "2:\nx,0:,x", "28:ZInvalid recipient netstring,", 111, 0);
  EXPECT("qmtp bad list terminator", "qmtp", "2:\nx,0:,6:3:c@d,x", "28:ZInvalid recipient netstring,", 111, 0);
  EXPECT("qmtp inner bad length", "qmtp", "2:\nx,0:,7:3:c@d,x,", "25:ZInvalid netstring length,", 111, 0);
  EXPECT("qmtp inner empty length", "qmtp", "2:\nx,0:,2::,,", "25:ZInvalid netstring length,", 111, 0);
  EXPECT("qmtp inner too long", "qmtp", "2:\nx,0:,6:5:c@d,,", "26:ZNetstring length too long,", 111, 0);
  EXPECT("qmtp inner digits run out", "qmtp", "2:\nx,0:,1:3,", "26:ZNetstring length too long,", 111, 0);
  EXPECT("qmtp inner exact fit", "qmtp", "2:\nx,0:,6:4:c@d,,", "24:ZNetstring missing comma,", 111, 0);
  EXPECT("qmtp inner bad comma", "qmtp", "2:\nx,0:,6:3:c@dx,", "24:ZNetstring missing comma,", 111, 0);
  EXPECT("qmtp inner overflow", "qmtp", "2:\nx,0:,25:99999999999999999999999:,,", "26:ZNetstring length too long,", 111, 0);
  EXPECT("qmtp outer error wins", "qmtp", "2:\nx,0:,6:3xc@d,;", "28:ZInvalid recipient netstring,", 111, 0);
  EXPECT("qmtp outer eof wins", "qmtp", "2:\nx,0:,9:3xc@d,", "33:ZEOF while reading recipient list,", 111, 0);

  t_fail_hook = "recipient";
  t_fail = (response){ 553, "5.1.1 no" };
  EXPECT("qmtp refusal skips the rest unparsed", "qmtp", "2:\nx,3:a@b,16:3:c@d,3:e@f,junk,2:\nx,0:,0:,",
         "9:D5.1.1 no,24:K2.6.0 Message accepted.,", 0,
         "reset;data_start;sender a@b;recipient c@d;reset;data_start;sender ;message_end;reset");
  t_fail_hook = 0;

  /* -- address limit -- */
  setenv("QMTP_MAXADDR", "3", 1);
  EXPECT("qmtp sender over limit", "qmtp", "2:\nx,4:a@bc,6:3:c@d,,", "31:D5.1.7 Sender address too long.,", 0, "reset;data_start;reset");
  EXPECT("qmtp recipient over limit", "qmtp", "2:\nx,3:a@b,13:3:c@d,4:e@fg,,2:\nx,0:,0:,",
         "34:D5.1.3 Recipient address too long.,24:K2.6.0 Message accepted.,", 0,
         "reset;data_start;sender a@b;recipient c@d;reset;data_start;sender ;message_end;reset");
  unsetenv("QMTP_MAXADDR");
  setenv("QMQP_MAXADDR", "3", 1);
  EXPECT("qmqp recipient over limit", "qmqp", "1:2:ab,3:a@b,4:c@de,3:f@g,,", "34:D5.1.3 Recipient address too long.,", 0,
         "reset;data_start;sender a@b");
  unsetenv("QMQP_MAXADDR");

  /* -- streaming: block sizes -- */
  {
    size_t n = 100000;
    str big = {0, 0, 0};
    str_cats(&big, "100001:\n");
    for (size_t i = 0; i < n; i++) str_catc(&big, (char)(i * 7));
    str_cats(&big, ",0:,0:,");
    struct result r = { -1, {0, 0, 0} };
    session("qmtp", big.s, big.len, 16384, &r);
    CHECK(r.status == 0 && t_bytes == n && t_maxblock == QMXP_BLOCK, "qmtp 100000 bytes in blocks of at most 8192");
    session("qmtp", big.s, big.len, 1000, &r);
    CHECK(r.status == 0 && t_bytes == n && t_maxblock <= 1000, "blocks follow what the buffer holds");
    str_free(&r.out);
    str_free(&big);
  }

  /* -- fuzz: mutated streams keep the invariants -- */
  {
    static const char* seeds[][2] = {
      { "qmqp", "28:4:ab\nc,3:a@b,3:c@d,3:e@f,," },
      { "qmtp", "4:\nab\n,3:a@b,12:3:c@d,3:e@f,,2:\nx,0:,0:," },
    };
    int bad = 0;
    for (int iter = 0; iter < 20000; iter++) {
      const char* proto = seeds[iter % 2][0];
      const char* seed = seeds[iter % 2][1];
      char buf[128];
      size_t len = strlen(seed);
      memcpy(buf, seed, len);
      int edits = 1 + (int)(next_rand() % 4);
      for (int e = 0; e < edits; e++) {
        unsigned long k = next_rand();
        size_t pos = len ? k % len : 0;
        static const char alphabet[] = "0123456789:,\n\0x9";
        char c = alphabet[(k >> 16) % (sizeof alphabet - 1)];
        switch ((k >> 8) % 4) {
        case 0: buf[pos] = c; break;                                       /* replace */
        case 1: if (len > 1) { memmove(buf + pos, buf + pos + 1, len - pos - 1); len--; } break;  /* delete */
        case 2: if (len < sizeof buf - 1) { memmove(buf + pos + 1, buf + pos, len - pos); buf[pos] = c; len++; } break;
        case 3: len = pos; break;                                          /* truncate */
        }
      }
      struct result r = { -1, {0, 0, 0} };
      session(proto, buf, len, 1 + next_rand() % 9, &r);
      if (!(r.status == 0 || r.status == 111) || !well_formed(&r.out) || t_maxblock > QMXP_BLOCK
          || (r.status == 111 && (r.out.len == 0 || r.out.s[r.out.len - 1] != ','))) {
        if (!bad) printf("# fuzz case %d (%s) status %d reply '%s'\n", iter, proto, r.status, r.out.s);
        bad++;
      }
      str_free(&r.out);
    }
    CHECK(bad == 0, "fuzz: 20000 mutated streams, status 0/111, well-formed replies");
  }
  str_free(&t_log);
  return done();
}

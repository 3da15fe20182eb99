/* proxy.c -- see proxy.h.  References: HAProxy's "The PROXY protocol"
 * (versions 1 and 2).  Every length is checked against `len` before a
 * byte is read; address text is copied only after its length is known to
 * fit the (protocol-bounded) field. */
#include "daemon/proxy.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

static const unsigned char v2sig[12] = {
  0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};
static const char v1sig[] = "PROXY ";

unsigned proxy_versions(const char* name)
{
  static const struct { const char* name; unsigned v; } names[] = {
    { "v1", PROXY_ACCEPT_V1 }, { "1", PROXY_ACCEPT_V1 },
    { "v2", PROXY_ACCEPT_V2 }, { "2", PROXY_ACCEPT_V2 },
    { "any", PROXY_ACCEPT_ANY },
  };
  for (size_t i = 0; name && i < sizeof names / sizeof names[0]; i++)
    if (strcmp(name, names[i].name) == 0) return names[i].v;
  return 0;
}

static enum proxy_status bad(const char** why, const char* reason)
{
  *why = reason;
  return PROXY_BAD;
}

/* ---- version 1 ---- */

/* Next space-separated token of [*p, end): at least one byte, no leading
 * space; *p moves past the token and one following space if any. */
static int v1_token(const char** p, const char* end, const char** tok, size_t* tlen)
{
  const char* s = *p;
  const char* e = s;
  while (e < end && *e != ' ') e++;
  if (e == s) return -1;
  *tok = s;
  *tlen = (size_t)(e - s);
  *p = (e < end) ? e + 1 : e;
  return 0;
}

static int v1_addr(int family, const char* tok, size_t tlen, struct sockaddr_storage* ss)
{
  char text[INET6_ADDRSTRLEN];
  if (tlen == 0 || tlen >= sizeof text) return -1;
  memcpy(text, tok, tlen);
  text[tlen] = 0;
  memset(ss, 0, sizeof *ss);
  if (family == AF_INET) {
    struct sockaddr_in* sin = (struct sockaddr_in*)ss;
    sin->sin_family = AF_INET;
    return inet_pton(AF_INET, text, &sin->sin_addr) == 1 ? 0 : -1;
  }
  struct sockaddr_in6* sin6 = (struct sockaddr_in6*)ss;
  sin6->sin6_family = AF_INET6;
  return inet_pton(AF_INET6, text, &sin6->sin6_addr) == 1 ? 0 : -1;
}

/* Decimal 0..65535, no sign, no leading zero (except "0"). */
static int v1_port(const char* tok, size_t tlen, unsigned* port)
{
  unsigned v = 0;
  if (tlen == 0 || tlen > 5 || (tlen > 1 && tok[0] == '0')) return -1;
  for (size_t i = 0; i < tlen; i++) {
    if (tok[i] < '0' || tok[i] > '9') return -1;
    v = v * 10 + (unsigned)(tok[i] - '0');
  }
  if (v > 65535) return -1;
  *port = v;
  return 0;
}

static void set_port(struct sockaddr_storage* ss, unsigned port)
{
  if (ss->ss_family == AF_INET) ((struct sockaddr_in*)ss)->sin_port = htons((uint16_t)port);
  else ((struct sockaddr_in6*)ss)->sin6_port = htons((uint16_t)port);
}

static enum proxy_status parse_v1(const unsigned char* b, size_t len, struct proxy_result* r,
                                  const char** why)
{
  size_t n = len < sizeof v1sig - 1 ? len : sizeof v1sig - 1;
  if (memcmp(b, v1sig, n) != 0) return bad(why, "not a PROXY header");
  const unsigned char* lf = memchr(b, '\n', len < PROXY_V1_MAX ? len : PROXY_V1_MAX);
  if (!lf) return len >= PROXY_V1_MAX ? bad(why, "v1 header too long") : PROXY_MORE;
  size_t linelen = (size_t)(lf - b) + 1;
  if (linelen < sizeof v1sig + 1 || lf[-1] != '\r') return bad(why, "v1 header without CRLF");
  const char* p = (const char*)b + sizeof v1sig - 1;
  const char* end = (const char*)lf - 1;   /* the CR */
  if (memchr(p, 0, (size_t)(end - p))) return bad(why, "v1 header with NUL");
  const char* tok; size_t tlen;
  if (v1_token(&p, end, &tok, &tlen) < 0) return bad(why, "v1 protocol missing");
  r->version = 1;
  r->header_len = linelen;
  if (tlen == 7 && memcmp(tok, "UNKNOWN", 7) == 0) {
    r->local = 1;   /* the rest of the line is to be ignored (spec 2.1) */
    return PROXY_DONE;
  }
  int family;
  if (tlen == 4 && memcmp(tok, "TCP4", 4) == 0) family = AF_INET;
  else if (tlen == 4 && memcmp(tok, "TCP6", 4) == 0) family = AF_INET6;
  else return bad(why, "v1 unknown protocol");
  const char *s, *d, *sp, *dp; size_t sl, dl, spl, dpl;
  unsigned sport, dport;
  if (v1_token(&p, end, &s, &sl) < 0 || v1_token(&p, end, &d, &dl) < 0
      || v1_token(&p, end, &sp, &spl) < 0 || v1_token(&p, end, &dp, &dpl) < 0
      || p != end || p[-1] == ' ')
    return bad(why, "v1 wrong number of fields");
  if (v1_addr(family, s, sl, &r->src) < 0 || v1_addr(family, d, dl, &r->dst) < 0)
    return bad(why, "v1 bad address");
  if (v1_port(sp, spl, &sport) < 0 || v1_port(dp, dpl, &dport) < 0)
    return bad(why, "v1 bad port");
  set_port(&r->src, sport);
  set_port(&r->dst, dport);
  r->local = 0;
  return PROXY_DONE;
}

/* ---- version 2 ---- */

static enum proxy_status parse_v2(const unsigned char* b, size_t len, struct proxy_result* r,
                                  const char** why)
{
  size_t n = len < sizeof v2sig ? len : sizeof v2sig;
  if (memcmp(b, v2sig, n) != 0) return bad(why, "not a PROXY header");
  if (len < 16) return PROXY_MORE;
  if ((b[12] >> 4) != 2) return bad(why, "v2 unsupported version");
  unsigned cmd = b[12] & 0x0f;
  if (cmd > 1) return bad(why, "v2 unknown command");
  unsigned famproto = b[13];
  size_t blen = ((size_t)b[14] << 8) | b[15];
  r->version = 2;
  r->header_len = 16 + blen;
  if (cmd == 0) {   /* LOCAL: health check or the proxy's own connection */
    r->local = 1;
    return PROXY_DONE;
  }
  unsigned family = famproto >> 4, proto = famproto & 0x0f;
  if (family > 3 || proto > 2) return bad(why, "v2 unknown address family");
  static const size_t need[4] = { 0, 12, 36, 216 };
  if (blen < need[family]) return bad(why, "v2 address block too short");
  if (family == 0 || family == 3 || proto != 1) {
    /* UNSPEC, UNIX or not a stream: the receiver uses the real endpoints. */
    r->local = 1;
    return PROXY_DONE;
  }
  if (len < 16 + need[family]) return PROXY_MORE;
  const unsigned char* a = b + 16;
  memset(&r->src, 0, sizeof r->src);
  memset(&r->dst, 0, sizeof r->dst);
  if (family == 1) {
    struct sockaddr_in* s4 = (struct sockaddr_in*)&r->src;
    struct sockaddr_in* d4 = (struct sockaddr_in*)&r->dst;
    s4->sin_family = d4->sin_family = AF_INET;
    memcpy(&s4->sin_addr, a, 4);
    memcpy(&d4->sin_addr, a + 4, 4);
    memcpy(&s4->sin_port, a + 8, 2);
    memcpy(&d4->sin_port, a + 10, 2);
  } else {
    struct sockaddr_in6* s6 = (struct sockaddr_in6*)&r->src;
    struct sockaddr_in6* d6 = (struct sockaddr_in6*)&r->dst;
    s6->sin6_family = d6->sin6_family = AF_INET6;
    memcpy(&s6->sin6_addr, a, 16);
    memcpy(&d6->sin6_addr, a + 16, 16);
    memcpy(&s6->sin6_port, a + 32, 2);
    memcpy(&d6->sin6_port, a + 34, 2);
  }
  r->local = 0;
  return PROXY_DONE;
}

enum proxy_status proxy_parse(const unsigned char* b, size_t len, unsigned versions,
                              struct proxy_result* r, const char** why)
{
  *why = 0;
  memset(r, 0, sizeof *r);
  if (len == 0) return PROXY_MORE;
  if (b[0] == v1sig[0] && (versions & PROXY_ACCEPT_V1)) return parse_v1(b, len, r, why);
  if (b[0] == v2sig[0] && (versions & PROXY_ACCEPT_V2)) return parse_v2(b, len, r, why);
  return bad(why, "no PROXY header of an accepted version");
}

/* Unit tests of plugin-spf's header fields: exact text, quoting of
 * client-supplied values, identities. */
#include "../../src/plugins/spf/header.c"
#include "tap.h"

static int field(const struct spf_facts* f, int received, const char* want)
{
  str s = { 0, 0, 0 };
  int ok = received ? spf_received_header(&s, f) : spf_authres_header(&s, f);
  int r = ok && s.len == strlen(want) && memcmp(s.s, want, s.len) == 0;
  if (!r) printf("# got: %.*s\n", (int)s.len, s.s ? s.s : "");
  str_free(&s);
  return r;
}

static int clean(const struct spf_facts* f)
{
  str s = { 0, 0, 0 };
  int ok = spf_received_header(&s, f) && spf_authres_header(&s, f);
  for (unsigned i = 0; ok && i < s.len; i++) {
    unsigned char c = (unsigned char)s.s[i];
    if (c == '\n') ok = i + 1 == s.len || s.s[i + 1] == '\t' || memcmp(s.s + i + 1, "Authentication-Results:", 23) == 0;
    else if (c == '\r' || c == 0 || c >= 127 || (c < 32 && c != '\t')) ok = 0;
  }
  str_free(&s);
  return ok;
}

int main(void)
{
  struct spf_facts f = { "pass", "mx.example", "192.0.2.1", "a@b.example", "c.example", 0 };
  CHECK(field(&f, 1, "Received-SPF: pass (mx.example: domain of b.example designates 192.0.2.1 as permitted sender)\n"
                     "\tclient-ip=192.0.2.1; envelope-from=\"a@b.example\";\n"
                     "\thelo=c.example; receiver=mx.example; identity=mailfrom;\n"), "Received-SPF pass");
  CHECK(field(&f, 0, "Authentication-Results: mx.example;\n\tspf=pass smtp.mailfrom=a@b.example\n"), "A-R pass");
  f.result = "softfail";
  CHECK(field(&f, 1, "Received-SPF: softfail (mx.example: domain of transitioning b.example does not designate 192.0.2.1 as permitted sender)\n"
                     "\tclient-ip=192.0.2.1; envelope-from=\"a@b.example\";\n"
                     "\thelo=c.example; receiver=mx.example; identity=mailfrom;\n"), "Received-SPF softfail");
  f.result = "neutral";
  f.ip = "2001:db8::1";
  CHECK(field(&f, 1, "Received-SPF: neutral (mx.example: 2001:db8::1 is neither permitted nor denied by domain of b.example)\n"
                     "\tclient-ip=2001:db8::1; envelope-from=\"a@b.example\";\n"
                     "\thelo=c.example; receiver=mx.example; identity=mailfrom;\n"), "Received-SPF neutral IPv6");
  struct spf_facts h = { "fail", "mx.example", "192.0.2.1", "", "helo.example", 1 };
  CHECK(field(&h, 1, "Received-SPF: fail (mx.example: domain of helo.example does not designate 192.0.2.1 as permitted sender)\n"
                     "\tclient-ip=192.0.2.1; envelope-from=\"\";\n"
                     "\thelo=helo.example; receiver=mx.example; identity=helo;\n"), "Received-SPF HELO identity");
  CHECK(field(&h, 0, "Authentication-Results: mx.example;\n\tspf=fail smtp.helo=helo.example\n"), "A-R HELO identity");
  struct spf_facts q = { "none", "mx.example", "192.0.2.1", "we\"i(r)d\\x@b.example", "bad helo\r\nX-Evil: 1", 0 };
  CHECK(clean(&q), "hostile values: no line break, control byte or 8-bit byte escapes");
  CHECK(field(&q, 0, "Authentication-Results: mx.example;\n\tspf=none smtp.mailfrom=b.example\n"), "A-R: unsafe local part gives the domain");
  struct spf_facts d = { "none", "mx.example", "192.0.2.1", "a@b..example", "", 0 };
  CHECK(field(&d, 0, "Authentication-Results: mx.example;\n\tspf=none\n"), "A-R: unsafe domain left out");
  struct spf_facts e = { "permerror", "mx.example", "192.0.2.1", "x@b.example", "", 0 };
  str s = { 0, 0, 0 };
  CHECK(spf_received_header(&s, &e) && strstr(s.s, "helo=unknown;") && strstr(s.s, "permanent error in processing domain of b.example"), "no HELO: unknown; permerror comment");
  str_free(&s);
  struct spf_facts c = { "pass", "mx.example", "192.0.2.1", "a@b.ex(am)ple", "x", 0 };
  CHECK(spf_received_header(&s, &c) && strstr(s.s, "domain of b.ex?am?ple designates"), "parentheses never reach a comment");
  str_free(&s);
  return done();
}

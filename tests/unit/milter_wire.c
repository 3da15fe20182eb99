/* Unit tests of the milter wire format: packets, negotiation answers,
 * replycode texts and $MILTERS items. */
#include "../../src/plugins/milter/wire.c"
#include "tap.h"

static unsigned u32(const char* p)
{
  const unsigned char* u = (const unsigned char*)p;
  return (unsigned)u[0] << 24 | (unsigned)u[1] << 16 | (unsigned)u[2] << 8 | u[3];
}

static int optneg(const char* b, unsigned len, struct mw_optneg* o) { return mw_optneg(b, len, o); }

int main(void)
{
  str out = { 0, 0, 0 }, text = { 0, 0, 0 };
  CHECK(mw_packet(&out, 'H', "host\0", 5) && out.len == 10 && u32(out.s) == 6 && out.s[4] == 'H'
        && memcmp(out.s + 5, "host", 5) == 0, "packet: length counts the command byte");
  out.len = 0;
  CHECK(mw_packet(&out, 'A', 0, 0) && out.len == 5 && u32(out.s) == 1, "packet without payload");

  const char* s[3];
  unsigned l[3];
  CHECK(mw_strings("a\0bc\0", 5, 2, s, l) == 0 && l[0] == 1 && l[1] == 2 && s[1][0] == 'b', "two strings");
  CHECK(mw_strings("a\0bc", 4, 2, s, l) < 0, "missing NUL");
  CHECK(mw_strings("a\0b\0c\0", 6, 2, s, l) < 0, "extra string");
  CHECK(mw_strings("", 0, 1, s, l) < 0, "empty payload");

  struct mw_optneg o;
  memset(&o, 0, sizeof o);
  char neg[64] = { 0, 0, 0, 6, 0, 0, 0, 0x13, 0, 0, 0x10, 0x02 };
  CHECK(optneg(neg, 12, &o) == 0 && o.version == 6 && o.actions == 0x13 && o.protocol == 0x1002, "plain answer");
  memcpy(neg + 12, "\0\0\0\2{mail_addr} i\0", 18);
  CHECK(optneg(neg, 30, &o) == 0 && o.has_symlist[MW_MAIL] && strcmp(o.symlist[MW_MAIL].s, "{mail_addr} i") == 0
        && !o.has_symlist[MW_CONNECT], "macro list for MAIL");
  CHECK(optneg(neg, 29, &o) < 0, "macro list without NUL");
  neg[15] = 9;
  CHECK(optneg(neg, 30, &o) < 0, "macro list for an unknown stage");
  neg[3] = 7;
  CHECK(optneg(neg, 12, &o) < 0, "version 7 refused");
  neg[3] = 1;
  CHECK(optneg(neg, 12, &o) < 0, "version 1 refused");
  neg[3] = 2;
  CHECK(optneg(neg, 12, &o) == 0, "version 2 accepted");
  neg[6] = 0x02;
  CHECK(optneg(neg, 12, &o) < 0, "action not offered");
  neg[6] = 0;
  neg[10] = 0x08;
  CHECK(optneg(neg, 12, &o) < 0, "step flag not offered (RCPT_REJ)");
  CHECK(optneg(neg, 11, &o) < 0, "short answer");
  mw_optneg_free(&o);

  unsigned n = 0;
  CHECK(mw_replycode("550 5.7.1 go away\0", 18, &n, &text) == 0 && n == 550 && strcmp(text.s, "5.7.1 go away") == 0,
        "one-line reply");
  CHECK(mw_replycode("451-4.7.1 a\r\n451 4.7.1 b\0", 25, &n, &text) == 0 && n == 451
        && strcmp(text.s, "4.7.1 a\n4.7.1 b") == 0, "multi-line reply");
  CHECK(mw_replycode("250 ok\0", 7, &n, &text) < 0, "2xx refused");
  CHECK(mw_replycode("550-a\r\n551 b\0", 14, &n, &text) < 0, "codes differ");
  CHECK(mw_replycode("550-a\0", 6, &n, &text) < 0, "last line with a dash");
  CHECK(mw_replycode("550 a\r\n550 b\0", 14, &n, &text) < 0, "space before the last line");
  CHECK(mw_replycode("550 a\x01\0", 7, &n, &text) < 0, "control character");
  CHECK(mw_replycode("550 a", 5, &n, &text) < 0, "no NUL");
  CHECK(mw_replycode("55\0", 3, &n, &text) < 0, "too short");
  CHECK(mw_replycode("550\0", 4, &n, &text) == 0 && n == 550 && text.len == 0, "code alone");

  struct mw_spec sp;
  memset(&sp, 0, sizeof sp);
  CHECK(mw_spec_parse("inet:127.0.0.1:8891", 19, &sp) == 0 && sp.family == MW_INET && sp.port == 8891
        && strcmp(sp.host.s, "127.0.0.1") == 0, "inet");
  CHECK(mw_spec_parse("inet:milter.example:12", 22, &sp) == 0 && strcmp(sp.host.s, "milter.example") == 0, "inet host");
  CHECK(mw_spec_parse("inet6:[::1]:8891", 16, &sp) == 0 && sp.family == MW_INET6 && strcmp(sp.host.s, "::1") == 0,
        "inet6");
  CHECK(mw_spec_parse("unix:/run/o.sock", 16, &sp) == 0 && sp.family == MW_UNIX && strcmp(sp.host.s, "/run/o.sock") == 0,
        "unix");
  CHECK(mw_spec_parse("local:/x", 8, &sp) == 0 && sp.family == MW_UNIX, "local");
  CHECK(mw_spec_parse("inet:host", 9, &sp) < 0, "no port");
  CHECK(mw_spec_parse("inet:host:0", 11, &sp) < 0, "port 0");
  CHECK(mw_spec_parse("inet:host:65536", 15, &sp) < 0, "port too large");
  CHECK(mw_spec_parse("inet:host:8x", 12, &sp) < 0, "port not numeric");
  CHECK(mw_spec_parse("inet::1:25", 10, &sp) < 0, "IPv6 without brackets");
  CHECK(mw_spec_parse("inet:[::1:25", 12, &sp) < 0, "unclosed bracket");
  CHECK(mw_spec_parse("inet::25", 8, &sp) < 0, "empty host");
  CHECK(mw_spec_parse("tcp:host:25", 11, &sp) < 0, "unknown kind");
  CHECK(mw_spec_parse("unix:", 5, &sp) < 0, "empty path");
  const char* list = " inet:a:1,{ unix:/s , default_action = accept,command_timeout=5m }\tinet:b:2 {bad";
  unsigned pos = 0, len = (unsigned)strlen(list);
  struct mw_item it;
  CHECK(mw_list_next(list, len, &pos, &it) == 1 && it.speclen == 8 && memcmp(it.spec, "inet:a:1", 8) == 0
        && it.optslen == 0, "list: plain item");
  CHECK(mw_list_next(list, len, &pos, &it) == 1 && it.speclen == 7 && memcmp(it.spec, "unix:/s", 7) == 0,
        "list: braced item");
  unsigned opos = 0, nl, vl;
  const char* nm;
  const char* val;
  CHECK(mw_option_next(it.opts, it.optslen, &opos, &nm, &nl, &val, &vl) == 1 && nl == 14
        && memcmp(nm, "default_action", 14) == 0 && vl == 6 && memcmp(val, "accept", 6) == 0, "option with spaces");
  CHECK(mw_option_next(it.opts, it.optslen, &opos, &nm, &nl, &val, &vl) == 1 && vl == 2 && memcmp(val, "5m", 2) == 0,
        "second option");
  CHECK(mw_option_next(it.opts, it.optslen, &opos, &nm, &nl, &val, &vl) == 0, "end of options");
  CHECK(mw_list_next(list, len, &pos, &it) == 1 && it.speclen == 8 && memcmp(it.spec, "inet:b:2", 8) == 0,
        "list: item after a brace");
  CHECK(mw_list_next(list, len, &pos, &it) < 0, "list: unclosed brace");
  pos = 0;
  CHECK(mw_list_next(" , ", 3, &pos, &it) == 0, "list: only separators");
  pos = 0;
  CHECK(mw_list_next("unix:/a\0 unix:/b", 16, &pos, &it) == 1 && it.speclen == 7
        && mw_list_next("unix:/a\0 unix:/b", 16, &pos, &it) == 1 && it.speclen == 7 && it.spec[6] == 'b',
        "list: an item cut out in place (NUL) ends where it ended");
  opos = 0;
  CHECK(mw_option_next(" novalue", 8, &opos, &nm, &nl, &val, &vl) < 0, "option without =");
  unsigned long secs = 0;
  CHECK(mw_time("10", 2, &secs) == 0 && secs == 10, "time: seconds");
  CHECK(mw_time("2m", 2, &secs) == 0 && secs == 120, "time: minutes");
  CHECK(mw_time("1h", 2, &secs) == 0 && secs == 3600, "time: hours");
  CHECK(mw_time("5x", 2, &secs) < 0 && mw_time("", 0, &secs) < 0 && mw_time("5ss", 3, &secs) < 0
        && mw_time("99999999999", 11, &secs) < 0, "time: bad values");
  str_free(&sp.host);
  str_free(&out);
  str_free(&text);
  return done();
}

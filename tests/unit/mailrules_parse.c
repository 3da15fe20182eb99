/* mailrules_parse.c -- unit tests of the mail rules parser and matcher
 * (src/plugins/mailrules/parse.c, match.c, glob.h; mailrules.md). */
#include "../../src/plugins/mailrules/parse.c"
#include "../../src/plugins/mailrules/match.c"
#include "tap.h"
#include <stdlib.h>

static enum rules_error parse_text(struct ruleset* rs, const char* text, str* why)
{
  FILE* f = fmemopen((void*)text, strlen(text), "r");
  enum rules_error e = ruleset_parse(rs, f, "rules", why);
  fclose(f);
  return e;
}

static int unesc(const char* in, const char* expect, size_t elen)
{
  str o = {0, 0, 0};
  int ok = rules_unescape(&o, in, strlen(in)) && o.len == elen && memcmp(o.s, expect, elen) == 0;
  str_free(&o);
  return ok;
}

static int gm(const char* p, const char* s) { return glob_match(p, strlen(p), s, strlen(s)); }

/* Walk result code for sender/recipient (recipient NULL: sender list). */
static char walk(const struct ruleset* rs, const char* snd, const char* rcpt)
{
  struct addr s, r;
  addr_set(&s, snd, strlen(snd));
  if (rcpt) addr_set(&r, rcpt, strlen(rcpt));
  int stop;
  const struct rule* x = rules_walk(rs, rcpt ? &rs->recipient : &rs->sender, &s, rcpt ? &r : 0, 0, 0, &stop);
  return x ? x->code : '-';
}

int main(void)
{
  /* escapes */
  CHECK(unesc("a\\nb", "a\nb", 3), "\\n is LF");
  CHECK(unesc("a\\:b\\\\c\\,d\\qe", "a:b\\c,dqe", 9), "\\: \\\\ \\, and \\x");
  CHECK(unesc("Go away\\101x", "Go awayAx", 9), "octal escape yields its byte (quirk fixed)");
  CHECK(unesc("\\18x", "\x10x", 2), "8 accepted as a later octal digit");
  CHECK(unesc("\\0", "\0", 1), "one-digit octal");
  CHECK(unesc("end\\", "end\\", 4), "final backslash is literal");

  /* glob */
  CHECK(gm("*", "") && gm("*", "abc"), "* matches everything");
  CHECK(gm("", "") && !gm("", "a"), "empty pattern matches only empty");
  CHECK(gm("a?c", "abc") && !gm("a?c", "ac"), "? is one character");
  CHECK(gm("*@*.example", "x@a.b.example") && !gm("*@*.example", "x@example"), "stars backtrack");
  CHECK(gm("[a-c]", "-") && !gm("[a-c]", "b"), "no ranges in sets");
  CHECK(gm("[!a]", "b") && !gm("[!a]", "a") && gm("[^a]", "b"), "negated sets");
  CHECK(gm("[\\]]", "]"), "backslash escapes inside a set");
  CHECK(!gm("[]x]", "]x") && gm("[]x]", "x]") == 0, "[] is an empty set");
  CHECK(gm("x[b", "xq") && gm("x[b", "xqq") && !gm("x[b", "x"), "unclosed set: one byte then match");
  CHECK(gm("a\\b", "a\\b"), "backslash outside a set is literal");
  CHECK(gm("*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaab") && !gm("*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), "many stars stay linear-ish");

  /* parsing and classification */
  struct ruleset rs;
  str why = {0, 0, 0};
  const char* text =
    "# comment\n"
    "  d*@spam.example:*:5.7.1 Go away  \n"
    "k*:*@local.example\n"
    "x junk line\n"
    ":sender\n"
    "z*@slow.example\n"
    "n*@p.example:::5000:+x:A=1,B=a\\,b:c\n"
    "&!*@bad.example:*\n"
    "k*@good.*\n"
    ":recipient\n"
    "p*:*@pass.example\n"
    "dQ*:!!*@neg.example\n";
  CHECK(parse_text(&rs, text, &why) == RULES_OK, "rules parse");
  CHECK(rs.sender.n == 5 && rs.recipient.n == 3, "implicit and explicit classification");
  CHECK(walk(&rs, "a@spam.example", 0) == 'd', "sender d rule");
  CHECK(walk(&rs, "a@slow.example", 0) == 'z', "sender z rule under :sender");
  CHECK(walk(&rs, "a@good.example", 0) == 'k', "& rule true then k");
  CHECK(walk(&rs, "a@other.example", 0) == '-', "no match");
  const struct rule* n = &rs.sender.v[2];
  CHECK(n->code == 'n' && n->databytes == 5000 && strcmp(rs.arena.s + n->relay, "+x") == 0, "databytes and relay fields");
  const char* env = rs.arena.s + n->env;
  CHECK(strcmp(env, "A=1") == 0 && strcmp(env + 4, "B=a,b:c") == 0 && env[12] == 0, "env list with \\, and :");
  CHECK(walk(&rs, "x", "a@local.example") == 'k', "recipient k rule");
  CHECK(walk(&rs, "x", "a@pass.example") == 'p', "recipient p rule");
  CHECK(walk(&rs, "q@x", "a@neg.example") == 'd', "double negation");
  CHECK(walk(&rs, "r@x", "a@neg.example") == '-', "sender pattern of a recipient rule");
  ruleset_free(&rs);

  CHECK(parse_text(&rs, "k*:*\n:x\n", &why) == RULES_SYNTAX && strstr(why.s, "rules:2:") != 0, "bad selector: syntax error with line");
  CHECK(parse_text(&rs, ":S\n", &why) == RULES_SYNTAX, "selectors are case-sensitive");
  CHECK(parse_text(&rs, "\n\nk*:*:x:12a\n", &why) == RULES_SYNTAX && strstr(why.s, "rules:3:") != 0, "non-numeric DATABYTES");
  CHECK(parse_text(&rs, "k*:[[/nonexistent/list]]\n", &why) == RULES_REFERENCED && strstr(why.s, "/nonexistent/list") != 0, "missing list file");
  CHECK(parse_text(&rs, "k*:[[@/nonexistent/x.cdb]]\n", &why) == RULES_REFERENCED, "missing cdb fails closed (quirk fixed)");
  CHECK(parse_text(&rs, "k*:[[x]]\n", &why) == RULES_OK && rs.recipient.v[0].recipient.kind == PK_GLOB, "[[x]] is too short for a list");
  ruleset_free(&rs);

  /* text lists */
  char path[] = "/tmp/mr_unit_listXXXXXX";
  int fd = mkstemp(path);
  const char* list = "Foo@Bar.COM\n  @dom.example \n# c\n\nsub.example\nnoat\n";
  CHECK(fd >= 0 && write(fd, list, strlen(list)) == (ssize_t)strlen(list), "list file written");
  close(fd);
  str r = {0, 0, 0};
  str_cat3s(&r, "d*:[[", path, "]]:L1\n");
  str_cat3s(&r, "z*:[[@", path, "]]:L2\n");
  CHECK(parse_text(&rs, r.s, &why) == RULES_OK && rs.nlists == 1, "one list shared by two rules");
  CHECK(walk(&rs, "", "foo@bar.com") == 'd', "whole address in list");
  CHECK(walk(&rs, "", "x@dom.example") == 'd', "@domain entry");
  CHECK(walk(&rs, "", "x@sub.example") == 'z', "[[@list]] domain entry");
  CHECK(walk(&rs, "", "noat") == 'd', "address without @ in list");
  CHECK(walk(&rs, "", "x@bar.com") == '-', "not listed");
  ruleset_free(&rs);
  str_free(&r);
  unlink(path);

  /* a large generated file parses compactly */
  str big = {0, 0, 0};
  str_cats(&big, ":recipient\n");
  for (int i = 0; i < 20000; i++) { str_cats(&big, "d*:user"); str_catu(&big, (unsigned long)i); str_cats(&big, "@example.com:no\n"); }
  str_cats(&big, "k*:*\n");
  CHECK(parse_text(&rs, big.s, &why) == RULES_OK && rs.recipient.n == 20001, "20001 rules");
  CHECK(walk(&rs, "", "user19999@example.com") == 'd' && walk(&rs, "", "other@example.com") == 'k', "walk over 20001 rules");
  ruleset_free(&rs);
  str_free(&big);
  /* random rule files: the parser and the walk never crash or read out
   * of bounds (run under ASan in build-asan) */
  static const char alphabet[] = ":\\![]*?@kKdzpn&,=0189 ^x\n";
  unsigned seed = 12345;
  int fine = 1;
  for (int round = 0; round < 300; round++) {
    str fz = {0, 0, 0};
    for (int k = 0; k < 200; k++) {
      seed = seed * 1103515245u + 12345u;
      str_catc(&fz, alphabet[(seed >> 16) % (sizeof alphabet - 1)]);
    }
    enum rules_error e = parse_text(&rs, fz.s, &why);
    if (e == RULES_OK) {
      const char* addrs[] = { "", "a@b", "k@", "@", "x!y@z@w", "*", "[" };
      for (size_t i = 0; i < sizeof addrs / sizeof *addrs; i++) { walk(&rs, addrs[i], 0); walk(&rs, addrs[i], addrs[i]); }
      ruleset_free(&rs);
    } else if (e != RULES_SYNTAX && e != RULES_REFERENCED) {
      fine = 0;
    }
    str_free(&fz);
  }
  CHECK(fine, "300 random rule files parse or fail cleanly");
  str_free(&why);
  return done();
}

/* Unit tests of plugin-rspamd's JSON reader. */
#include "../../src/plugins/rspamd/json.c"
#include "tap.h"

static int parse(const char* s, struct json* j) { return json_parse(j, s, (unsigned)strlen(s)); }

int main(void)
{
  struct json j = { 0, 0, 0, 0, 0 };
  str s = { 0, 0, 0 };
  double d = 0;
  const char* doc = "{\"action\": \"rewrite subject\", \"score\": -1.5e1, \"skip\": [1, {\"a\": [true, null]}],"
                    " \"subject\": \"\\u00e9\\ud83d\\ude00 \\\"q\\\" \\n\", \"milter\": {\"add_headers\": {}}}";
  CHECK(parse(doc, &j) == 0, "parse a reply");
  CHECK(json_string(&j, json_member(&j, 0, "action"), &s) == 0 && strcmp(s.s, "rewrite subject") == 0, "string member");
  CHECK(json_number(&j, json_member(&j, 0, "score"), &d) == 0 && d == -15.0, "number member after nothing");
  CHECK(json_string(&j, json_member(&j, 0, "subject"), &s) == 0 && strcmp(s.s, "\xc3\xa9\xf0\x9f\x98\x80 \"q\" \n") == 0,
        "escapes and a surrogate pair");
  int m = json_member(&j, 0, "milter");
  CHECK(m > 0 && j.t[m].type == JSON_OBJECT && json_member(&j, m, "add_headers") > m, "member of a member");
  CHECK(json_member(&j, 0, "missing") < 0 && json_member(&j, 0, "a") < 0, "missing keys (nested ones too)");
  CHECK(json_string(&j, json_member(&j, 0, "score"), &s) < 0, "a number is not a string");
  CHECK(json_number(&j, json_member(&j, 0, "action"), &d) < 0, "a string is not a number");
  CHECK(json_member(&j, json_member(&j, 0, "skip"), "a") < 0, "arrays have no members");

  static const char* const bad[] = {
    "", "{", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "[1,]", "{'a':1}", "\"\\x\"", "\"\\u12\"", "01", "1.", "-",
    "1e", "tru", "{\"a\":1} x", "\"a\nb\"", "\"unterminated", "{\"a\" 1}", "[1 2]",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char name[64];
    snprintf(name, sizeof name, "malformed %zu refused", i);
    CHECK(parse(bad[i], &j) < 0, name);
  }
  char deep[200];
  memset(deep, '[', 100);
  memset(deep + 100, ']', 100);
  CHECK(json_parse(&j, deep, 200) < 0, "nesting deeper than the limit refused");
  memset(deep, '[', 20);
  memset(deep + 20, ']', 20);
  CHECK(json_parse(&j, deep, 40) == 0, "moderate nesting accepted");
  CHECK(parse("\"\\udc00\"", &j) == 0 && json_string(&j, 0, &s) < 0, "lone low surrogate refused");
  CHECK(parse(" 42 ", &j) == 0 && json_number(&j, 0, &d) == 0 && d == 42, "a bare number");
  json_free(&j);
  str_free(&s);
  return done();
}

/* Unit tests: src/lib/log.c -- both formats, byte for byte: the classic
 * line, kv quoting and escaping (spaces, quotes, '=', backslash, control
 * bytes, valid and invalid UTF-8, empty values), verbs and masking of
 * credentials in log_cmd, the session id shared by a session's lines. */
#include "tap.h"
#include "../../src/lib/log.h"
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int memfd = -1;
static char got[8192];
static char pidtag[64];

/* Everything written to fd 2 since the last call. */
static const char* take(void)
{
  off_t n = lseek(memfd, 0, SEEK_CUR);
  ssize_t r = pread(memfd, got, n < (off_t)sizeof got - 1 ? (size_t)n : sizeof got - 1, 0);
  got[r > 0 ? r : 0] = 0;
  if (ftruncate(memfd, 0) < 0 || lseek(memfd, 0, SEEK_SET) < 0) got[0] = 0;
  return got;
}

/* got with "pid=N " / "[N]" replaced by "pid=P " / "[P]" */
static const char* norm(void)
{
  static char out[8192];
  const char* s = take();
  size_t o = 0;
  while (*s && o < sizeof out - 8) {
    size_t tl = strlen(pidtag);
    if (strncmp(s, pidtag, tl) == 0) { memcpy(out + o, "P", 1); o++; s += tl; continue; }
    out[o++] = *s++;
  }
  out[o] = 0;
  return out;
}

static int is(const char* want, const char* name)
{
  const char* g = norm();
  int ok = strcmp(g, want) == 0;
  CHECK(ok, name);
  if (!ok) printf("#   got  [%s]\n#   want [%s]\n", g, want);
  return ok;
}

int main(void)
{
  memfd = memfd_create("log", 0);
  if (memfd < 0 || dup2(memfd, 2) < 0) { CHECK(0, "memfd on fd 2"); return done(); }
  snprintf(pidtag, sizeof pidtag, "%ld", (long)getpid());
  unsetenv("LOGFORMAT");
  log_program("prog");

  /* classic, unchanged */
  msg2("MAIL ", "FROM:<a@b>");
  is("prog[P]: MAIL FROM:<a@b>\n", "classic msg2");
  log_parts(LOG_WARN, "x\ny", "\r", 0, 0);
  is("prog[P]: Warning: x?y?\n", "classic masks CR/LF");
  log_reply(503, "5.5.1 You must", 14);
  is("prog[P]: 503 5.5.1 You must\n", "classic reply");
  log_cmd("", "FOO bar", 7);
  is("prog[P]: FOO bar\n", "classic unknown command");
  log_session_begin("192.0.2.1");
  is("", "classic session start writes nothing");
  log_message("accepted", 250, 10);
  is("", "classic message event writes nothing");
  log_session_end(0, 12, 34, 1);
  is("prog[P]: bytes in: 12 bytes out: 34\n", "classic bytes line");
  log_session_end(0, 12, 34, 0);
  is("", "no classic bytes line when not asked");

  setenv("LOGFORMAT", "kv", 1);
  log_program("prog");
  CHECK(log_get_format() == LOG_KV, "$LOGFORMAT=kv selects kv");
  msg1("plain");
  is("prog=prog pid=P event=log level=info text=plain\n", "kv text, bare");
  log_parts(LOG_FATAL, "Out of memory", 0, 0, 0);
  is("prog=prog pid=P event=log level=fatal text=\"Out of memory\"\n", "kv fatal level");
  warn1("w");
  is("prog=prog pid=P event=log level=warn text=w\n", "kv warn level");
  log_parts(LOG_ERR, "e", 0, 0, 0);
  is("prog=prog pid=P event=log level=error text=e\n", "kv error level");
  log_parts(LOG_DEBUG, "d", 0, 0, 0);
  is("prog=prog pid=P event=log level=debug text=d\n", "kv debug level");
  log_parts("rbl: ", "x", 0, 0, 0);
  is("prog=prog pid=P event=log level=info text=\"rbl: x\"\n", "another prefix stays in the text");
  log_bytes(0, "", "a\"b\\c=d\te\nf\rg\x01h\x7f", 16);
  is("prog=prog pid=P event=log level=info text=\"a\\\"b\\\\c=d\\te\\nf\\rg\\x01h\\x7f\"\n", "kv escapes");
  log_bytes(0, "", "caf\xc3\xa9", 5);
  is("prog=prog pid=P event=log level=info text=caf\xc3\xa9\n", "valid UTF-8 stays bare");
  log_bytes(0, "", "\xff\xc3(\xed\xa0\x80", 6);
  is("prog=prog pid=P event=log level=info text=\"\\xff\\xc3(\\xed\\xa0\\x80\"\n", "invalid UTF-8 and surrogates escaped");
  log_bytes(0, "", "", 0);
  is("prog=prog pid=P event=log level=info text=\"\"\n", "empty value quoted");
  log_bytes(0, "", "a=b", 3);
  is("prog=prog pid=P event=log level=info text=\"a=b\"\n", "'=' quoted");

  log_session_begin("192.0.2.1");
  const char* start = norm();
  char sid[64] = "";
  const char* p = strstr(start, " sid=");
  if (p) sscanf(p + 5, "%63[^ ]", sid);
  CHECK(sid[0] && strstr(start, " ip=192.0.2.1 event=session_start\n"), "session start: sid and ip");
  log_cmd("MAIL ", "FROM:<a b>", 10);
  const char* l = norm();
  char want[512];
  snprintf(want, sizeof want, "prog=prog pid=P sid=%s ip=192.0.2.1 event=command command=MAIL arg=\"FROM:<a b>\"\n", sid);
  CHECK(strcmp(l, want) == 0, "command with prefix; same sid");
  log_cmd("", "auth plain c2VjcmV0", 19);
  snprintf(want, sizeof want, "prog=prog pid=P sid=%s ip=192.0.2.1 event=command command=AUTH arg=plain\n", sid);
  CHECK(strcmp(norm(), want) == 0, "AUTH: the mechanism only");
  log_cmd("", "PASS hunter2", 12);
  snprintf(want, sizeof want, "prog=prog pid=P sid=%s ip=192.0.2.1 event=command command=PASS\n", sid);
  CHECK(strcmp(norm(), want) == 0, "PASS: no argument");
  log_cmd("", "NOOP", 4);
  snprintf(want, sizeof want, "prog=prog pid=P sid=%s ip=192.0.2.1 event=command command=NOOP\n", sid);
  CHECK(strcmp(norm(), want) == 0, "a command without argument");
  log_reply(451, "4.3.0 x", 7);
  snprintf(want, sizeof want, "prog=prog pid=P sid=%s ip=192.0.2.1 event=reply code=451 text=\"4.3.0 x\"\n", sid);
  CHECK(strcmp(norm(), want) == 0, "reply");
  log_message("accepted", 250, 1234);
  snprintf(want, sizeof want, "prog=prog pid=P sid=%s ip=192.0.2.1 event=message result=accepted code=250 bytes=1234\n", sid);
  CHECK(strcmp(norm(), want) == 0, "message");
  log_session_end(111, 5, 6, 1);
  l = norm();
  snprintf(want, sizeof want, "prog=prog pid=P sid=%s ip=192.0.2.1 event=session_end status=111 bytes_in=5 bytes_out=6 duration_ms=", sid);
  CHECK(strncmp(l, want, strlen(want)) == 0, "session end");
  msg1("after");
  CHECK(strcmp(norm(), "prog=prog pid=P event=log level=info text=after\n") == 0, "no sid or ip after the session");
  log_session_begin(0);
  l = norm();
  char sid2[64] = "";
  if ((p = strstr(l, " sid="))) sscanf(p + 5, "%63[^ ]", sid2);
  CHECK(sid2[0] && strcmp(sid, sid2) != 0 && !strstr(l, " ip="), "the next session has a new id and no ip");
  log_session_end(0, 0, 0, 0);
  take();
  return done();
}

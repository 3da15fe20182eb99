/* pop3reply.c -- see pop3reply.h. */
#include "pop3/pop3reply.h"
#include "pop3/pop3cmd.h"
#include "auth/sasl.h"
#include "lib/log.h"
#include <mailfront/str.h>
#include <string.h>

#define MASK " XXXXXXXX"

void pop3_line(obuf* out, const char* text, size_t len)
{
  obuf_write(out, text, len);
  obuf_write(out, "\r\n", 2);
}

/* kv: the result word of each status. */
static const struct { const char* status; const char* result; } results[] = {
  { "+OK", "ok" }, { "-ERR", "err" }, { ".", "end" },
};

void pop3_log_status(const char* text, size_t len)
{
  if (log_get_format() != LOG_KV) { log_bytes(0, "", text, len); return; }
  struct log_field f[2] = { { "result", 0, -1 }, { "text", text, (long)len } };
  for (size_t i = 0; i < sizeof results / sizeof *results && !f[0].val; i++) {
    size_t n = strlen(results[i].status);
    if (len < n || memcmp(text, results[i].status, n) != 0 || (len > n && text[n] != ' ')) continue;
    f[0].val = results[i].result;
    f[1].val = text + n + (len > n);
    f[1].len = (long)(len - n - (len > n));
  }
  if (!f[0].val) { log_event("reply", f + 1, 1); return; }
  log_event("reply", f, f[1].len > 0 ? 2 : 1);
}

void pop3_status(obuf* out, const char* text, size_t len)
{
  pop3_line(out, text, len);
  pop3_log_status(text, len);
}

void pop3_reply(obuf* out, const char* text) { pop3_status(out, text, strlen(text)); }

void pop3_capa(obuf* out, const char* sasl, int user, int stls)
{
  static const char* const always[] = { "PIPELINING", "TOP", "UIDL" };
  pop3_reply(out, POP3_OK);
  if (sasl) pop3_line(out, sasl, strlen(sasl));
  for (size_t i = 0; i < sizeof always / sizeof *always; i++) pop3_line(out, always[i], strlen(always[i]));
  if (user) pop3_line(out, "USER", 4);
  if (stls) pop3_line(out, "STLS", 4);
  pop3_reply(out, ".");
}

void pop3_sasl_failed(obuf* out, const char* text)
{
  size_t len = strlen(text);
  obuf_write(out, "-ERR ", 5);
  pop3_line(out, text, len);
  if (log_get_format() != LOG_KV) { log_bytes(0, "", text, len); return; }
  struct log_field f[2] = { { "result", "err", -1 }, { "text", text, (long)len } };
  log_event("reply", f, 2);
}

/* ---- commands --------------------------------------------------------- */

/* What of a command line may be logged: classic the first `keep` bytes of
 * the line (then MASK when masked), or the fixed text; kv the argument
 * arg[0..arglen) (none when arglen is 0). */
struct logged
{
  const char* fixed;
  size_t keep;
  int masked;
  const char* arg;
  size_t arglen;
};

static size_t word_len(const char* s, size_t len)
{
  size_t i = 0;
  while (i < len && s[i] != ' ') i++;
  return i;
}

static struct logged mask_command(const struct pop3_cmdline* c, const char* line, size_t len)
{
  struct logged l = { 0, len, 0, c->arg, c->arglen };
  char first = c->verblen == 4 ? (char)(c->verb[0] & ~0x20) : 0;
  if (first != 'P' && first != 'A') return l;   /* neither PASS nor AUTH */
  if (pop3_verb_is(c, "PASS")) {
    l.fixed = "PASS" MASK;
    l.arglen = 0;
  }
  else if (pop3_verb_is(c, "AUTH")) {
    size_t mlen = word_len(c->arg, c->arglen);
    if (mlen > 0 && !sasl_mech_loggable(c->arg, mlen)) {
      l.fixed = "AUTH" MASK;
      l.arg = SASL_LOG_HIDDEN;
      l.arglen = strlen(SASL_LOG_HIDDEN);
    }
    else if (mlen < c->arglen) {
      l.keep = (size_t)(c->arg - line) + mlen;
      l.masked = 1;
      l.arglen = mlen;
    }
  }
  return l;
}

static void log_kv_command(const char* verb, size_t verblen, const char* arg, size_t arglen)
{
  str v = {0, 0, 0};
  if (!str_copyb(&v, verb, (unsigned)verblen)) return;
  for (unsigned i = 0; i < v.len; i++)
    if (v.s[i] >= 'a' && v.s[i] <= 'z') v.s[i] = (char)(v.s[i] - 'a' + 'A');
  struct log_field f[2] = { { "command", v.s ? v.s : "", (long)v.len }, { "arg", arg, (long)arglen } };
  log_event("command", f, arglen > 0 ? 2 : 1);
  str_free(&v);
}

void pop3_log_command(const struct pop3_cmdline* c, const char* line, size_t len, int hidden)
{
  int kv = log_get_format() == LOG_KV;
  if (hidden) {
    struct log_field f = { "command", SASL_LOG_HIDDEN, -1 };
    if (kv) log_event("command", &f, 1);
    else log_parts(0, "[line hidden after a failed AUTH]", 0, 0, 0);
    return;
  }
  struct logged l = mask_command(c, line, len);
  if (kv) log_kv_command(c->verb, c->verblen, l.arg, l.arglen);
  else if (l.fixed) log_parts(0, l.fixed, 0, 0, 0);
  else if (!l.masked) log_bytes(0, "", line, len);
  else {
    str t = {0, 0, 0};
    if (str_copyb(&t, line, (unsigned)l.keep) && str_cats(&t, MASK)) log_bytes(0, "", t.s, t.len);
    str_free(&t);
  }
}

/* log.c -- one diagnostic line per call on fd 2 (formats in log.h).
 *
 * Every line is built in one buffer and written with a single write(2) so
 * that concurrent processes do not interleave.  Never fails visibly:
 * logging errors (even memory) are ignored.  Each text part is cut at
 * 64 KiB.
 *
 * classic: `PROGRAM[PID]: PREFIX TEXT`; bytes that would break the line
 *   (CR, LF, NUL) are shown as '?'.  Unchanged from the original.
 * kv: `key=value` pairs separated by one space.  A value is written bare
 *   when it is non-empty valid UTF-8 without spaces, '"', '=', '\' or
 *   control bytes; otherwise it is double-quoted with backslash escapes:
 *   \" \\ \n \r \t, and \xHH for other control bytes and for bytes that
 *   are not valid UTF-8.  Keys are fixed identifiers of the code.
 *
 * State: the logging context of the process (program, format, current
 * session id, client address, start time) lives here at file scope: it
 * describes the process's stderr, not a session object, and a program
 * running many sessions one after another renews it per session with
 * log_session_begin. */
#include "log.h"
#include "progenv.h"
#include "lib/clock.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <mailfront/str.h>

#define PART_MAX 65536

/* The state of the log: the driver's (mf_log_state, src/core/logstate.c,
 * exported) when there is one, so that modules, which link their own copy
 * of this file (symbol hygiene: src/core/module.map), log with the driver's
 * format, session id and address; otherwise (the POP3/IMAP programs, unit
 * tests) this file's own.  A weak reference: nothing is pulled in for it. */
extern struct mf_log_state mf_log_state __attribute__((weak));
static struct mf_log_state own_state = { "mailfront", LOG_CLASSIC, "", {0, 0, 0}, 0, 0 };

static struct mf_log_state* log_state(void) { return &mf_log_state ? &mf_log_state : &own_state; }
#define lg (*log_state())

void log_program(const char* name)
{
  lg.program = name;
  const char* f = getenv("LOGFORMAT");
  lg.format = f && strcmp(f, "kv") == 0 ? LOG_KV : LOG_CLASSIC;
}

void log_set_format(enum log_format f) { lg.format = f; }
enum log_format log_get_format(void) { return lg.format; }

static void flush_line(str* line)
{
  str_catc(line, '\n');
  if (line->s) {
    ssize_t w = write(2, line->s, line->len);
    (void)w;
  }
  str_free(line);
}

/* ---- classic ---- */

static void emit_classic(const char* prefix, const char* const* parts, int n, const unsigned long* lens)
{
  str line = {0, 0, 0};
  (void)str_alloc(&line, 200, 0);       /* most lines fit: one allocation */
  str_cat2s(&line, lg.program, "[");
  str_catu(&line, (unsigned long)getpid());
  str_cats(&line, "]: ");
  if (prefix) str_cats(&line, prefix);
  for (int i = 0; i < n; i++) {
    if (parts[i] == 0) continue;
    unsigned long l = lens ? lens[i] : strlen(parts[i]);
    unsigned start = line.len;
    str_catb(&line, parts[i], (unsigned)(l > PART_MAX ? PART_MAX : l));
    for (unsigned j = start; j < line.len; j++)
      if (line.s[j] == '\n' || line.s[j] == '\r' || line.s[j] == 0) line.s[j] = '?';
  }
  flush_line(&line);
}

/* ---- kv ---- */

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid. */
static unsigned utf8_len(const unsigned char* s, unsigned long n)
{
  unsigned need;
  unsigned cp;
  if (s[0] < 0x80) return 1;
  if (s[0] >= 0xc2 && s[0] <= 0xdf) { need = 1; cp = s[0] & 0x1f; }
  else if (s[0] >= 0xe0 && s[0] <= 0xef) { need = 2; cp = s[0] & 0x0f; }
  else if (s[0] >= 0xf0 && s[0] <= 0xf4) { need = 3; cp = s[0] & 0x07; }
  else return 0;
  if (n <= need) return 0;
  for (unsigned i = 1; i <= need; i++) {
    if ((s[i] & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (s[i] & 0x3f);
  }
  if ((need == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (need == 3 && (cp < 0x10000 || cp > 0x10ffff)))
    return 0;
  return need + 1;
}

static int needs_quotes(const char* v, unsigned long len)
{
  const unsigned char* s = (const unsigned char*)v;
  if (len == 0) return 1;
  for (unsigned long i = 0; i < len;) {
    unsigned k = utf8_len(s + i, len - i);
    if (k == 0) return 1;
    if (k == 1 && (s[i] <= ' ' || s[i] == '"' || s[i] == '=' || s[i] == '\\' || s[i] == 0x7f)) return 1;
    i += k;
  }
  return 0;
}

static void cat_value(str* line, const char* v, unsigned long len)
{
  const unsigned char* s = (const unsigned char*)v;
  if (len > PART_MAX) len = PART_MAX;
  if (!needs_quotes(v, len)) { str_catb(line, v, (unsigned)len); return; }
  str_catc(line, '"');
  for (unsigned long i = 0; i < len;) {
    unsigned k = utf8_len(s + i, len - i);
    unsigned char c = s[i];
    char esc[8];
    if (k > 1) { str_catb(line, v + i, k); i += k; continue; }
    i++;
    if (c == '"' || c == '\\') { esc[0] = '\\'; esc[1] = (char)c; str_catb(line, esc, 2); }
    else if (c == '\n') str_catb(line, "\\n", 2);
    else if (c == '\r') str_catb(line, "\\r", 2);
    else if (c == '\t') str_catb(line, "\\t", 2);
    else if (k == 0 || c < ' ' || c == 0x7f) { snprintf(esc, sizeof esc, "\\x%02x", c); str_cats(line, esc); }
    else str_catc(line, (char)c);
  }
  str_catc(line, '"');
}

static void cat_field(str* line, const char* key, const char* v, long len)
{
  str_catc(line, ' ');
  str_cats(line, key);
  str_catc(line, '=');
  cat_value(line, v ? v : "", len < 0 ? (v ? strlen(v) : 0) : (unsigned long)len);
}

/* The head every kv line starts with. */
static void kv_head(str* line, const char* event)
{
  char pid[24];
  snprintf(pid, sizeof pid, "%ld", (long)getpid());
  str_cats(line, "prog=");
  cat_value(line, lg.program, strlen(lg.program));
  cat_field(line, "pid", pid, -1);
  if (lg.sid[0]) cat_field(line, "sid", lg.sid, -1);
  if (lg.ip.len) cat_field(line, "ip", lg.ip.s, (long)lg.ip.len);
  cat_field(line, "event", event, -1);
}

void log_event(const char* event, const struct log_field* f, unsigned n)
{
  if (lg.format != LOG_KV) return;
  str line = {0, 0, 0};
  kv_head(&line, event);
  for (unsigned i = 0; i < n; i++) cat_field(&line, f[i].key, f[i].val, f[i].len);
  flush_line(&line);
}

static const struct { const char* prefix; const char* level; } levels[] = {
  { LOG_FATAL, "fatal" }, { LOG_WARN, "warn" }, { LOG_ERR, "error" }, { LOG_DEBUG, "debug" },
};

static const char* level_of(const char* prefix)
{
  for (size_t i = 0; prefix && i < sizeof levels / sizeof levels[0]; i++)
    if (strcmp(prefix, levels[i].prefix) == 0) return levels[i].level;
  return "info";
}

static void emit_kv_text(const char* prefix, const char* const* parts, int n, const unsigned long* lens)
{
  str text = {0, 0, 0};
  for (int i = 0; i < n; i++) {
    if (parts[i] == 0) continue;
    unsigned long l = lens ? lens[i] : strlen(parts[i]);
    str_catb(&text, parts[i], (unsigned)(l > PART_MAX ? PART_MAX : l));
  }
  /* a prefix that is not a level stays part of the text */
  const char* level = level_of(prefix);
  str all = {0, 0, 0};
  if (prefix && strcmp(level, "info") == 0) str_cats(&all, prefix);
  str_catb(&all, text.s ? text.s : "", text.len);
  struct log_field f[2] = { { "level", level, -1 }, { "text", all.s ? all.s : "", (long)all.len } };
  log_event("log", f, 2);
  str_free(&text);
  str_free(&all);
}

static void emit(const char* prefix, const char* const* parts, int n, const unsigned long* lens)
{
  if (lg.format == LOG_KV) emit_kv_text(prefix, parts, n, lens);
  else emit_classic(prefix, parts, n, lens);
}

/* ---- sessions and events ---- */

void log_session_begin(const char* ip)
{
  if (lg.format != LOG_KV) return;     /* classic lines carry no session */
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  lg.sessions++;
  snprintf(lg.sid, sizeof lg.sid, "%lx.%lx.%lx", (unsigned long)ts.tv_sec, (unsigned long)getpid(), lg.sessions);
  lg.ip.len = 0;
  if (ip && *ip) str_copys(&lg.ip, ip);
  lg.start_ms = clock_mono_ms();
  log_event("session_start", 0, 0);
}

void log_session_begin_env(void)
{
  if (lg.format != LOG_KV) return;
  const char* proto = getenv("PROTO");
  str var = {0, 0, 0};
  const char* ip = str_cat2s(&var, proto && *proto ? proto : "TCP", "REMOTEIP") ? getenv(var.s) : 0;
  log_session_begin(ip);
  str_free(&var);
}

void log_session_end(int status, unsigned long long in, unsigned long long out, int classic_bytes)
{
  if (lg.format == LOG_KV) {
    char st[24], bi[24], bo[24], du[24];
    snprintf(st, sizeof st, "%d", status);
    snprintf(bi, sizeof bi, "%llu", in);
    snprintf(bo, sizeof bo, "%llu", out);
    snprintf(du, sizeof du, "%lld", lg.sid[0] ? clock_mono_ms() - lg.start_ms : 0LL);
    struct log_field f[4] = { { "status", st, -1 }, { "bytes_in", bi, -1 }, { "bytes_out", bo, -1 }, { "duration_ms", du, -1 } };
    log_event("session_end", f, 4);
  } else if (classic_bytes) {
    log_fmt(0, "bytes in: %llu bytes out: %llu", in, out);
  }
  lg.sid[0] = 0;
  str_free(&lg.ip);
}

/* Commands whose argument is a credential. */
static const char* const secret_verbs[] = { "AUTH", "PASS" };

static int is_secret(const char* verb, unsigned long vlen)
{
  for (size_t i = 0; i < sizeof secret_verbs / sizeof secret_verbs[0]; i++)
    if (vlen == strlen(secret_verbs[i]) && strncasecmp(verb, secret_verbs[i], vlen) == 0) return 1;
  return 0;
}

void log_cmd(const char* prefix, const char* arg, unsigned long len)
{
  if (!prefix) prefix = "";
  if (lg.format != LOG_KV) {      /* byte for byte the original line */
    const char* parts[2] = { prefix, arg };
    unsigned long lens[2] = { strlen(prefix), len };
    emit_classic(0, parts, 2, lens);
    return;
  }
  if (!arg) { arg = ""; len = 0; }
  /* the verb: the prefix's first word, else the argument's */
  const char* verb = *prefix ? prefix : arg;
  unsigned long vmax = *prefix ? strlen(prefix) : len;
  unsigned long vlen = 0;
  while (vlen < vmax && verb[vlen] != ' ') vlen++;
  const char* rest = *prefix ? arg : arg + vlen + (vlen < len);
  unsigned long rlen = *prefix ? len : len - vlen - (vlen < len);
  str v = {0, 0, 0};
  str_catb(&v, verb, (unsigned)vlen);
  for (unsigned i = 0; i < v.len; i++) if (v.s[i] >= 'a' && v.s[i] <= 'z') v.s[i] = (char)(v.s[i] - 'a' + 'A');
  struct log_field f[2] = { { "command", v.s ? v.s : "", (long)v.len }, { "arg", rest, (long)rlen } };
  if (is_secret(verb, vlen) && rlen > 0) {
    /* AUTH: the mechanism only; PASS: nothing */
    unsigned long m = 0;
    while (m < rlen && rest[m] != ' ') m++;
    f[1].len = v.len == 4 && v.s[0] == 'A' ? (long)m : 0;
  }
  log_event("command", f, f[1].len > 0 ? 2 : 1);
  str_free(&v);
}

void log_reply(unsigned code, const char* text, unsigned long len)
{
  char c[16];
  snprintf(c, sizeof c, "%u", code);
  if (lg.format != LOG_KV) {
    char head[20];
    snprintf(head, sizeof head, "%u ", code);
    log_bytes(0, head, text, len);
    return;
  }
  struct log_field f[2] = { { "code", c, -1 }, { "text", text, (long)len } };
  log_event("reply", f, 2);
}

void log_message(const char* result, unsigned code, unsigned long long bytes)
{
  if (lg.format != LOG_KV) return;
  char c[16], b[24];
  snprintf(c, sizeof c, "%u", code);
  snprintf(b, sizeof b, "%llu", bytes);
  struct log_field f[3] = { { "result", result, -1 }, { "code", c, -1 }, { "bytes", b, -1 } };
  log_event("message", f, 3);
}

/* ---- free text ---- */

void log_parts(const char* prefix, const char* a, const char* b, const char* c, const char* d)
{
  const char* parts[4] = { a, b, c, d };
  emit(prefix, parts, 4, 0);
}

void log_bytes(const char* prefix, const char* a, const char* b, unsigned long blen)
{
  const char* parts[2] = { a, b };
  unsigned long lens[2] = { a ? strlen(a) : 0, blen };
  emit(prefix, parts, 2, lens);
}

void log_fmt(const char* prefix, const char* fmt, ...)
{
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  log_parts(prefix, buf, 0, 0, 0);
}

void msg1(const char* a) { log_parts(0, a, 0, 0, 0); }
void msg2(const char* a, const char* b) { log_parts(0, a, b, 0, 0); }
void msg3(const char* a, const char* b, const char* c) { log_parts(0, a, b, c, 0); }
void msg4(const char* a, const char* b, const char* c, const char* d) { log_parts(0, a, b, c, d); }
void warn1(const char* a) { log_parts(LOG_WARN, a, 0, 0, 0); }
void warn2(const char* a, const char* b) { log_parts(LOG_WARN, a, b, 0, 0); }

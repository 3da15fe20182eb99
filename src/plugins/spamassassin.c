/* plugin-spamassassin -- spam check of each message through spamd's
 * SPAMC/1.2 PROCESS command (plugins.md "spamassassin"; compat-checklist
 * 52).  NEED_FILE plugin, message_end hook only.
 *
 * Settings (session lookups at each message): $SPAMD_PATH (UNIX socket,
 * takes precedence; one attempt) or $SPAMD_HOST with $SPAMD_PORT (783),
 * $SPAMD_TIMEOUT (5000 ms, each wait for the reply), $SPAMD_CONNECT_TIMEOUT,
 * $SPAMD_SEND_TIMEOUT (default: the timeout), $SPAMD_MAXSIZE (0 = none),
 * $SPAMD_USER, $SPAMD_REJECT.
 *
 * Exchange: request header with the real Content-Length, the message
 * streamed from the temporary file, shutdown of the sending side; the
 * reply must begin `SPAMD/1.1 0 EX_OK`; its headers are skipped (a
 * Content-length there must match the body received); the body is copied
 * piecewise into a new scratch file while a small state machine finds the
 * first X-Spam-Status header.  Only a complete reply replaces the message
 * (dup2 over fd); a broken one counts as a failed attempt and leaves the
 * message untouched.  The reply body is bounded by twice the message size
 * plus SA_SLACK (spamd adds a report, it does not grow mail arbitrarily).
 * Replies: spam with $SPAMD_REJECT set -> 554, every attempt failed -> 451.
 *
 * Version 4 module: safe for many sessions in one process.  The 554 reply
 * built from $SPAMD_REJECT lives in the session's context
 * (session_open/session_close); settings are read per message; nothing at
 * file scope changes after loading. */
#include <mailfront/mailfront.h>
#include <ctype.h>
#include <stdio.h>
#include <strings.h>
#include "plugins/netclient.h"
#include <sys/stat.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static RESPONSE(no_scan, 451, "4.3.0 Could not SpamAssassin scan message");
static RESPONSE(no_resolve, 451, "4.3.0 Could not resolve SpamAssassin hostname");
static RESPONSE(spam, 554, "5.3.0 Spam detected, message refused");

#define MAX_HEADER_LINE 8192u
#define SA_SLACK (1024ull * 1024ull)

struct sa_cfg
{
  const char* path;
  const char* host;
  const char* user;
  const char* reject;
  struct nc_cfg nc;               /* port, timeouts, size limit */
};

/* Finds the first X-Spam-Status header in a byte stream. */
enum hstate { H_BOL, H_CR, H_NAME, H_VALUE, H_SKIP, H_BODY };
struct status_scan
{
  enum hstate st;
  unsigned idx;
  int found, spam;
};

/* The per-session state: the refusal built from $SPAMD_REJECT. */
struct sa_session
{
  response reject_resp;
  str reject_text;
};

extern struct plugin plugin;

static const response* sa_open(void** ctx)
{
  *ctx = calloc(1, sizeof(struct sa_session));
  return *ctx ? 0 : &resp_oom;
}

static void sa_close(void* ctx)
{
  struct sa_session* ss = ctx;
  if (ss) str_free(&ss->reject_text);
  free(ss);
}

static void read_cfg(struct sa_cfg* c)
{
  c->path = session_getenv("SPAMD_PATH");
  c->host = session_getenv("SPAMD_HOST");
  c->user = session_getenv("SPAMD_USER");
  c->reject = session_getenv("SPAMD_REJECT");
  nc_read_cfg(&c->nc, &(const struct nc_names){ "SPAMD_PORT", 0, "SPAMD_TIMEOUT", 0, "SPAMD_CONNECT_TIMEOUT",
                                               "SPAMD_SEND_TIMEOUT", "SPAMD_MAXSIZE" },
              783, 5000);
}

static void scan_bytes(struct status_scan* s, const char* b, size_t len)
{
  static const char name[] = "x-spam-status:";
  for (size_t i = 0; i < len && s->st != H_BODY; i++) {
    char ch = b[i];
    switch (s->st) {
    case H_BOL:
      if (ch == '\n') { s->st = H_BODY; break; }
      if (ch == '\r') { s->st = H_CR; break; }
      s->idx = 0;
      s->st = H_NAME;
      /* fall through */
    case H_NAME:
      if (ch == '\n') s->st = H_BOL;
      else if (s->found || tolower((unsigned char)ch) != name[s->idx]) s->st = H_SKIP;
      else if (++s->idx == sizeof name - 1) s->st = H_VALUE;
      break;
    case H_CR:
      s->st = ch == '\n' ? H_BODY : ch == '\r' ? H_CR : H_SKIP;
      break;
    case H_VALUE:
      if (ch == ' ' || ch == '\t' || ch == '\r') break;
      if (ch == '\n') { s->st = H_BOL; break; }   /* value on a continuation line: not spam */
      s->found = 1;
      s->spam = ch == 'Y' || ch == 'y';
      s->st = H_SKIP;
      break;
    case H_SKIP:
      if (ch == '\n') s->st = H_BOL;
      break;
    case H_BODY:
      break;
    }
  }
}

static int write_all(int fd, const char* b, size_t len)
{
  while (len > 0) {
    ssize_t w = write(fd, b, len);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    b += w;
    len -= (size_t)w;
  }
  return 0;
}

/* Reply headers after the status line; sets *clen (or -1 when absent). */
static int read_headers(struct nc_reader* r, str* line, long long* clen)
{
  *clen = -1;
  for (;;) {
    if (nc_readline(r, line, MAX_HEADER_LINE) != 1) return -1;
    unsigned n = line->len;
    while (n > 0 && (line->s[n - 1] == '\n' || line->s[n - 1] == '\r')) n--;
    if (n == 0) return 0;
    if (nc_content_length(line->s, n, clen) < 0) return -1;
  }
}

/* One exchange on a connected socket.  1: the message was replaced and
 * *spam says what spamd decided; 0: this attempt failed. */
static int exchange(int sock, int fd, unsigned long long size, const struct sa_cfg* c, int* spam)
{
  str req = { 0, 0, 0 };
  char num[32];
  snprintf(num, sizeof num, "%llu", size);
  int ok = str_copys(&req, "PROCESS SPAMC/1.2\r\nContent-Length: ") && str_cat2s(&req, num, "\r\n")
    && (!c->user || str_cat3s(&req, "User: ", c->user, "\r\n")) && str_cats(&req, "\r\n");
  ok = ok && nc_sendf(sock, req.s, req.len, c->nc.send_timeout, size ? MSG_MORE : 0) == 0
    && nc_send_file(sock, fd, size, c->nc.send_timeout, 0, 0) == 0;
  str_free(&req);
  if (!ok) return 0;
  shutdown(sock, SHUT_WR);

  struct nc_reader* r = malloc(sizeof *r);
  if (!r) return 0;
  nc_reader_init(r, sock, c->nc.timeout);
  str line = { 0, 0, 0 };
  int out = -1;
  long long clen;
  ok = nc_readline(r, &line, MAX_HEADER_LINE) == 1;
  if (ok) {
    unsigned n = line.len;
    while (n > 0 && (line.s[n - 1] == '\n' || line.s[n - 1] == '\r')) n--;
    ok = n == 17 && memcmp(line.s, "SPAMD/1.1 0 EX_OK", 17) == 0;
  }
  ok = ok && read_headers(r, &line, &clen) == 0;
  if (ok) ok = (out = scratchfile()) >= 0;
  struct status_scan scan = { H_BOL, 0, 0, 0 };
  unsigned long long got = 0, limit = size * 2 + SA_SLACK;
  while (ok) {
    int f = nc_fill(r);
    if (f == 0) break;
    if (f < 0) { ok = 0; break; }
    size_t avail = r->len - r->pos;
    got += avail;
    if (got > limit) { ok = 0; break; }
    scan_bytes(&scan, r->buf + r->pos, avail);
    if (write_all(out, r->buf + r->pos, avail) < 0) ok = 0;
    r->pos = r->len;
  }
  if (ok && clen >= 0 && (unsigned long long)clen != got) ok = 0;
  if (ok) ok = lseek(out, 0, SEEK_SET) == 0 && dup2(out, fd) >= 0 && lseek(fd, 0, SEEK_SET) == 0;
  if (out >= 0) close(out);
  str_free(&line);
  free(r);
  *spam = scan.found && scan.spam;
  return ok;
}

static const response* sa_message_end(int fd)
{
  struct sa_session* ss = plugin_context(&plugin);
  if (!ss) return &resp_internal;
  struct sa_cfg c;
  read_cfg(&c);
  if (!c.path && !c.host) return &resp_no_scan;
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) return &resp_no_scan;
  unsigned long long size = (unsigned long long)st.st_size;
  if (c.nc.maxsize && size > c.nc.maxsize) {
    warn1("SpamAssassin scanning skipped: message larger than maximum");
    return 0;
  }
  int spam = 0, done = 0;
  if (c.path) {
    int s = nc_connect_un(c.path, c.nc.connect_timeout);
    done = s >= 0 && exchange(s, fd, size, &c, &spam);
    if (s >= 0) close(s);
  } else {
    struct in_addr addrs[NC_MAXADDR];
    int n = nc_resolve4(c.host, addrs, NC_MAXADDR);
    if (n <= 0) return &resp_no_resolve;
    int first = nc_start(n);
    for (int i = 0; i < n && !done; i++) {
      int s = nc_connect_in(addrs[(first + i) % n], c.nc.port, c.nc.connect_timeout);
      if (s < 0) continue;
      done = exchange(s, fd, size, &c, &spam);
      close(s);
    }
  }
  if (!done) return &resp_no_scan;
  if (!spam || !c.reject) return 0;
  if (!*c.reject) return &resp_spam;
  if (!str_copys(&ss->reject_text, c.reject)) return &resp_oom;
  ss->reject_resp.number = 554;
  ss->reject_resp.message = ss->reject_text.s;
  return &ss->reject_resp;
}

struct plugin plugin = {
  .version = PLUGIN_VERSION_4,
  .flags = FLAG_NEED_FILE,
  .message_end = sa_message_end,
  .session_open = sa_open,
  .session_close = sa_close,
};

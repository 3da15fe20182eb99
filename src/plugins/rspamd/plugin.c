/* plugin-rspamd -- each message checked by rspamd through its native HTTP
 * protocol (POST /checkv2), the verdict mapped as rspamd documents it
 * (docs/filtering.md, man page mailfront-plugin-rspamd.8).  NEED_FILE
 * plugin; the envelope is collected at sender/recipient, the check runs at
 * message_end.
 *
 * Settings (session lookups at each message):
 *   $RSPAMD_SOCKET (UNIX socket path; takes precedence) or $RSPAMD_HOST
 *   (127.0.0.1) with $RSPAMD_PORT (11333); $RSPAMD_TIMEOUT (20000 ms, each
 *   wait), $RSPAMD_CONNECT_TIMEOUT (the timeout); $RSPAMD_PASSWORD (sent
 *   as the controller's Password header); $RSPAMD_FAIL (tempfail, default,
 *   or accept) when rspamd is down or answers nonsense; $RSPAMD_MAXSIZE
 *   (0 = no limit: larger messages are not checked); $RSPAMD_MAX_REPLY
 *   (1048576 bytes); $RSPAMD_SETTINGS_ID (sent as Settings-ID).
 *
 * Request: HTTP/1.0 with From, Rcpt (one per recipient), IP, Helo,
 * Hostname, User (authenticated user), Password, Settings-ID, Content-Length and the
 * message streamed from the temporary file.  Reply: HTTP 200 with a JSON
 * object.  Actions: reject -> 554 5.7.1, soft reject and greylist -> 451
 * 4.7.1 (rspamd's smtp_message, when it gives one, is the text); rewrite
 * subject -> Subject replaced by `subject`; add header -> X-Spam: Yes;
 * every accepted message gets X-Spam-Status, rspamd's milter block
 * (add_headers, remove_headers) and its dkim-signature applied.  Edits
 * rewrite the message file and feed the back end again (backend_resubmit).
 * Memory: the reply (bounded) and the header section; never the body.
 *
 * Version 4 module: safe for many sessions in one process.  The envelope,
 * the request and the last reply live in the session's context
 * (session_open/session_close); settings are read per message; nothing at
 * file scope changes after loading. */
#include <mailfront/mailfront.h>
#include "plugins/netclient.h"
#include <sys/stat.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "json.h"
#include "lib/mailheaders.h"
#include <stdio.h>
#include <strings.h>

static RESPONSE(unavailable, 451, "4.7.1 Spam check unavailable, try again later");
static RESPONSE(greylist, 451, "4.7.1 Greylisted, try again later");

#define MAX_HEADER_LINE 8192u

enum fail_mode { F_TEMPFAIL, F_ACCEPT };
static const char* const fail_names[] = { "tempfail", "accept" };

struct rs_cfg
{
  const char* socket;
  const char* host;
  const char* password;
  const char* settings_id;
  struct nc_cfg nc;               /* port, timeouts, size limit */
  unsigned long max_reply;
  enum fail_mode fail;
};

/* The transaction and the reply of the last check: the session's context. */
struct rs_state
{
  str sender, rcpts;           /* rcpts: NUL-terminated items */
  str req, reply, tmp, text;
  response resp;
};

extern struct plugin plugin;

static const response* rs_open(void** ctx)
{
  *ctx = calloc(1, sizeof(struct rs_state));
  return *ctx ? 0 : &resp_oom;
}

static void rs_close(void* ctx)
{
  struct rs_state* rs = ctx;
  if (!rs) return;
  str* const owned[] = { &rs->sender, &rs->rcpts, &rs->req, &rs->reply, &rs->tmp, &rs->text };
  for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++) str_free(owned[i]);
  free(rs);
}

enum verdict { V_NONE, V_ADD_HEADER, V_REWRITE, V_SOFT_REJECT, V_GREYLIST, V_REJECT };
static const struct { const char* action; enum verdict v; } actions[] = {
  { "no action", V_NONE }, { "add header", V_ADD_HEADER }, { "rewrite subject", V_REWRITE },
  { "soft reject", V_SOFT_REJECT }, { "greylist", V_GREYLIST }, { "reject", V_REJECT },
};

static void read_cfg(struct rs_cfg* c)
{
  c->socket = session_getenv("RSPAMD_SOCKET");
  c->host = session_getenv("RSPAMD_HOST");
  if (!c->host) c->host = "127.0.0.1";
  c->password = session_getenv("RSPAMD_PASSWORD");
  c->settings_id = session_getenv("RSPAMD_SETTINGS_ID");
  static const struct env_number max_reply = { 1048576, 1, ~0UL, 0 };
  nc_read_cfg(&c->nc, &(const struct nc_names){ "RSPAMD_PORT", 0, "RSPAMD_TIMEOUT", 0, "RSPAMD_CONNECT_TIMEOUT", 0,
                                               "RSPAMD_MAXSIZE" },
              11333, 20000);
  c->max_reply = env_setting("RSPAMD_MAX_REPLY", &max_reply);
  const char* f = session_getenv("RSPAMD_FAIL");
  c->fail = f && strcasecmp(f, fail_names[F_ACCEPT]) == 0 ? F_ACCEPT : F_TEMPFAIL;
}

static const response* rs_reset(void)
{
  struct rs_state* rs = plugin_context(&plugin);
  if (!rs) return 0;
  rs->sender.len = rs->rcpts.len = 0;
  return 0;
}

static const response* rs_sender(str* a, str* p)
{
  (void)p;
  struct rs_state* rs = plugin_context(&plugin);
  if (!rs) return &resp_internal;
  rs->rcpts.len = 0;
  return str_copy(&rs->sender, a) ? 0 : &resp_oom;
}

static const response* rs_recipient(str* a, str* p)
{
  (void)p;
  struct rs_state* rs = plugin_context(&plugin);
  if (!rs) return &resp_internal;
  return str_catb(&rs->rcpts, a->s ? a->s : "", a->len) && str_catc(&rs->rcpts, 0) ? 0 : &resp_oom;
}

/* A request header line; values with CR or LF are left out. */
static int hdr(str* r, const char* name, const char* v, unsigned len)
{
  if (!v || memchr(v, '\r', len) || memchr(v, '\n', len)) return 1;
  return str_cat2s(r, name, ": ") && str_catb(r, v, len) && str_cats(r, "\r\n");
}

static int hdrs(str* r, const char* name, const char* v) { return !v || hdr(r, name, v, (unsigned)strlen(v)); }

static int build_request(struct rs_state* rs, const struct rs_cfg* c, unsigned long long size)
{
  str* r = &rs->req;
  char num[32];
  snprintf(num, sizeof num, "%llu", size);
  int ok = str_copys(r, "POST /checkv2 HTTP/1.0\r\n") && hdrs(r, "Content-Length", num)
    && hdr(r, "From", rs->sender.s ? rs->sender.s : "", rs->sender.len);
  for (unsigned i = 0; ok && i < rs->rcpts.len;) {
    unsigned n = (unsigned)strlen(rs->rcpts.s + i);
    ok = hdr(r, "Rcpt", rs->rcpts.s + i, n);
    i += n + 1;
  }
  ok = ok && hdrs(r, "IP", getprotoenv("REMOTEIP")) && hdrs(r, "Hostname", getprotoenv("REMOTEHOST"))
    && hdrs(r, "Helo", session_getstr("helo_domain"))
    && (!session_getnum("authenticated", 0) || hdrs(r, "User", session_getstr("auth_user")))
    && hdrs(r, "Password", c->password) && hdrs(r, "Settings-ID", c->settings_id)
    && str_cats(r, "Connection: close\r\n\r\n");
  return ok;
}

/* Status line and headers of the HTTP reply, then the body into rs->reply.
 * 0 ok; -1 broken, not 200, or larger than the limit. */
static int read_reply(struct rs_state* rs, int sock, const struct rs_cfg* c)
{
  struct nc_reader* r = malloc(sizeof *r);
  if (!r) return -1;
  nc_reader_init(r, sock, c->nc.timeout);
  str line = { 0, 0, 0 };
  long long clen = -1;
  unsigned long head = 0;                    /* header bytes, bounded like the body */
  int ok = nc_readline(r, &line, MAX_HEADER_LINE) == 1 && line.len >= 12 && memcmp(line.s, "HTTP/1.", 7) == 0
    && memcmp(line.s + 8, " 200", 4) == 0;
  while (ok) {
    ok = nc_readline(r, &line, MAX_HEADER_LINE) == 1 && (head += line.len) <= c->max_reply;
    unsigned n = line.len;
    while (n > 0 && (line.s[n - 1] == '\n' || line.s[n - 1] == '\r')) n--;
    if (!ok || n == 0) break;
    if (nc_content_length(line.s, n, &clen) < 0) ok = 0;
  }
  str_free(&line);
  rs->reply.len = 0;
  while (ok) {
    int f = nc_fill(r);
    if (f == 0) break;
    if (f < 0) { ok = 0; break; }
    size_t avail = r->len - r->pos;
    if (rs->reply.len + avail > c->max_reply || !str_catb(&rs->reply, r->buf + r->pos, (unsigned)avail)) ok = 0;
    r->pos = r->len;
    if (clen >= 0 && rs->reply.len >= (unsigned long long)clen) break;
  }
  if (ok && clen >= 0 && rs->reply.len != (unsigned long long)clen) ok = 0;
  free(r);
  return ok ? 0 : -1;
}

static int check(struct rs_state* rs, int fd, unsigned long long size, const struct rs_cfg* c)
{
  int sock = -1;
  if (c->socket) {
    sock = nc_connect_un(c->socket, c->nc.connect_timeout);
  } else {
    struct in_addr addrs[NC_MAXADDR];
    int n = nc_resolve4(c->host, addrs, NC_MAXADDR);
    int first = nc_start(n);
    for (int i = 0; i < n && sock < 0; i++)
      sock = nc_connect_in(addrs[(first + i) % n], c->nc.port, c->nc.connect_timeout);
  }
  if (sock < 0) return -1;
  int ok = build_request(rs, c, size) && nc_sendf(sock, rs->req.s, rs->req.len, c->nc.timeout, size ? MSG_MORE : 0) == 0
    && nc_send_file(sock, fd, size, c->nc.timeout, 0, 0) == 0 && read_reply(rs, sock, c) == 0;
  close(sock);
  return ok ? 0 : -1;
}

/* ---- applying the verdict ---- */

static int scan_headers(int fd, struct mh_scan* s)
{
  char* buf = malloc(65536);
  if (!buf) return -1;
  static const struct mh_callbacks none = { 0, 0, 0, 0 };
  off_t at = 0;
  int rc = 0;
  while (s->st != MH_BODY) {
    ssize_t n = pread(fd, buf, 65536, at);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) { rc = -1; break; }
    if (n == 0) { rc = mh_finish(s, &none); break; }
    if (mh_feed(s, buf, (unsigned long)n, &none) < 0) { rc = -1; break; }
    at += n;
  }
  free(buf);
  return rc;
}

/* A header value from the reply: a string, or {"value": ..., "order": n}. */
static int add_one(struct rs_state* rs, struct mh_list* l, const struct json* j, const char* name, unsigned nl, int v)
{
  int order = -1;
  if (j->t[v].type == JSON_OBJECT) {
    double o;
    if (json_number(j, json_member(j, v, "order"), &o) == 0 && o >= 0 && o < 1e6) order = (int)o;
    v = json_member(j, v, "value");
  }
  if (json_string(j, v, &rs->text) < 0) return 0;       /* not a header value: ignored */
  if (order < 0) return mh_add(l, name, nl, rs->text.s, rs->text.len, 0);
  return mh_insert(l, (unsigned)order, name, nl, rs->text.s, rs->text.len, 0);
}

static unsigned count_named(const struct mh_list* l, const char* name, unsigned nl)
{
  unsigned n = 0;
  for (unsigned i = 0; i < l->n; i++)
    n += l->h[i].namelen == nl && strncasecmp(l->h[i].bytes.s, name, nl) == 0;
  return n;
}

static int milter_block(struct rs_state* rs, struct mh_list* l, const struct json* j, int milter)
{
  int rm = json_member(j, milter, "remove_headers");
  if (rm >= 0 && j->t[rm].type == JSON_OBJECT) {
    for (unsigned i = (unsigned)rm + 1; i < j->t[rm].after; i = j->t[i + 1].after) {
      if (json_string(j, (int)i, &rs->tmp) < 0) return -1;
      double which = 0;
      (void)json_number(j, (int)i + 1, &which);
      unsigned count = count_named(l, rs->tmp.s, rs->tmp.len);
      if (which == 0) {
        while (count-- > 0)
          if (mh_change(l, 1, rs->tmp.s, rs->tmp.len, "", 0, 0) < 0) return -1;
      } else {
        long k = which > 0 ? (long)which : (long)count + 1 + (long)which;
        if (k >= 1 && (unsigned long)k <= count && mh_change(l, (unsigned)k, rs->tmp.s, rs->tmp.len, "", 0, 0) < 0)
          return -1;
      }
    }
  }
  int add = json_member(j, milter, "add_headers");
  if (add >= 0 && j->t[add].type == JSON_OBJECT) {
    for (unsigned i = (unsigned)add + 1; i < j->t[add].after; i = j->t[i + 1].after) {
      if (json_string(j, (int)i, &rs->tmp) < 0) return -1;
      int v = (int)i + 1;
      if (j->t[v].type == JSON_ARRAY) {
        for (unsigned k = (unsigned)v + 1; k < j->t[v].after; k = j->t[k].after)
          if (add_one(rs, l, j, rs->tmp.s, rs->tmp.len, (int)k) < 0) return -1;
      } else if (add_one(rs, l, j, rs->tmp.s, rs->tmp.len, v) < 0) {
        return -1;
      }
    }
  }
  return 0;
}

static int dkim_signatures(struct rs_state* rs, struct mh_list* l, const struct json* j, int top)
{
  int d = json_member(j, top, "dkim-signature");
  if (d < 0) return 0;
  if (j->t[d].type == JSON_STRING) return json_string(j, d, &rs->text) < 0 ? -1
    : mh_insert(l, 0, "DKIM-Signature", 14, rs->text.s, rs->text.len, 0);
  if (j->t[d].type != JSON_ARRAY) return 0;
  for (unsigned k = (unsigned)d + 1; k < j->t[d].after; k = j->t[k].after)
    if (json_string(j, (int)k, &rs->text) < 0 || mh_insert(l, 0, "DKIM-Signature", 14, rs->text.s, rs->text.len, 0) < 0)
      return -1;
  return 0;
}

/* Header edits of an accepted message; 0 or -1. */
static int edit(struct rs_state* rs, int fd, const struct json* j, enum verdict v, double score, double required)
{
  struct mh_scan s;
  struct mh_list l = { 0, 0, 0, 0 };
  mh_scan_init(&s, 1048576);
  int ok = scan_headers(fd, &s) == 0 && mh_list_load(&l, &s) == 0;
  char status[128];
  snprintf(status, sizeof status, "%s, score=%.2f required=%.2f", v == V_NONE ? "No" : "Yes", score, required);
  ok = ok && mh_insert(&l, 0, "X-Spam-Status", 13, status, (unsigned)strlen(status), 0) == 0;
  if (ok && v == V_ADD_HEADER) ok = mh_insert(&l, 0, "X-Spam", 6, "Yes", 3, 0) == 0;
  if (ok && v == V_REWRITE && json_string(j, json_member(j, 0, "subject"), &rs->text) == 0)
    ok = mh_change(&l, 1, "Subject", 7, rs->text.s, rs->text.len, 0) == 0;
  int milter = json_member(j, 0, "milter");
  if (ok && milter >= 0) ok = milter_block(rs, &l, j, milter) == 0;
  if (ok) ok = dkim_signatures(rs, &l, j, 0) == 0;
  int out = ok ? scratchfile() : -1;
  ok = out >= 0 && mh_write(out, fd, 0, &s, &l, -1) == 0 && lseek(out, 0, SEEK_SET) == 0 && dup2(out, fd) >= 0
    && lseek(fd, 0, SEEK_SET) == 0;
  if (out >= 0) close(out);
  mh_list_free(&l);
  mh_scan_free(&s);
  return ok ? 0 : -1;
}

static const response* refuse(struct rs_state* rs, unsigned code, const char* status, const struct json* j, const char* dflt)
{
  int m = json_member(j, 0, "messages");
  const char* text = dflt;
  if (json_string(j, json_member(j, m, "smtp_message"), &rs->tmp) == 0 && rs->tmp.len > 0
      && !memchr(rs->tmp.s, '\r', rs->tmp.len) && !memchr(rs->tmp.s, '\n', rs->tmp.len))
    text = rs->tmp.s;
  if (!str_copys(&rs->text, status) || !str_cats(&rs->text, text)) return &resp_oom;
  rs->resp.number = code;
  rs->resp.message = rs->text.s;
  return &rs->resp;
}

static const response* failed(const struct rs_cfg* c, const char* why)
{
  warn2("rspamd: event=failure error=", why);
  return c->fail == F_ACCEPT ? 0 : &resp_unavailable;
}

static const response* rs_message_end(int fd)
{
  struct rs_state* rs = plugin_context(&plugin);
  if (!rs) return &resp_internal;
  struct rs_cfg c;
  read_cfg(&c);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) return &resp_internal;
  unsigned long long size = (unsigned long long)st.st_size;
  if (c.nc.maxsize && size > c.nc.maxsize) {
    msg1("rspamd: event=skipped reason=size");
    return 0;
  }
  if (check(rs, fd, size, &c) < 0) return failed(&c, errno ? strerror(errno) : "bad reply");
  struct json j = { 0, 0, 0, 0, 0 };
  const response* r = 0;
  str action = { 0, 0, 0 };
  double score = 0, required = 0;
  if (json_parse(&j, rs->reply.s, rs->reply.len) < 0 || j.t[0].type != JSON_OBJECT
      || json_string(&j, json_member(&j, 0, "action"), &action) < 0) {
    json_free(&j);
    return failed(&c, "bad JSON reply");
  }
  (void)json_number(&j, json_member(&j, 0, "score"), &score);
  (void)json_number(&j, json_member(&j, 0, "required_score"), &required);
  enum verdict v = V_NONE;
  size_t k;
  for (k = 0; k < sizeof actions / sizeof actions[0]; k++)
    if (strcmp(action.s, actions[k].action) == 0) { v = actions[k].v; break; }
  char line[160];
  snprintf(line, sizeof line, "rspamd: event=checked action=\"%.40s\" score=%.2f required=%.2f", action.s, score,
           required);
  msg1(line);
  switch (v) {
  case V_REJECT: r = refuse(rs, 554, "5.7.1 ", &j, "Spam message rejected"); break;
  case V_SOFT_REJECT: r = refuse(rs, 451, "4.7.1 ", &j, "Try again later"); break;
  case V_GREYLIST: r = &resp_greylist; break;
  case V_NONE: case V_ADD_HEADER: case V_REWRITE:
    if (edit(rs, fd, &j, v, score, required) < 0) r = &resp_internal;
    else r = backend_resubmit(&rs->sender, &rs->rcpts);
    break;
  }
  if (k == sizeof actions / sizeof actions[0]) warn2("rspamd: unknown action, message accepted: ", action.s);
  str_free(&action);
  json_free(&j);
  if (rs->reply.size > 65536) str_free(&rs->reply);
  return r;
}

struct plugin plugin = {
  .version = PLUGIN_VERSION_4,
  .flags = FLAG_NEED_FILE,
  .reset = rs_reset,
  .sender = rs_sender,
  .recipient = rs_recipient,
  .message_end = rs_message_end,
  .session_open = rs_open,
  .session_close = rs_close,
};

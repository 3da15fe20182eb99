/* plugin-clamav -- virus scan of each message through clamd's INSTREAM
 * command (plugins.md "clamav"; compat-checklist 51).  NEED_FILE plugin,
 * message_end hook only.
 *
 * Settings (session lookups at each message): $CLAMAV_HOST / $CLAMD_HOST,
 * $CLAMAV_PORT / $CLAMD_PORT (3310), $CLAMAV_TIMEOUT / $CLAMD_TIMEOUT
 * (5000 ms, each wait for the reply), $CLAMAV_CONNECT_TIMEOUT and
 * $CLAMAV_SEND_TIMEOUT (default: the timeout), $CLAMAV_MAXSIZE (0 = none).
 * Extension: a host that begins with '/' is the path of clamd's
 * LocalSocket (the reference would fail to resolve it).
 *
 * The message is streamed from the temporary file in NC_CHUNK pieces, each
 * sent as one INSTREAM chunk (never wholly in memory).  Addresses are tried
 * from a pseudo-random start; an address fails on connect/send/receive
 * timeout, an error or a reply that is not `stream: ...`.  Replies:
 * `stream: OK` pass, `stream: TEXT` -> 554 Virus scan failed: TEXT, all
 * failed -> 451.
 *
 * Version 4 module: safe for many sessions in one process.  The 554 text
 * lives in the session's context (session_open/session_close) until the
 * next message; settings are read per message; nothing at file scope
 * changes after loading. */
#include <mailfront/mailfront.h>
#include <stdint.h>
#include "plugins/netclient.h"
#include <sys/stat.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static RESPONSE(no_scan, 451, "4.3.0 Could not virus scan message");
static RESPONSE(no_resolve, 451, "4.3.0 Could not resolve virus scanner hostname");

#define MAX_REPLY 4096u      /* one clamd reply line */
#define CHUNK_LIMIT 0xffffffffull

struct clam_cfg
{
  const char* host;
  struct nc_cfg nc;               /* port, timeouts, size limit */
};

/* The per-session state: the verdict of the last message. */
struct clam_result
{
  str text;                 /* the 554 text */
  response resp;
};

extern struct plugin plugin;

static const response* clam_open(void** ctx)
{
  *ctx = calloc(1, sizeof(struct clam_result));
  return *ctx ? 0 : &resp_oom;
}

static void clam_close(void* ctx)
{
  struct clam_result* res = ctx;
  if (res) str_free(&res->text);
  free(res);
}

static void read_cfg(struct clam_cfg* c)
{
  c->host = session_getenv("CLAMAV_HOST");
  if (!c->host) c->host = session_getenv("CLAMD_HOST");
  nc_read_cfg(&c->nc, &(const struct nc_names){ "CLAMAV_PORT", "CLAMD_PORT", "CLAMAV_TIMEOUT", "CLAMD_TIMEOUT",
                                               "CLAMAV_CONNECT_TIMEOUT", "CLAMAV_SEND_TIMEOUT", "CLAMAV_MAXSIZE" },
              3310, 5000);
}

static int send_chunk_len(int sock, size_t len, unsigned ms)
{
  uint32_t n = htonl((uint32_t)len);
  return nc_sendf(sock, (const char*)&n, 4, ms, MSG_MORE);
}

/* One exchange on a connected socket.  1: verdict in *out (NULL = clean),
 * 0: this scanner failed. */
static int exchange(struct clam_result* res, int sock, int fd, unsigned long long size, const struct clam_cfg* c,
                    const response** out)
{
  static const char cmd[] = "nINSTREAM\n";
  static const char end[4] = { 0, 0, 0, 0 };
  if (nc_sendf(sock, cmd, sizeof cmd - 1, c->nc.send_timeout, MSG_MORE) < 0) return 0;
  if (nc_send_file(sock, fd, size, c->nc.send_timeout, send_chunk_len, MSG_MORE) < 0) return 0;
  if (nc_send(sock, end, 4, c->nc.send_timeout) < 0) return 0;
  struct nc_reader* r = malloc(sizeof *r);
  if (!r) return 0;
  nc_reader_init(r, sock, c->nc.timeout);
  str line = { 0, 0, 0 };
  int ok = nc_readline(r, &line, MAX_REPLY) == 1;
  free(r);
  if (ok) ok = line.len >= 8 && memcmp(line.s, "stream: ", 8) == 0;
  if (ok) {
    unsigned n = line.len;
    while (n > 8 && (line.s[n - 1] == '\n' || line.s[n - 1] == '\r' || line.s[n - 1] == ' ' || line.s[n - 1] == '\t'))
      n--;
    const char* v = line.s + 8;
    unsigned vl = n - 8;
    if (vl == 2 && memcmp(v, "OK", 2) == 0)
      *out = 0;
    else if (str_copys(&res->text, "5.7.0 Virus scan failed: ") && str_catb(&res->text, v, vl)) {
      res->resp.number = 554;
      res->resp.message = res->text.s;
      *out = &res->resp;
    } else
      *out = &resp_oom;
  }
  str_free(&line);
  return ok;
}

static const response* clam_message_end(int fd)
{
  struct clam_result* res = plugin_context(&plugin);
  if (!res) return &resp_internal;
  struct clam_cfg c;
  read_cfg(&c);
  if (!c.host) return &resp_no_scan;
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) return &resp_no_scan;
  unsigned long long size = (unsigned long long)st.st_size;
  if (size > CHUNK_LIMIT) {
    warn1("ClamAV scanning skipped: message larger than chunk size");
    return 0;
  }
  if (c.nc.maxsize && size > c.nc.maxsize) {
    warn1("ClamAV scanning skipped: message larger than maximum");
    return 0;
  }
  const response* verdict = 0;
  if (c.host[0] == '/') {
    int s = nc_connect_un(c.host, c.nc.connect_timeout);
    int ok = s >= 0 && exchange(res, s, fd, size, &c, &verdict);
    if (s >= 0) close(s);
    return ok ? verdict : &resp_no_scan;
  }
  struct in_addr addrs[NC_MAXADDR];
  int n = nc_resolve4(c.host, addrs, NC_MAXADDR);
  if (n <= 0) return &resp_no_resolve;
  int first = nc_start(n);
  for (int i = 0; i < n; i++) {
    int s = nc_connect_in(addrs[(first + i) % n], c.nc.port, c.nc.connect_timeout);
    if (s < 0) continue;
    int ok = exchange(res, s, fd, size, &c, &verdict);
    close(s);
    if (ok) return verdict;
  }
  return &resp_no_scan;
}

struct plugin plugin = {
  .version = PLUGIN_VERSION_4,
  .flags = FLAG_NEED_FILE,
  .message_end = clam_message_end,
  .session_open = clam_open,
  .session_close = clam_close,
};

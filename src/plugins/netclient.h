/* netclient.h -- declarations of netclient.c (deadline-bounded client
 * sockets of the scanner and filter plugins; the contract is there). */
#ifndef MAILFRONT_PLUGINS_NETCLIENT_H
#define MAILFRONT_PLUGINS_NETCLIENT_H

#include <mailfront/mailfront.h>
#include "lib/setting.h"
#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>

/* Bytes read from the message file and sent per piece. */
#define NC_CHUNK 65536u
/* The reference resolves at most this many addresses. */
#define NC_MAXADDR 16

/* Bounds of the plugins' port and millisecond settings (lib/setting.h). */
#define NC_PORT(dflt) { (dflt), 1, 65535, 0 }
#define NC_MS(dflt) { (dflt), 1, 0x7fffffffUL, 0 }

/* The settings every daemon client has, read by lib/setting.h's rule:
 * the port (1..65535, default `port`), the timeout (milliseconds, default
 * `timeout`), the connect and send timeouts (default: the timeout; no
 * send name: the send timeout is the timeout), the size limit (bytes, 0 =
 * no limit, the default).  The port and the timeout have an alternative
 * name each, read when the first is unset (NULL: none). */
struct nc_names
{
  const char* port, * port_alt, * timeout, * timeout_alt, * connect_timeout, * send_timeout, * maxsize;
};
struct nc_cfg
{
  unsigned port;
  unsigned timeout, connect_timeout, send_timeout;
  unsigned long long maxsize;
};
void nc_read_cfg(struct nc_cfg* c, const struct nc_names* names, unsigned port, unsigned timeout);

int nc_wait(int fd, short events, unsigned ms);
int nc_resolve4(const char* host, struct in_addr* out, int max);
int nc_start(int count);
int nc_connect_sa(int family, const struct sockaddr* sa, socklen_t len, unsigned ms);
int nc_connect_in(struct in_addr a, unsigned port, unsigned ms);
int nc_connect_un(const char* path, unsigned ms);
/* flags: 0, or MSG_MORE for framing that is followed at once by data
 * (spares a small segment and a delayed-ACK round trip). */
int nc_sendf(int fd, const char* b, size_t len, unsigned ms, int flags);
int nc_send(int fd, const char* b, size_t len, unsigned ms);

/* Called before each piece of the file (len > 0) to send framing; may be 0. */
typedef int (*nc_frame_fn)(int sock, size_t len, unsigned ms);
int nc_send_file(int sock, int fd, unsigned long long size, unsigned ms, nc_frame_fn frame, int flags);

struct nc_reader
{
  int fd;
  unsigned ms;
  size_t pos, len;
  char buf[4096];
};
void nc_reader_init(struct nc_reader* r, int fd, unsigned ms);
/* 1 data buffered, 0 end of stream, -1 error or timeout. */
int nc_fill(struct nc_reader* r);
/* One line up to and including LF (kept) into line; 1 ok, 0 end of stream
 * before any byte, -1 error, timeout, longer than max or no LF at the end. */
int nc_readline(struct nc_reader* r, str* line, size_t max);
/* A reply header line (n bytes, line end removed): 1 when it is a
 * Content-Length header with a valid value (*out set; blanks around the
 * digits allowed), 0 when it is another header, -1 when the value is
 * malformed or too large. */
int nc_content_length(const char* s, size_t n, long long* out);

#endif

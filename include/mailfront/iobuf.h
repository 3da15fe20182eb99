/* mailfront/iobuf.h -- buffered, deadline-bounded byte streams.
 *
 * An ibuf reads from and an obuf writes to a file descriptor, or through a
 * pair of transport functions (so TLS can wrap the connection without the
 * protocols knowing).  Every read or write waits at most `timeout_ms`
 * (0 = forever) and never past the session deadline; on expiry the call
 * fails with errno = ETIMEDOUT and `timedout` is set.  Byte counters count
 * what crossed the transport.  Nothing here allocates per byte: buffers are
 * allocated once at open time.  ibuf functions return 1 ok, 0 end of
 * input, -1 error (errno set); obuf functions 0 ok, -1 error.  An ibuf may
 * be tied to an obuf, which is then flushed before every wait for input, so
 * replies to pipelined commands go out together (RFC 2920). */
#ifndef MAILFRONT_IOBUF_H
#define MAILFRONT_IOBUF_H

#include <stddef.h>
#include "str.h"

/* The functions are exported by the driver under mf_ names: bglibs has
 * functions of the same names with other structures, and a plugin linked
 * with libbg must keep getting libbg's for its own use (issue 10).  Source
 * code uses the names below; these macros map them.  This header and
 * <bglibs/iobuf.h> cannot be used in the same source file. */
#define ibuf_init mf_ibuf_init
#define ibuf_close mf_ibuf_close
#define ibuf_fill mf_ibuf_fill
#define ibuf_buffered mf_ibuf_buffered
#define ibuf_discard mf_ibuf_discard
#define ibuf_getc mf_ibuf_getc
#define ibuf_peek mf_ibuf_peek
#define ibuf_read mf_ibuf_read
#define ibuf_getline mf_ibuf_getline
#define ibuf_view mf_ibuf_view
#define ibuf_consume mf_ibuf_consume
#define obuf_init mf_obuf_init
#define obuf_close mf_obuf_close
#define obuf_write mf_obuf_write
#define obuf_puts mf_obuf_puts
#define obuf_putc mf_obuf_putc
#define obuf_flush mf_obuf_flush

struct io_transport
{
  /* read/write like read(2)/write(2), may return -1 with EAGAIN. */
  long (*read)(void* ctx, char* buf, unsigned long len);
  long (*write)(void* ctx, const char* buf, unsigned long len);
  /* bytes already decoded and waiting inside the transport (TLS). */
  int (*pending)(void* ctx);
  void* ctx;
};

struct ibuf
{
  int fd;
  char* buf;
  unsigned long size, head, tail;   /* unread bytes are buf[head..tail) */
  unsigned timeout_ms;
  const long long* deadline_ms;     /* absolute CLOCK_MONOTONIC ms, or 0 */
  const struct io_transport* tr;
  unsigned long long count;         /* bytes read from the transport */
  int eof, timedout, error;
  struct obuf* tie;                 /* flushed before waiting for input */
};
typedef struct ibuf ibuf;

struct obuf
{
  int fd;
  char* buf;
  unsigned long size, len;
  unsigned timeout_ms;
  const long long* deadline_ms;
  const struct io_transport* tr;
  unsigned long long count;         /* bytes written to the transport */
  int timedout, error;
};
typedef struct obuf obuf;

int ibuf_init(ibuf* in, int fd, unsigned long bufsize);
void ibuf_close(ibuf* in);
/* Refill the buffer if empty: 1 data available, 0 EOF, -1 error. */
int ibuf_fill(ibuf* in);
/* Bytes buffered and not yet consumed. */
unsigned long ibuf_buffered(const ibuf* in);
/* The buffered bytes, without copying: *len bytes at the returned
 * pointer, valid until the next call on in.  ibuf_consume marks the
 * first n of them read (at most what is buffered). */
const char* ibuf_view(const ibuf* in, unsigned long* len);
void ibuf_consume(ibuf* in, unsigned long n);
/* Drop everything buffered; returns how many bytes were dropped. */
unsigned long ibuf_discard(ibuf* in);
int ibuf_getc(ibuf* in, char* c);
int ibuf_peek(ibuf* in, char* c);
/* Read exactly len bytes: 1 ok, 0 EOF before len (partial data lost), -1. */
int ibuf_read(ibuf* in, char* out, unsigned long len);
/* Read up to and including LF into line (LF kept).  At most max bytes are
 * stored; the rest of an over-long line is consumed and *toolong set.
 * Returns 1 with a line (a final line without LF counts), 0 at EOF with
 * nothing read, -1 on error. */
int ibuf_getline(ibuf* in, str* line, unsigned long max, int* toolong);

int obuf_init(obuf* out, int fd, unsigned long bufsize);
void obuf_close(obuf* out);
int obuf_write(obuf* out, const char* b, unsigned long len);
int obuf_puts(obuf* out, const char* s);
int obuf_putc(obuf* out, char c);
int obuf_flush(obuf* out);

#endif

/* pop3_transmit.c -- unit tests of pop3front-maildir's RETR/TOP encoder:
 * CR LF conversion, dot-stuffing, the trailing empty line, TOP's header and
 * line counting, and that splitting the input into blocks at any byte
 * changes nothing.  Expected bytes are what the 2.12 oracle sends. */
#include "tap.h"
#include "programs/pop3front-maildir/transmit.c"
#include <stdio.h>
#include <stdlib.h>

/* Encode in with blocks of `step` bytes (0 = all at once) through an obuf
 * on a temporary file; returns the bytes written (malloc'd, NUL added). */
static char* encode(const char* in, size_t len, int limited, unsigned long lines, size_t step, size_t* outlen)
{
  FILE* f = tmpfile();
  obuf out;
  struct msg_encoder e;
  if (!f || obuf_init(&out, fileno(f), 7) < 0) exit(2);   /* tiny buffer: many flushes */
  encoder_init(&e, limited, lines);
  size_t pos = 0;
  while (pos < len) {
    size_t n = step && step < len - pos ? step : len - pos;
    if (encoder_block(&e, in + pos, n, &out) < 0) exit(2);
    pos += n;
  }
  if (encoder_finish(&e, &out) < 0 || obuf_flush(&out) < 0) exit(2);
  obuf_close(&out);
  long size = ftell(f);
  char* buf = malloc((size_t)size + 1);
  rewind(f);
  if (!buf || fread(buf, 1, (size_t)size, f) != (size_t)size) exit(2);
  buf[size] = 0;
  fclose(f);
  *outlen = (size_t)size;
  return buf;
}

static int same_every_split(const char* in, int limited, unsigned long lines, const char* exp)
{
  size_t len = strlen(in);
  for (size_t step = 0; step <= len + 1; step++) {
    size_t n;
    char* got = encode(in, len, limited, lines, step, &n);
    int ok = n == strlen(exp) && memcmp(got, exp, n) == 0;
    if (!ok) printf("# step %zu: got [%s]\n", step, got);
    free(got);
    if (!ok) return 0;
  }
  return 1;
}

/* encoder_send_fd() from infd into a temporary file; *written is its size. */
static int send_fd(int infd, long* written)
{
  FILE* outf = tmpfile();
  obuf out;
  struct msg_encoder e;
  char buf[333];
  if (!outf || obuf_init(&out, fileno(outf), 4096) < 0) exit(2);
  encoder_init(&e, 0, 0);
  int r = encoder_send_fd(&e, infd, buf, sizeof buf, &out);
  obuf_flush(&out);
  *written = ftell(outf);
  obuf_close(&out);
  fclose(outf);
  return r;
}

int main(void)
{
  /* input, TOP (1) or RETR (0), TOP's line count, the bytes sent, what it shows */
  static const struct { const char* in; int limited; unsigned long lines; const char* exp; const char* name; } cases[] = {
    { "Subject: a\n\nbody1\n.dot\n", 0, 0, "Subject: a\r\n\r\nbody1\r\n..dot\r\n\r\n.\r\n", "retr: LF file" },
    { "Subject: b\r\n\r\nbody2", 0, 0, "Subject: b\r\r\n\r\r\nbody2\r\n.\r\n", "retr: CR LF kept as CR CR LF, no final LF" },
    { "", 0, 0, "\r\n.\r\n", "retr: empty file" },
    { "x", 0, 0, "x\r\n.\r\n", "retr: one byte" },
    { ".", 0, 0, "..\r\n.\r\n", "retr: lone dot, no LF" },
    { ".\n..\n", 0, 0, "..\r\n...\r\n\r\n.\r\n", "retr: dot lines" },
    { "a.b\n x.\n", 0, 0, "a.b\r\n x.\r\n\r\n.\r\n", "retr: inner dots untouched" },
    { "a\rb\n", 0, 0, "a\rb\r\n\r\n.\r\n", "retr: bare CR passes" },
    { "\n\n", 0, 0, "\r\n\r\n\r\n.\r\n", "retr: empty lines" },
    { "Subject: a\n\nbody1\n.dot\n", 1, 0, "Subject: a\r\n\r\n\r\n.\r\n", "top 0" },
    { "Subject: a\n\nbody1\n.dot\n", 1, 1, "Subject: a\r\n\r\nbody1\r\n\r\n.\r\n", "top 1" },
    { "Subject: a\n\nbody1\n.dot\n", 1, 2, "Subject: a\r\n\r\nbody1\r\n..dot\r\n\r\n.\r\n", "top 2 = all" },
    { "Subject: a\n\nbody1\n.dot\n", 1, 99, "Subject: a\r\n\r\nbody1\r\n..dot\r\n\r\n.\r\n", "top beyond the end" },
    { "Subject: b\r\n\r\nbody2", 1, 0, "Subject: b\r\r\n\r\r\nbody2\r\n.\r\n", "top: CR LF line does not end the header" },
    { "X: c\n\nl1\nl2\nl3\n", 1, 1, "X: c\r\n\r\nl1\r\n\r\n.\r\n", "top: counts body lines" },
    { "\nbody\n", 1, 0, "\r\n\r\n.\r\n", "top: header empty" },
    { "h\n\n\n\nx\n", 1, 2, "h\r\n\r\n\r\n\r\n\r\n.\r\n", "top: empty body lines count" },
    { "h\n\nlast", 1, 1, "h\r\n\r\nlast\r\n.\r\n", "top: partial last line" },
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    CHECK(same_every_split(cases[i].in, cases[i].limited, cases[i].lines, cases[i].exp), cases[i].name);

  /* Streaming from a file descriptor. */
  FILE* in = tmpfile();
  char big[100000];
  for (size_t i = 0; i < sizeof big; i++) big[i] = i % 50 == 49 ? '\n' : (i % 50 == 0 ? '.' : 'a');
  fwrite(big, 1, sizeof big, in);
  fflush(in);
  rewind(in);
  long n;
  int r = send_fd(fileno(in), &n);
  CHECK(r == 0 && n == 100000 + 2000 + 2000 + 5, "send_fd: 2000 lines, stuffed and CR added");
  /* A read error is reported as -2. */
  CHECK(send_fd(-1, &n) == -2, "send_fd: read error");
  fclose(in);
  return done();
}

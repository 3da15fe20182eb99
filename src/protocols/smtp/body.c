/* body.c -- the SMTP DATA decoder (protocols.md "Body decoding" and
 * "SMTP smuggling").  A byte-at-a-time state machine that never holds a
 * line: memory is one output block whatever the client sends.
 *
 * Lenient mode is the original's exact algorithm (LF ends a line, a held
 * CR at line start does not count).  Strict mode (sessions that speak
 * CRLF) ends the body only at CRLF "." CRLF; bare CR and bare LF are
 * counted, and either kept (the caller refuses the message) or turned into
 * line ends (normalize).  A "." after a bare line end is an ordinary byte,
 * so no setting lets bytes after a non-CRLF dot line become a new message.
 *
 * Chunk mode (BDAT, RFC 3030) is strict mode without the dot: the caller
 * counts the chunk's bytes, the decoder only turns CRLF into LF. */
#include "smtp.h"
#include <string.h>

void smtp_body_start(struct smtp_body* b, int strict, int normalize,
                     void (*emit)(void*, const char*, unsigned), void* ctx)
{
  memset(b, 0, sizeof *b);
  b->strict = strict;
  b->normalize = normalize;
  b->atcrlf = 1;
  b->emit = emit;
  b->ctx = ctx;
}

void smtp_body_flush(struct smtp_body* b)
{
  if (b->outlen) b->emit(b->ctx, b->out, b->outlen);
  b->total += b->outlen;
  b->outlen = 0;
}

void smtp_body_start_chunked(struct smtp_body* b, int normalize,
                             void (*emit)(void*, const char*, unsigned), void* ctx)
{
  smtp_body_start(b, 1, normalize, emit, ctx);
  b->chunked = 1;
}

static inline void put(struct smtp_body* b, char c)
{
  if (b->outlen == SMTP_BLOCK) smtp_body_flush(b);
  b->out[b->outlen++] = c;
}

static int feed_lenient(struct smtp_body* b, const char* in, unsigned long len, unsigned long* used)
{
  for (unsigned long i = 0; i < len; i++) {
    char c = in[i];
    if (c == '\n') {
      if (b->period && b->pos == 0) { *used = i + 1; return 1; }
      put(b, '\n');
      b->cr = b->period = 0;
      b->pos = 0;
    } else if (c == '\r') {
      if (b->cr) { put(b, '\r'); b->pos++; }
      b->cr = 1;
    } else if (c == '.' && b->pos == 0 && !b->period) {
      b->period = 1;
    } else {
      b->period = 0;
      if (b->cr) { put(b, '\r'); b->pos++; b->cr = 0; }
      put(b, c);
      b->pos++;
    }
  }
  *used = len;
  return 0;
}

static int feed_strict(struct smtp_body* b, const char* in, unsigned long len, unsigned long* used)
{
  for (unsigned long i = 0; i < len; i++) {
    char c = in[i];
    if (b->cr) {
      b->cr = 0;
      if (c == '\n') {
        if (b->period) { *used = i + 1; return 1; }
        put(b, '\n');
        b->atcrlf = 1;
        b->period = 0;
        continue;
      }
      b->bare++;                       /* bare CR */
      put(b, b->normalize ? '\n' : '\r');
      b->atcrlf = b->period = 0;
    }
    if (c == '\r') { b->cr = 1; continue; }
    if (c == '\n') {                   /* bare LF */
      b->bare++;
      put(b, '\n');
      b->atcrlf = b->period = 0;
      continue;
    }
    if (c == '.' && b->atcrlf && !b->chunked) { b->period = 1; b->atcrlf = 0; continue; }
    b->period = b->atcrlf = 0;
    put(b, c);
  }
  *used = len;
  return 0;
}

void smtp_body_finish(struct smtp_body* b)
{
  if (b->cr) {
    b->cr = 0;
    b->bare++;
    put(b, b->normalize ? '\n' : '\r');
  }
  smtp_body_flush(b);
}

int smtp_body_feed(struct smtp_body* b, const char* in, unsigned long len, unsigned long* used)
{
  return b->strict ? feed_strict(b, in, len, used) : feed_lenient(b, in, len, used);
}

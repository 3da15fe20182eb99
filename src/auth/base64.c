/* base64.c -- RFC 4648 base64 encoder/decoder (see base64.h).
 * The decoder rejects anything that is not base64: wrong length, foreign
 * characters (whitespace included), misplaced padding.  Non-zero unused
 * bits in the last group are ignored, as the original decodes (RFC 4648
 * section 3.5 leaves the choice to the decoder).  Output replaces the
 * caller's str; 0 = invalid or no memory. */
#include "base64.h"

static const char alphabet[] =
  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* 0..63 for an alphabet character, -1 otherwise. */
static int sym(unsigned char c)
{
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

int base64_encode(const char* data, unsigned long len, str* out)
{
  const unsigned char* p = (const unsigned char*)data;
  if (len > (STR_MAX / 4) * 3 - 3) return 0;
  unsigned long olen = (len + 2) / 3 * 4;
  if (!str_ready(out, (unsigned)olen)) return 0;
  char* o = out->s;
  unsigned long i = 0;
  for (; i + 3 <= len; i += 3) {
    unsigned long v = ((unsigned long)p[i] << 16) | ((unsigned long)p[i + 1] << 8) | p[i + 2];
    *o++ = alphabet[(v >> 18) & 63];
    *o++ = alphabet[(v >> 12) & 63];
    *o++ = alphabet[(v >> 6) & 63];
    *o++ = alphabet[v & 63];
  }
  if (len - i == 1) {
    unsigned long v = (unsigned long)p[i] << 16;
    *o++ = alphabet[(v >> 18) & 63];
    *o++ = alphabet[(v >> 12) & 63];
    *o++ = '=';
    *o++ = '=';
  }
  else if (len - i == 2) {
    unsigned long v = ((unsigned long)p[i] << 16) | ((unsigned long)p[i + 1] << 8);
    *o++ = alphabet[(v >> 18) & 63];
    *o++ = alphabet[(v >> 12) & 63];
    *o++ = alphabet[(v >> 6) & 63];
    *o++ = '=';
  }
  out->len = (unsigned)olen;
  out->s[out->len] = 0;
  return 1;
}

int base64_decode(const char* text, unsigned long len, str* out)
{
  const unsigned char* t = (const unsigned char*)text;
  if (len % 4 != 0) return 0;
  if (len / 4 * 3 > STR_MAX) return 0;
  if (!str_ready(out, (unsigned)(len / 4 * 3))) return 0;
  unsigned long o = 0;
  for (unsigned long i = 0; i < len; i += 4) {
    int last = (i + 4 == len);
    int a = sym(t[i]), b = sym(t[i + 1]), c = sym(t[i + 2]), d = sym(t[i + 3]);
    if (a < 0 || b < 0) return 0;
    if (c < 0) {
      /* "xx==": only in the last group (the 4 unused bits of b ignored) */
      if (!last || t[i + 2] != '=' || t[i + 3] != '=') return 0;
      out->s[o++] = (char)((a << 2) | (b >> 4));
      break;
    }
    if (d < 0) {
      /* "xxx=": only in the last group (the 2 unused bits of c ignored) */
      if (!last || t[i + 3] != '=') return 0;
      out->s[o++] = (char)((a << 2) | (b >> 4));
      out->s[o++] = (char)(((b & 15) << 4) | (c >> 2));
      break;
    }
    out->s[o++] = (char)((a << 2) | (b >> 4));
    out->s[o++] = (char)(((b & 15) << 4) | (c >> 2));
    out->s[o++] = (char)(((c & 3) << 6) | d);
  }
  out->len = (unsigned)o;
  out->s[o] = 0;
  return 1;
}

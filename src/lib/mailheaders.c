/* mailheaders.c -- header fields of a streamed message and their edits
 * (mailheaders.h). */
#include "mailheaders.h"
#include "lib/fdio.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

void mh_scan_init(struct mh_scan* s, unsigned long max)
{
  memset(s, 0, sizeof *s);
  s->st = MH_START;
  s->max = max;
}

void mh_scan_free(struct mh_scan* s)
{
  str_free(&s->cur);
  str_free(&s->raw);
  free(s->f);
  s->f = 0;
  s->n = s->cap = 0;
}

/* 33..126 but ':' */
static int name_char(char c) { return c > 32 && c < 127 && c != ':'; }

/* Length of the field name when the first line of b is a field, else 0;
 * *colon is where its colon is (white space may come before it, as the
 * obsolete syntax of RFC 5322 4.5 allows). */
static unsigned field_name(const char* b, unsigned len, unsigned* colon)
{
  unsigned i = 0;
  while (i < len && name_char(b[i])) i++;
  unsigned n = i;
  while (i < len && (b[i] == ' ' || b[i] == '\t')) i++;
  *colon = i;
  return n > 0 && i < len && b[i] == ':' ? n : 0;
}

static int emit(struct mh_scan* s, const struct mh_callbacks* cb)
{
  if (s->cur.len == 0) return 0;
  if (s->n == s->cap) {
    unsigned cap = s->cap ? s->cap * 2 : 32;
    struct mh_field* f = realloc(s->f, cap * sizeof *f);
    if (!f) return -1;
    s->f = f;
    s->cap = cap;
  }
  struct mh_field* f = &s->f[s->n];
  f->off = s->raw.len;
  f->len = s->cur.len;
  f->namelen = s->cur_namelen;
  f->valoff = s->cur_colon + 1;
  if (!str_cat(&s->raw, &s->cur)) return -1;
  s->n++;
  s->cur.len = 0;
  s->cur_checked = 0;
  const char* v = s->raw.s + f->off + f->valoff;
  if (cb->header && cb->header(cb->ctx, s->raw.s + f->off, f->namelen, v, f->len - f->valoff) < 0) return -1;
  return 0;
}

/* The header section ends; the body starts at stream offset `at`. */
static int to_body(struct mh_scan* s, unsigned long long at, const struct mh_callbacks* cb)
{
  s->st = MH_BODY;
  s->body_off = at;
  return cb->eoh ? cb->eoh(cb->ctx) : 0;
}

/* The pending line (in cur, not a field) and what follows are body. */
static int line_to_body(struct mh_scan* s, const struct mh_callbacks* cb)
{
  str line = s->cur;
  s->cur.s = 0;
  s->cur.len = s->cur.size = 0;
  s->cur_checked = 0;
  int r = to_body(s, s->seen - line.len, cb);
  if (r == 0 && line.len && cb->body) r = cb->body(cb->ctx, line.s, line.len);
  str_free(&line);
  return r;
}

int mh_feed(struct mh_scan* s, const char* b, unsigned long len, const struct mh_callbacks* cb)
{
  unsigned long i = 0;
  while (i < len && s->st != MH_BODY) {
    char c = b[i];
    switch (s->st) {
    case MH_START:
      if (c == '\n' || c == '\r') {
        if (emit(s, cb) < 0) return -1;
        i++;
        s->seen++;
        if (c == '\r') { s->st = MH_CR; break; }
        s->sep = 1;
        if (to_body(s, s->seen, cb) < 0) return -1;
        break;
      }
      if (c == ' ' || c == '\t') {
        if (s->cur.len == 0) {                  /* a continuation of nothing */
          if (to_body(s, s->seen, cb) < 0) return -1;
          break;
        }
      } else {
        if (emit(s, cb) < 0) return -1;
      }
      s->st = MH_LINE;
      break;
    case MH_CR:
      if (c == '\n') {
        i++;
        s->seen++;
        s->sep = 2;
        if (to_body(s, s->seen, cb) < 0) return -1;
        break;
      }
      /* A line that starts with a bare CR is no field: body from the CR. */
      if (to_body(s, s->seen - 1, cb) < 0) return -1;
      if (cb->body && cb->body(cb->ctx, "\r", 1) < 0) return -1;
      break;
    case MH_LINE: {
      const char* nl = memchr(b + i, '\n', len - i);
      unsigned long take = nl ? (unsigned long)(nl - (b + i)) + 1 : len - i;
      if (s->raw.len + s->cur.len + take > s->max) {
        /* Too large a header section: from this line on, everything is body. */
        if (line_to_body(s, cb) < 0) return -1;
        break;
      }
      if (!str_catb(&s->cur, b + i, (unsigned)take)) return -1;
      i += take;
      s->seen += take;
      if (!nl) break;
      if (!s->cur_checked) {
        s->cur_namelen = field_name(s->cur.s, s->cur.len, &s->cur_colon);
        if (s->cur_namelen == 0) {
          if (line_to_body(s, cb) < 0) return -1;
          break;
        }
        s->cur_checked = 1;
      }
      s->st = MH_START;
      break;
    }
    case MH_BODY:
      break;
    }
  }
  if (i < len && cb->body && cb->body(cb->ctx, b + i, (unsigned)(len - i)) < 0) return -1;
  s->seen += len - i;
  return 0;
}

int mh_finish(struct mh_scan* s, const struct mh_callbacks* cb)
{
  switch (s->st) {
  case MH_BODY:
    return 0;
  case MH_CR:
    if (emit(s, cb) < 0) return -1;
    if (to_body(s, s->seen - 1, cb) < 0) return -1;
    return cb->body ? cb->body(cb->ctx, "\r", 1) : 0;
  case MH_LINE:
    if (!s->cur_checked) {
      s->cur_namelen = field_name(s->cur.s, s->cur.len, &s->cur_colon);
      if (s->cur_namelen == 0) return line_to_body(s, cb);
    }
    /* fall through */
  case MH_START:
    if (emit(s, cb) < 0) return -1;
    return to_body(s, s->seen, cb);
  }
  return 0;
}

/* ---- the editable list ---- */

void mh_list_free(struct mh_list* l)
{
  for (unsigned i = 0; i < l->n; i++) str_free(&l->h[i].bytes);
  free(l->h);
  l->h = 0;
  l->n = l->cap = 0;
}

static struct mh_hdr* slot_at(struct mh_list* l, unsigned at)
{
  if (l->n == l->cap) {
    unsigned cap = l->cap ? l->cap * 2 : 32;
    struct mh_hdr* h = realloc(l->h, cap * sizeof *h);
    if (!h) return 0;
    l->h = h;
    l->cap = cap;
  }
  if (at > l->n) at = l->n;
  memmove(&l->h[at + 1], &l->h[at], (l->n - at) * sizeof *l->h);
  l->n++;
  memset(&l->h[at], 0, sizeof l->h[at]);
  return &l->h[at];
}

int mh_list_load(struct mh_list* l, const struct mh_scan* s)
{
  for (unsigned i = 0; i < s->n; i++) {
    struct mh_hdr* h = slot_at(l, l->n);
    if (!h) return -1;
    h->namelen = s->f[i].namelen;
    if (!str_copyb(&h->bytes, s->raw.s + s->f[i].off, s->f[i].len)) return -1;
  }
  return 0;
}

/* "Name: value\n": CR before LF dropped, continuation lines made to start
 * with white space, no newline at the end of the value. */
static int format(str* out, const char* name, unsigned nl, const char* v, unsigned vl, int leadspc)
{
  out->len = 0;
  if (nl == 0) { errno = EINVAL; return -1; }
  for (unsigned i = 0; i < nl; i++)
    if (!name_char(name[i])) { errno = EINVAL; return -1; }
  if (!str_catb(out, name, nl) || !str_catc(out, ':')) return -1;
  if (!leadspc && !str_catc(out, ' ')) return -1;
  while (vl > 0 && (v[vl - 1] == '\n' || v[vl - 1] == '\r')) vl--;
  for (unsigned i = 0; i < vl; i++) {
    if (v[i] == '\r' && i + 1 < vl && v[i + 1] == '\n') continue;
    if (!str_catc(out, v[i])) return -1;
    if (v[i] == '\n' && i + 1 < vl && v[i + 1] != ' ' && v[i + 1] != '\t' && !str_catc(out, '\t')) return -1;
  }
  return str_catc(out, '\n') ? 0 : -1;
}

static int put(struct mh_list* l, unsigned at, const char* name, unsigned nl, const char* v, unsigned vl,
               int leadspc)
{
  str b = { 0, 0, 0 };
  if (format(&b, name, nl, v, vl, leadspc) < 0) { str_free(&b); return -1; }
  struct mh_hdr* h = slot_at(l, at);
  if (!h) { str_free(&b); return -1; }
  h->bytes = b;
  h->namelen = nl;
  l->changed = 1;
  return 0;
}

int mh_add(struct mh_list* l, const char* name, unsigned nl, const char* v, unsigned vl, int leadspc)
{
  return put(l, l->n, name, nl, v, vl, leadspc);
}

int mh_insert(struct mh_list* l, unsigned index, const char* name, unsigned nl, const char* v, unsigned vl,
              int leadspc)
{
  return put(l, index, name, nl, v, vl, leadspc);
}

int mh_change(struct mh_list* l, unsigned index, const char* name, unsigned nl, const char* v, unsigned vl,
              int leadspc)
{
  unsigned seen = 0, i;
  for (i = 0; i < l->n; i++)
    if (l->h[i].namelen == nl && strncasecmp(l->h[i].bytes.s, name, nl) == 0 && ++seen == index) break;
  if (i == l->n) return vl == 0 ? 0 : mh_add(l, name, nl, v, vl, leadspc);
  l->changed = 1;
  if (vl == 0) {
    str_free(&l->h[i].bytes);
    memmove(&l->h[i], &l->h[i + 1], (l->n - i - 1) * sizeof *l->h);
    l->n--;
    return 0;
  }
  str b = { 0, 0, 0 };
  /* The field keeps its name as the message spells it. */
  if (format(&b, l->h[i].bytes.s, nl, v, vl, leadspc) < 0) { str_free(&b); return -1; }
  str_free(&l->h[i].bytes);
  l->h[i].bytes = b;
  return 0;
}

static int copy_range(int out, int in, off_t from, off_t to)
{
  char* buf = malloc(65536);
  if (!buf) return -1;
  int rc = 0;
  while (to < 0 || from < to) {
    size_t want = 65536;
    if (to >= 0 && (off_t)want > to - from) want = (size_t)(to - from);
    ssize_t r = pread(in, buf, want, from);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) { rc = -1; break; }
    if (r == 0) { if (to >= 0) { errno = EIO; rc = -1; } break; }
    if (fd_write_all(out, buf, (unsigned long)r) < 0) { rc = -1; break; }
    from += r;
  }
  free(buf);
  return rc;
}

int mh_write(int out, int in, off_t base, const struct mh_scan* s, const struct mh_list* l, int bodyfd)
{
  if (base > 0 && copy_range(out, in, 0, base) < 0) return -1;
  for (unsigned i = 0; i < l->n; i++)
    if (fd_write_all(out, l->h[i].bytes.s, l->h[i].bytes.len) < 0) return -1;
  static const char* const seps[] = { "", "\n", "\r\n" };
  const char* sep = seps[s->sep < 3 ? s->sep : 0];
  if (s->sep == 0 && s->n == 0 && l->n > 0) sep = "\n";     /* fields added before a bare body */
  if (*sep && fd_write_all(out, sep, strlen(sep)) < 0) return -1;
  if (bodyfd >= 0) return copy_range(out, bodyfd, 0, -1);
  return copy_range(out, in, base + (off_t)s->body_off, -1);
}

int mh_body_lf(int fd, int* cr, const char* b, unsigned len)
{
  char out[4096];
  unsigned n = 0;
  for (unsigned i = 0; i < len; i++) {
    if (n + 2 > sizeof out) {
      if (fd_write_all(fd, out, n) < 0) return -1;
      n = 0;
    }
    if (*cr) {
      *cr = 0;
      if (b[i] != '\n') out[n++] = '\r';
    }
    if (b[i] == '\r') { *cr = 1; continue; }
    out[n++] = b[i];
  }
  return n ? fd_write_all(fd, out, n) : 0;
}

int mh_body_lf_end(int fd, int* cr)
{
  if (!*cr) return 0;
  *cr = 0;
  return fd_write_all(fd, "\r", 1);
}

/* maildir.c -- pop3front-maildir: scanning, naming rules, sorting and
 * committing a maildir (see maildir.h for the contract: the original's
 * rules for scanning, numbering and QUIT, stated there). */
#include "maildir.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static size_t base_len(const char* name, size_t len)
{
  const char* colon = memchr(name, ':', len);
  return colon ? (size_t)(colon - name) : len;
}

/* The first comma of the base name, when it starts a size-indicator list
 * (",X=..."): its index, else len. */
static size_t indicator_start(const char* name, size_t blen)
{
  const char* comma = memchr(name, ',', blen);
  if (!comma) return blen;
  size_t i = (size_t)(comma - name);
  return i + 2 < blen && name[i + 2] == '=' ? i : blen;
}

/* strtoul(3) semantics on s[0..len): white space, sign, digits; saturates
 * at ULONG_MAX; a '-' negates in unsigned arithmetic (as strtoul does). */
static unsigned long parse_ulong(const char* s, size_t len)
{
  size_t i = 0;
  int neg = 0, over = 0;
  unsigned long acc = 0;
  while (i < len && (s[i] == ' ' || (s[i] >= '\t' && s[i] <= '\r'))) i++;
  if (i < len && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
  for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
    unsigned d = (unsigned)(s[i] - '0');
    if (over || acc > (ULONG_MAX - d) / 10) over = 1;
    else acc = acc * 10 + d;
  }
  if (over) return ULONG_MAX;
  return neg ? 0 - acc : acc;
}

unsigned long msg_name_size(const char* name, size_t len)
{
  size_t blen = base_len(name, len);
  size_t i = indicator_start(name, blen);
  unsigned long size = 0;
  /* Every ",S=" / ",W=" field of the base: S only fills an unset (zero)
   * size, W always replaces it (reference behaviour, W= preferred). */
  while (i < blen) {
    if (i + 2 < blen && name[i + 2] == '=') {
      if (name[i + 1] == 'W') size = parse_ulong(name + i + 3, blen - i - 3);
      else if (name[i + 1] == 'S' && size == 0) size = parse_ulong(name + i + 3, blen - i - 3);
    }
    const char* next = memchr(name + i + 1, ',', blen - i - 1);
    i = next ? (size_t)(next - name) : blen;
  }
  return size;
}

size_t msg_uid_len(const char* name, size_t len)
{
  size_t blen = base_len(name, len);
  size_t u = indicator_start(name, blen);
  return u > MSG_UID_MAX ? MSG_UID_MAX : u;
}

int msg_name_read(const char* name, size_t len)
{
  size_t b = base_len(name, len);
  if (b + 3 > len || name[b + 1] != '2' || name[b + 2] != ',') return 0;
  return memchr(name + b + 3, 'S', len - b - 3) != 0;
}

const char* msg_read_suffix(const char* name, size_t len)
{
  size_t b = base_len(name, len);
  if (b == len) return ":2,S";
  if (b + 3 > len || name[b + 1] != '2' || name[b + 2] != ',') return "";
  return memchr(name + b + 3, 'S', len - b - 3) ? "" : "S";
}

void msg_parse_name(struct msg* m, const char* name, size_t len)
{
  size_t i = 0;
  m->namelen = (unsigned short)len;
  m->uidlen = (unsigned short)msg_uid_len(name, len);
  while (i < len && name[i] == '0') i++;
  size_t zeros = i;
  while (i < len && name[i] >= '0' && name[i] <= '9') i++;
  m->numskip = (unsigned short)zeros;
  m->numlen = (unsigned short)i;
  m->size = msg_name_size(name, len);
  m->flags = msg_name_read(name, len) ? MSG_READ : 0;
}

int msg_compare(const struct msg* a, const struct msg* b)
{
  if (a->numlen && b->numlen) {
    /* Both names start with a digit: compare the leading numbers by value
     * (significant digit count, then the digits). */
    unsigned la = (unsigned)(a->numlen - a->numskip), lb = (unsigned)(b->numlen - b->numskip);
    if (la != lb) return la < lb ? -1 : 1;
    int c = memcmp(a->name + a->numskip, b->name + b->numskip, la);
    if (c) return c;
  }
  /* Byte-wise (strcmp compares as unsigned char); also the tie-break. */
  return strcmp(a->name, b->name);
}

static int compare_qsort(const void* a, const void* b) { return msg_compare(a, b); }

void maildir_free(struct maildir* md)
{
  free(md->msgs);
  str_free(&md->names);
  md->msgs = 0;
  md->count = md->alloc = 0;
}

static int add_msg(struct maildir* md, int dfd, const char* name, size_t len, enum msg_dir dir)
{
  if (md->count == md->alloc) {
    unsigned long n = md->alloc ? md->alloc * 2 : 256;
    if (n < md->alloc || n > (unsigned long)-1 / sizeof *md->msgs) { errno = ENOMEM; return -1; }
    struct msg* p = realloc(md->msgs, n * sizeof *p);
    if (!p) return -1;
    md->msgs = p;
    md->alloc = n;
  }
  struct msg* m = &md->msgs[md->count];
  memset(m, 0, sizeof *m);
  m->off = md->names.len;
  if (!str_catb(&md->names, name, (unsigned)len + 1)) { errno = ENOMEM; return -1; }
  msg_parse_name(m, name, len);
  m->dir = (unsigned char)dir;
  if (m->size == 0) {
    struct stat st;
    if (fstatat(dfd, name, &st, 0) == 0) m->size = (unsigned long)st.st_size;
    else m->flags |= MSG_HIDDEN;
  }
  md->count++;
  return 0;
}

static int scan_dir(struct maildir* md, const char* path, enum msg_dir dir,
                    unsigned long max_dir, unsigned long max_total)
{
  DIR* d = opendir(path);
  if (!d) return -1;
  unsigned long here = 0;
  int dfd = dirfd(d);
  struct dirent* de;
  for (;;) {
    errno = 0;
    if (!(de = readdir(d))) break;
    if (de->d_name[0] == '.') continue;
    if ((max_dir && here >= max_dir) || (max_total && md->count >= max_total)) { errno = 0; break; }
    size_t len = strlen(de->d_name);
    if (len > USHRT_MAX) continue;
    if (add_msg(md, dfd, de->d_name, len, dir) < 0) break;
    here++;
  }
  int saved = errno;
  closedir(d);
  errno = saved;
  return saved ? -1 : 0;
}

int maildir_scan(struct maildir* md, const struct scan_limits* lim)
{
  struct maildir fresh = { 0, 0, 0, { 0, 0, 0 } };
  if (scan_dir(&fresh, "cur", MSG_CUR, lim->max_cur, lim->max_total) < 0
      || scan_dir(&fresh, "new", MSG_NEW, lim->max_new, lim->max_total) < 0) {
    int saved = errno;
    maildir_free(&fresh);
    errno = saved;
    return -1;
  }
  for (unsigned long i = 0; i < fresh.count; i++)
    fresh.msgs[i].name = fresh.names.s + fresh.msgs[i].off;
  if (fresh.count > 1) qsort(fresh.msgs, fresh.count, sizeof *fresh.msgs, compare_qsort);
  maildir_free(md);
  *md = fresh;
  return 0;
}

int maildir_path(str* path, const struct msg* m)
{
  return str_copys(path, m->dir == MSG_NEW ? "new/" : "cur/")
    && str_catb(path, m->name, m->namelen);
}

/* rename(2) that never replaces an existing file where the kernel and
 * file system allow it. */
static void move_noreplace(const char* from, const char* to)
{
  if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0) return;
  if (errno == EINVAL || errno == ENOSYS) {
    struct stat st;
    if (lstat(to, &st) < 0 && errno == ENOENT) (void)rename(from, to);
  }
}

/* tmp/ as the Maildir specification asks of a reader: a regular file
 * neither read nor written for 36 hours is what a killed delivery left
 * behind, and goes.  Errors are ignored (a delivery agent may finish or
 * remove its file first; tmp/ may be missing). */
enum { TMP_STALE_SECONDS = 36 * 3600 };

static void maildir_clean_tmp(void)
{
  DIR* d = opendir("tmp");
  if (!d) return;
  time_t now = time(0);
  struct dirent* de;
  while ((de = readdir(d)) != 0) {
    struct stat st;
    if (de->d_name[0] == '.') continue;
    if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode)) continue;
    time_t last = st.st_atime > st.st_mtime ? st.st_atime : st.st_mtime;
    if (last <= now && now - last >= TMP_STALE_SECONDS) (void)unlinkat(dirfd(d), de->d_name, 0);
  }
  closedir(d);
}

void maildir_commit(const struct maildir* md)
{
  str from = { 0, 0, 0 }, to = { 0, 0, 0 };
  for (unsigned long i = 0; i < md->count; i++) {
    const struct msg* m = &md->msgs[i];
    if (m->flags & MSG_HIDDEN) continue;
    if (!maildir_path(&from, m)) continue;
    if (m->flags & MSG_DELETED) {
      (void)unlink(from.s);
      continue;
    }
    const char* suffix = m->flags & MSG_READ ? msg_read_suffix(m->name, m->namelen) : "";
    if (m->dir == MSG_CUR && !*suffix) continue;
    if (!str_copys(&to, "cur/") || !str_catb(&to, m->name, m->namelen) || !str_cats(&to, suffix)) continue;
    move_noreplace(from.s, to.s);
  }
  str_free(&from);
  str_free(&to);
  maildir_clean_tmp();
}

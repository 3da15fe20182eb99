/* tcprules.c -- see tcprules.h. */
#include "daemon/tcprules.h"
#include <mailfront/str.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

int tcprules_open(struct tcprules* t, const char* path)
{
  t->fd = open(path, O_RDONLY | O_CLOEXEC);
  if (t->fd < 0) return -1;
  if (cdb_init(&t->cdb, t->fd) != 0) {
    int e = errno ? errno : EINVAL;
    close(t->fd);
    t->fd = -1;
    errno = e;
    return -1;
  }
  return 0;
}

void tcprules_close(struct tcprules* t)
{
  if (t->fd < 0) return;
  cdb_free(&t->cdb);
  close(t->fd);
  t->fd = -1;
}

/* 1 found, 0 not, -1 error. */
static int find(struct tcprules* t, const char* key, size_t klen, const char** data, size_t* len)
{
  int r = cdb_find(&t->cdb, key, (unsigned)klen);
  if (r <= 0) return r;
  *len = cdb_datalen(&t->cdb);
  *data = cdb_get(&t->cdb, (unsigned)*len, cdb_datapos(&t->cdb));
  if (!*data) { errno = EPROTO; return -1; }
  return 1;
}

static int find_host(struct tcprules* t, str* key, const char* host, const char** data, size_t* len)
{
  if (!str_copys(key, "=") || !str_cats(key, host)) { errno = ENOMEM; return -1; }
  return find(t, key->s, key->len, data, len);
}

int tcprules_find(struct tcprules* t, const char* ip, const char* host,
                  const char** data, size_t* len)
{
  str key = {0, 0, 0};
  size_t iplen = strlen(ip);
  int r;
  if ((r = find(t, ip, iplen, data, len)) != 0) goto out;
  if (host && (r = find_host(t, &key, host, data, len)) != 0) goto out;
  for (size_t n = iplen; n > 0; n--)
    if ((ip[n - 1] == '.' || ip[n - 1] == ':') && (r = find(t, ip, n, data, len)) != 0) goto out;
  if (host) {
    for (const char* h = host; *h; h++)
      if (*h == '.' && (r = find_host(t, &key, h, data, len)) != 0) goto out;
    if ((r = find(t, "=", 1, data, len)) != 0) goto out;
  }
  r = find(t, "", 0, data, len);
out:
  str_free(&key);
  return r;
}

int tcprules_apply(const char* data, size_t len,
                   int (*set)(void* ctx, const char* name, size_t namelen, const char* value),
                   void* ctx)
{
  int verdict = TCPRULES_ALLOW;
  while (len > 0) {
    const char* nul = memchr(data, 0, len);
    size_t ilen = nul ? (size_t)(nul - data) : len;   /* last item may lack its NUL */
    if (ilen > 0 && data[0] == 'D') verdict = TCPRULES_DENY;
    else if (ilen > 1 && data[0] == '+') {
      const char* eq = memchr(data + 1, '=', ilen - 1);
      /* the value runs to the item's NUL; without one, it is not a C string */
      if (eq && !nul) break;
      if (set(ctx, data + 1, eq ? (size_t)(eq - data - 1) : ilen - 1, eq ? eq + 1 : 0) < 0) return -1;
    }
    if (!nul) break;
    len -= ilen + 1;
    data += ilen + 1;
  }
  return verdict;
}

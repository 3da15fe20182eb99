/* queuedir.c -- the queue-directory writer (backends.md "queuedir").
 *
 * One message per file: `SENDER\0RCPT\0...\0\0MESSAGE`, written under
 * $P/$P_TMP/NAME, fsynced, hard-linked to $P/$P_DEST/NAME, the directory
 * fsynced, and only then reported as accepted; the temporary name is
 * removed last.  A message whose data comes before its envelope
 * (QMQP/QMTP) is spooled to a scratch file and copied at message end, so
 * both orders produce the same format.  P is a variable prefix (QUEUEDIR
 * for the backend, RBL_QUEUEDIR for rbl).  Each writer is an instance
 * (queuedir_open, freed by queuedir_close, which also removes an
 * unfinished message), so several can serve one session (rbl capture
 * beside backend-queuedir).  Every failure resets and returns a 451; a
 * NULL writer (its allocation failed) answers every step with a 451. */
#include <mailfront/mailfront.h>
#include "lib/fdio.h"
#include <stdlib.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

RESPONSE(qd_noconfig, 451, "4.3.0 Missing backend configuration parameter");
RESPONSE(qd_create, 451, "4.3.0 Error creating queue file");
RESPONSE(qd_write, 451, "4.3.0 Error writing queue file");

struct queuedir
{
  const char* prefix;
  str tmp, dest, dir;     /* full temp name, full destination name, dest dir */
  int fd;                 /* queue file, or -1 */
  int spool;              /* scratch file for data before envelope, or -1 */
  int in_data;            /* data goes straight to fd */
  int failed;             /* a write failed */
  int nosync;
};

static const char* var(const struct queuedir* qd, const char* suffix, const char* dflt)
{
  str name = {0, 0, 0};
  const char* v = 0;
  if (str_cat2s(&name, qd->prefix, suffix)) v = session_getenv(name.s);
  str_free(&name);
  return v ? v : dflt;
}

struct queuedir* queuedir_open(const char* prefix)
{
  struct queuedir* qd = calloc(1, sizeof *qd);
  if (!qd) return 0;
  qd->prefix = prefix;
  qd->fd = qd->spool = -1;
  return qd;
}

void queuedir_close(struct queuedir* qd)
{
  if (!qd) return;
  queuedir_reset(qd);
  str_free(&qd->tmp);
  str_free(&qd->dest);
  str_free(&qd->dir);
  free(qd);
}

const response* queuedir_reset(struct queuedir* qd)
{
  if (!qd) return 0;
  if (qd->fd >= 0) close(qd->fd);
  if (qd->spool >= 0) close(qd->spool);
  if (qd->tmp.len) unlink(qd->tmp.s);
  if (qd->dest.len) unlink(qd->dest.s);
  qd->fd = qd->spool = -1;
  qd->tmp.len = qd->dest.len = 0;
  qd->in_data = qd->failed = 0;
  return 0;
}

static const response* fail(struct queuedir* qd, const response* r) { queuedir_reset(qd); return r; }

const response* queuedir_sender(struct queuedir* qd, str* address, str* params)
{
  (void)params;
  if (!qd) return &resp_internal;
  /* Data may already be spooled (QMQP/QMTP): keep it across the reset. */
  int spool = qd->spool, failed = qd->failed;
  qd->spool = -1;
  queuedir_reset(qd);
  qd->spool = spool;
  qd->failed = failed;
  const char* top = var(qd, "", 0);
  if (!top) return &resp_qd_noconfig;
  const char* tmpdir = var(qd, "_TMP", "tmp");
  const char* destdir = var(qd, "_DEST", "new");
  qd->nosync = var(qd, "_NOSYNC", 0) != 0;
  struct stat st;
  for (int tries = 0; tries < 1000; tries++) {
    struct timeval tv;
    char name[80];
    gettimeofday(&tv, 0);
    snprintf(name, sizeof name, "/%ld.%06ld.%ld", (long)tv.tv_sec, (long)tv.tv_usec, (long)getpid());
    qd->tmp.len = qd->dest.len = qd->dir.len = 0;
    if (!str_cat3s(&qd->tmp, top, "/", tmpdir) || !str_cats(&qd->tmp, name)
        || !str_cat3s(&qd->dir, top, "/", destdir)
        || !str_copy(&qd->dest, &qd->dir) || !str_cats(&qd->dest, name)) {
      qd->tmp.len = qd->dest.len = 0;
      return &resp_oom;
    }
    if (lstat(qd->tmp.s, &st) == 0) continue;
    if (errno != ENOENT) break;
    if (lstat(qd->dest.s, &st) == 0) { sleep(1); continue; }
    if (errno != ENOENT) break;
    qd->fd = open(qd->tmp.s, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (qd->fd < 0) {
      if (errno == EEXIST) continue;
      qd->tmp.len = qd->dest.len = 0;
      return &resp_qd_create;
    }
    if (fd_write_all(qd->fd, address->s ? address->s : "", address->len) < 0 || fd_write_all(qd->fd, "", 1) < 0)
      return fail(qd, &resp_qd_write);
    return 0;
  }
  qd->tmp.len = qd->dest.len = 0;
  return &resp_internal;
}

const response* queuedir_recipient(struct queuedir* qd, str* address, str* params)
{
  (void)params;
  if (!qd || qd->fd < 0) return &resp_internal;
  if (fd_write_all(qd->fd, address->s ? address->s : "", address->len) < 0 || fd_write_all(qd->fd, "", 1) < 0)
    return fail(qd, &resp_qd_write);
  return 0;
}

const response* queuedir_data_start(struct queuedir* qd, int fd)
{
  (void)fd;
  if (!qd) return &resp_internal;
  if (qd->fd >= 0) {
    if (fd_write_all(qd->fd, "", 1) < 0) return fail(qd, &resp_qd_write);
    qd->in_data = 1;
    return 0;
  }
  if (qd->spool >= 0) close(qd->spool);
  qd->spool = scratchfile();
  return qd->spool < 0 ? &resp_internal : 0;
}

const response* queuedir_data_block(struct queuedir* qd, const char* bytes, unsigned long len)
{
  if (!qd) return 0;
  int fd = qd->in_data ? qd->fd : qd->spool;
  if (fd < 0 || fd_write_all(fd, bytes, len) < 0) qd->failed = 1;
  return 0;
}

static int copy_spool(struct queuedir* qd)
{
  char buf[65536];
  if (lseek(qd->spool, 0, SEEK_SET) != 0) return -1;
  for (;;) {
    ssize_t r = read(qd->spool, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -1;
    if (r == 0) return 0;
    if (fd_write_all(qd->fd, buf, (unsigned long)r) < 0) return -1;
  }
}

const response* queuedir_message_end(struct queuedir* qd, int fd)
{
  (void)fd;
  if (!qd) return &resp_internal;
  if (qd->fd < 0 || qd->failed) return fail(qd, &resp_qd_write);
  if (!qd->in_data) {
    if (fd_write_all(qd->fd, "", 1) < 0) return fail(qd, &resp_qd_write);
    if (qd->spool >= 0 && copy_spool(qd) < 0) return fail(qd, &resp_qd_write);
  }
  if (!qd->nosync && fsync(qd->fd) < 0) return fail(qd, &resp_qd_write);
  int r = close(qd->fd);
  qd->fd = -1;
  if (r < 0 || link(qd->tmp.s, qd->dest.s) < 0) return fail(qd, &resp_qd_write);
  if (!qd->nosync) {
    int dfd = open(qd->dir.s, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return fail(qd, &resp_internal);
    r = fsync(dfd);
    close(dfd);
    if (r < 0) return fail(qd, &resp_qd_write);
  }
  unlink(qd->tmp.s);
  qd->tmp.len = qd->dest.len = 0;   /* delivered: reset must not remove it */
  queuedir_reset(qd);
  return 0;
}

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
 * NULL writer (its allocation failed) answers every step with a 451.
 *
 * Temporary files a killed writer left behind: queuedir_sweep removes a
 * regular file of $P/$P_TMP whose name `SEC.USEC.PID` names a process
 * that no longer runs and whose mtime is $P_TMP_MAXAGE seconds old
 * (default 3600), and any file whose mtime is 36 hours old (qmail-clean's
 * bound).  A live writer's file is never removed: its pid runs, and it
 * writes far more often than every 36 hours.  Sweeps are rate-limited
 * across processes by the mtime of the stamp $P/.sweep-$P_TMP: at most one
 * every $P_TMP_SWEEP seconds (default 300; 0: every call).  Each writer
 * sweeps at its first sender (the first message of every process in
 * tcpserver mode), backend-queuedir also at load (mailfrontd's start). */
#include <mailfront/mailfront.h>
#include "lib/fdio.h"
#include <stdlib.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <dirent.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#include "lib/log.h"

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
  int swept;              /* queuedir_sweep ran for this writer */
};

static const char* var(const char* prefix, const char* suffix, const char* dflt)
{
  str name = {0, 0, 0};
  const char* v = 0;
  if (str_cat2s(&name, prefix, suffix)) v = session_getenv(name.s);
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

/* ---- sweeping tmp/ ---- */

enum {
  SWEEP_EVERY = 300,              /* $P_TMP_SWEEP default, seconds */
  SWEEP_DEAD_AGE = 3600,          /* $P_TMP_MAXAGE default, seconds */
  SWEEP_ANY_AGE = 36 * 3600       /* any file this old goes */
};

static unsigned long var_num(const char* prefix, const char* suffix, unsigned long dflt)
{
  str name = {0, 0, 0};
  unsigned long v = dflt;
  if (str_cat2s(&name, prefix, suffix)) v = session_getenvu_dflt(name.s, dflt);
  str_free(&name);
  return v;
}

/* The writer's pid from a name SEC.USEC.PID, or 0 when it is not one. */
static pid_t name_pid(const char* name)
{
  const char* p = name;
  for (int field = 0; field < 2; field++) {
    if (*p < '0' || *p > '9') return 0;
    while (*p >= '0' && *p <= '9') p++;
    if (*p++ != '.') return 0;
  }
  unsigned long pid = 0;
  if (*p < '0' || *p > '9') return 0;
  for (; *p >= '0' && *p <= '9'; p++) {
    pid = pid * 10 + (unsigned long)(*p - '0');
    if (pid > 0x7fffffffUL) return 0;
  }
  return *p ? 0 : (pid_t)pid;
}

static int pid_gone(pid_t pid)
{
  return pid > 0 && pid != getpid() && kill(pid, 0) < 0 && errno == ESRCH;
}

/* Whether a sweep is due: the stamp is older than `every` seconds (or
 * missing, or in the future); touches it when so.  A stamp that cannot
 * be written does not stop the sweep. */
static int sweep_due(const char* stamp, unsigned long every, time_t now)
{
  struct stat st;
  if (every && stat(stamp, &st) == 0 && st.st_mtime <= now && (unsigned long)(now - st.st_mtime) < every)
    return 0;
  int fd = open(stamp, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0666);
  if (fd >= 0) {
    (void)futimens(fd, 0);
    close(fd);
  }
  return 1;
}

/* A stale file of the open directory d: see the contract above. */
static int stale(int dfd, const char* name, time_t now, unsigned long dead_age)
{
  struct stat st;
  if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode)) return 0;
  unsigned long age = st.st_mtime < now ? (unsigned long)(now - st.st_mtime) : 0;
  if (age >= SWEEP_ANY_AGE) return 1;
  return age >= dead_age && pid_gone(name_pid(name));
}

int queuedir_sweep(const char* prefix)
{
  const char* top = var(prefix, "", 0);
  if (!top) return 0;
  const char* tmpdir = var(prefix, "_TMP", "tmp");
  str path = {0, 0, 0}, stamp = {0, 0, 0};
  int removed = -1;
  if (!str_cat3s(&path, top, "/", tmpdir) || !str_cat3s(&stamp, top, "/.sweep-", tmpdir)) goto out;
  for (unsigned i = stamp.len - strlen(tmpdir); i < stamp.len; i++)
    if (stamp.s[i] == '/') stamp.s[i] = '-';
  time_t now = time(0);
  removed = 0;
  if (!sweep_due(stamp.s, var_num(prefix, "_TMP_SWEEP", SWEEP_EVERY), now)) goto out;
  unsigned long dead_age = var_num(prefix, "_TMP_MAXAGE", SWEEP_DEAD_AGE);
  DIR* d = opendir(path.s);
  if (!d) { removed = -1; goto out; }
  struct dirent* de;
  while ((de = readdir(d)) != 0) {
    if (de->d_name[0] == '.') continue;
    if (!stale(dirfd(d), de->d_name, now, dead_age)) continue;
    if (unlinkat(dirfd(d), de->d_name, 0) == 0) {
      removed++;
      log_fmt(LOG_WARN, "queuedir: removed stale temporary file %s/%s", path.s, de->d_name);
    }
  }
  closedir(d);
out:
  str_free(&path);
  str_free(&stamp);
  return removed;
}

const response* queuedir_sender(struct queuedir* qd, str* address, str* params)
{
  (void)params;
  if (!qd) return &resp_internal;
  if (!qd->swept) {
    qd->swept = 1;
    (void)queuedir_sweep(qd->prefix);
  }
  /* Data may already be spooled (QMQP/QMTP): keep it across the reset. */
  int spool = qd->spool, failed = qd->failed;
  qd->spool = -1;
  queuedir_reset(qd);
  qd->spool = spool;
  qd->failed = failed;
  const char* top = var(qd->prefix, "", 0);
  if (!top) return &resp_qd_noconfig;
  const char* tmpdir = var(qd->prefix, "_TMP", "tmp");
  const char* destdir = var(qd->prefix, "_DEST", "new");
  qd->nosync = var(qd->prefix, "_NOSYNC", 0) != 0;
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

/* iotrace.c -- an LD_PRELOAD library for the durability tests: it records
 * the calls that make a message durable and can kill or fail the process
 * at a chosen one.
 *
 * Traced calls (one line each in $IOTRACE_LOG, appended with O_APPEND):
 *   open PATH (when O_CREAT), write FD PATH N (regular files), reply TEXT
 *   (a write to fd 1: its lines joined by '|'), fsync PATH, link A B,
 *   rename A B, unlink PATH, fork.
 * $IOTRACE_KILL_AT=N: SIGKILL the process at the N-th traced call, before
 *   performing it ($IOTRACE_KILL_AFTER=1: just after it).
 * $IOTRACE_FAIL=CALL:N:ERRNO makes the N-th traced call of kind CALL (write
 *   to a file, reply, fsync, link, rename, unlink, open, fork) and every
 *   later one of that kind fail with ERRNO.
 * Paths come from /proc/self/fd for descriptors.  Nothing here allocates
 * after start-up; the log file is opened lazily with the real open(). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

typedef int (*open_fn)(const char*, int, ...);
typedef int (*fd_fn)(int);
typedef int (*path2_fn)(const char*, const char*);
typedef int (*path_fn)(const char*);
typedef pid_t (*fork_fn)(void);

static int logfd = -2;
static long counter, kill_at = -1;
static int kill_after;
static char fail_kind[16];
static long fail_at, fail_count;
static int fail_errno;

static ssize_t (*real_write)(int, const void*, size_t);

static void setup(void)
{
  if (logfd != -2) return;
  real_write = (ssize_t (*)(int, const void*, size_t))dlsym(RTLD_NEXT, "write");
  const char* p = getenv("IOTRACE_LOG");
  open_fn real_open = (open_fn)dlsym(RTLD_NEXT, "open");
  logfd = p ? real_open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644) : -1;
  const char* k = getenv("IOTRACE_KILL_AT");
  if (k) kill_at = atol(k);
  kill_after = getenv("IOTRACE_KILL_AFTER") != 0;
  const char* f = getenv("IOTRACE_FAIL");
  if (f && sscanf(f, "%15[a-z]:%ld:%d", fail_kind, &fail_at, &fail_errno) != 3) fail_kind[0] = 0;
}

static void fd_path(int fd, char* out, size_t n)
{
  char link[64];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t r = readlink(link, out, n - 1);
  out[r > 0 ? r : 0] = 0;
}

static void note(const char* fmt, ...)
{
  if (logfd < 0) return;
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if (n > (int)sizeof line - 2) n = (int)sizeof line - 2;
  line[n++] = '\n';
  real_write(logfd, line, (size_t)n);
}

/* Before a traced call: count it, maybe kill; returns -1 (errno set)
 * when the call must fail instead of running. */
static int before(const char* kind)
{
  setup();
  counter++;
  if (kill_at == counter && !kill_after) { note("killed before %s", kind); kill(getpid(), SIGKILL); }
  if (fail_kind[0] && strcmp(kind, fail_kind) == 0 && ++fail_count >= fail_at) {
    note("failing %s", kind);
    errno = fail_errno;
    return -1;
  }
  return 0;
}

static void after(const char* kind)
{
  if (kill_at == counter && kill_after) { note("killed after %s", kind); kill(getpid(), SIGKILL); }
}

#define REAL(name, type) static type real_##name; if (!real_##name) real_##name = (type)dlsym(RTLD_NEXT, #name)

int open(const char* path, int flags, ...)
{
  REAL(open, open_fn);
  mode_t mode = 0;
  if (flags & O_CREAT) { va_list ap; va_start(ap, flags); mode = (mode_t)va_arg(ap, int); va_end(ap); }
  if (!(flags & O_CREAT)) return real_open(path, flags, mode);
  if (before("open") < 0) return -1;
  int r = real_open(path, flags, mode);
  note("open %s", path);
  after("open");
  return r;
}

int open64(const char* path, int flags, ...) __attribute__((alias("open")));

ssize_t write(int fd, const void* buf, size_t len)
{
  setup();
  struct stat st;
  int traced = fd == 1 || (fd > 2 && fd != logfd && fstat(fd, &st) == 0 && S_ISREG(st.st_mode));
  if (!traced) return real_write(fd, buf, len);
  if (before(fd == 1 ? "reply" : "write") < 0) return -1;
  ssize_t r = real_write(fd, buf, len);
  if (fd == 1) {
    char text[900];
    size_t n = 0;
    for (size_t i = 0; i < len && n < sizeof text - 1; i++) {
      char c = ((const char*)buf)[i];
      if (c == '\r') continue;
      text[n++] = c == '\n' ? '|' : c;
    }
    text[n] = 0;
    note("reply %s", text);
  } else {
    char p[512];
    fd_path(fd, p, sizeof p);
    note("write %d %s %zd", fd, p, r);
  }
  after(fd == 1 ? "reply" : "write");
  return r;
}

int fsync(int fd)
{
  REAL(fsync, fd_fn);
  if (before("fsync") < 0) return -1;
  char p[512];
  fd_path(fd, p, sizeof p);
  int r = real_fsync(fd);
  note("fsync %s", p);
  after("fsync");
  return r;
}

int link(const char* a, const char* b)
{
  REAL(link, path2_fn);
  if (before("link") < 0) return -1;
  int r = real_link(a, b);
  note("link %s %s", a, b);
  after("link");
  return r;
}

int rename(const char* a, const char* b)
{
  REAL(rename, path2_fn);
  if (before("rename") < 0) return -1;
  int r = real_rename(a, b);
  note("rename %s %s", a, b);
  after("rename");
  return r;
}

int unlink(const char* p)
{
  REAL(unlink, path_fn);
  if (before("unlink") < 0) return -1;
  int r = real_unlink(p);
  note("unlink %s", p);
  after("unlink");
  return r;
}

pid_t fork(void)
{
  REAL(fork, fork_fn);
  if (before("fork") < 0) return -1;
  pid_t r = real_fork();
  if (r != 0) { note("fork"); after("fork"); }
  else kill_at = -1;            /* only the front end is killed */
  return r;
}

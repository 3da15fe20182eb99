/* confcheck.c -- see confcheck.h. */
#include "lib/confcheck.h"
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char* confcheck_env(const struct confcheck* c, const char* name)
{
  return c->getenv_fn ? c->getenv_fn(name) : getenv(name);
}

void confcheck_problem(struct confcheck* c, const char* what, const char* detail)
{
  c->problems++;
  fprintf(stderr, "%s: %s%s%s\n", c->who, what, detail ? ": " : "", detail ? detail : "");
}

/* One problem about a file: "WHO: LABEL PATH: REASON". */
static int bad_path(struct confcheck* c, const char* label, const char* path, const char* reason)
{
  c->problems++;
  fprintf(stderr, "%s: %s %s: %s\n", c->who, label, path, reason);
  return -1;
}

/* stat PATH and report the system's reason when that fails. */
static int stat_or_report(struct confcheck* c, const char* label, const char* path, struct stat* st)
{
  if (stat(path, st) == 0) return 0;
  return bad_path(c, label, path, strerror(errno));
}

int confcheck_dir(struct confcheck* c, const char* what, const char* path, int writable)
{
  struct stat st;
  if (stat_or_report(c, what, path, &st) < 0) return -1;
  if (!S_ISDIR(st.st_mode)) return bad_path(c, what, path, "not a directory");
  if (access(path, writable ? (W_OK | X_OK) : X_OK) != 0) return bad_path(c, what, path, strerror(errno));
  return 0;
}

int confcheck_file(struct confcheck* c, const char* what, const char* path)
{
  struct stat st;
  if (stat_or_report(c, what, path, &st) < 0) return -1;
  if (!S_ISREG(st.st_mode)) return bad_path(c, what, path, "not a regular file");
  FILE* f = fopen(path, "re");
  if (!f) return bad_path(c, what, path, strerror(errno));
  fclose(f);
  return 0;
}

int confcheck_socket(struct confcheck* c, const char* what, const char* path)
{
  struct stat st;
  if (stat_or_report(c, what, path, &st) < 0) return -1;
  if (!S_ISSOCK(st.st_mode)) return bad_path(c, what, path, "not a socket");
  if (access(path, W_OK) != 0) return bad_path(c, what, path, strerror(errno));
  return 0;
}

/* DIR/NAME (DIR NULL: NAME) is an executable regular file: 0, else errno. */
static int executable_at(const char* dir, size_t dirlen, const char* name)
{
  size_t nl = strlen(name);
  char* path = malloc(dirlen + nl + 2);
  if (!path) return ENOMEM;
  size_t n = 0;
  if (dir) { memcpy(path, dir, dirlen); path[dirlen] = '/'; n = dirlen + 1; }
  memcpy(path + n, name, nl + 1);
  struct stat st;
  int err = 0;
  if (stat(path, &st) != 0) err = errno;
  else if (!S_ISREG(st.st_mode)) err = EACCES;
  else if (access(path, X_OK) != 0) err = errno;
  free(path);
  return err;
}

int confcheck_program(struct confcheck* c, const char* what, const char* prog, const char* base, int search)
{
  int err;
  if (!prog || !*prog) { confcheck_problem(c, what, "no program named"); return -1; }
  if (!search || strchr(prog, '/'))
    err = executable_at(prog[0] == '/' || !base ? 0 : base, base ? strlen(base) : 0, prog);
  else {
    /* execvp's search: each element of $PATH (empty = the working directory) */
    const char* path = getenv("PATH");
    if (!path) path = "/usr/local/bin:/usr/bin:/bin";
    err = ENOENT;
    for (const char* p = path; err; p++) {
      const char* end = strchr(p, ':');
      size_t len = end ? (size_t)(end - p) : strlen(p);
      int e = len ? executable_at(p, len, prog) : executable_at(0, 0, prog);
      if (!e) err = 0;
      else if (e != ENOENT && e != ENOTDIR) err = e;
      if (!end) break;
      p = end;
    }
    if (err == ENOENT) return bad_path(c, what, prog, "not found on $PATH");
  }
  if (!err) return 0;
  return bad_path(c, what, prog, err == EACCES ? "not an executable file" : strerror(err));
}

/* 1..65535, digits only. */
static int good_port(const char* p, size_t n)
{
  unsigned long v = 0;
  if (n == 0 || n > 5) return 0;
  for (size_t i = 0; i < n; i++) {
    if (p[i] < '0' || p[i] > '9') return 0;
    v = v * 10 + (unsigned long)(p[i] - '0');
  }
  return v >= 1 && v <= 65535;
}

const char* confcheck_hostport(const char* tok, size_t n, int need_port)
{
  const char* port = 0;
  size_t hostlen;
  if (n && tok[0] == '[') {
    const char* e = memchr(tok, ']', n);
    if (!e) return "no ']' after the address";
    hostlen = (size_t)(e - tok - 1);
    if ((size_t)(e + 1 - tok) < n) {
      if (e[1] != ':') return "text after ']' that is no :port";
      port = e + 2;
    }
  } else {
    const char* colon = need_port ? 0 : memchr(tok, ':', n);
    if (need_port)   /* HOST:PORT where HOST may be an IPv6 address: the last colon */
      for (size_t i = n; i > 0 && !colon; i--) if (tok[i - 1] == ':') colon = tok + i - 1;
    hostlen = colon ? (size_t)(colon - tok) : n;
    if (colon) port = colon + 1;
  }
  if (hostlen == 0) return "empty host";
  if (hostlen > 255) return "host name longer than 255 bytes";
  if (!port && need_port) return "no :port";
  if (port && !good_port(port, n - (size_t)(port - tok))) return "bad port (1 to 65535)";
  return 0;
}

/* Blanks, then at least one digit, nothing after them, no overflow. */
static int decimal(const char* v)
{
  while (*v == ' ' || *v == '\t') v++;
  if (*v < '0' || *v > '9') return 0;
  unsigned long n = 0;
  for (; *v >= '0' && *v <= '9'; v++) {
    unsigned d = (unsigned)(*v - '0');
    if (n > (ULONG_MAX - d) / 10) return 0;
    n = n * 10 + d;
  }
  return *v == 0;
}

unsigned confcheck_numbers(struct confcheck* c, const char* const* names)
{
  unsigned found = 0;
  for (; *names; names++) {
    const char* v = confcheck_env(c, *names);
    if (!v || !*v || decimal(v)) continue;
    c->problems++;
    fprintf(stderr, "%s: $%s '%s': not a decimal number\n", c->who, *names, v);
    found++;
  }
  return found;
}

int confcheck_verdict(const struct confcheck* c)
{
  if (c->problems) fprintf(stderr, "%s: %u problem%s found\n", c->who, c->problems, c->problems == 1 ? "" : "s");
  else fprintf(stderr, "%s: configuration OK\n", c->who);
  return c->problems ? 1 : 0;
}

/* main.c -- `mailfrontd [OPTIONS] HOST PORT PROTOCOL BACKEND [PLUGINS...]`:
 * the built-in listener.  It binds HOST:PORT (or takes systemd's
 * sockets), drops privileges, loads the modules and the rules once, tells
 * systemd it is ready, and runs each connection's mailfront session in a
 * forked process, which may serve more connections of the same client
 * (-n; see server.c and child.c; docs/mailfrontd.md).
 *
 * Exit status: 0 after SIGTERM and the drain, 100 usage, 111 start-up
 * failure (one `mailfrontd[PID]: Fatal: ...` line).  This is the only
 * place that exits. */
#include "daemon/daemon.h"
#include "daemon/notify.h"
#include "daemon/rdns.h"
#include "core/mf.h"
#include "lib/log.h"
#include "tls/tls.h"
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXIT_USAGE 100
#define EXIT_FAIL 111

static const char usage[] =
  "usage: mailfrontd [-1qvRHh] [-t SECONDS] [-c N] [-C N] [-4 BITS] [-6 BITS] [-x RULES.cdb [-X]]\n"
  "                  [-u UID] [-g GID] [-U] [-l LOCALNAME] [-b BACKLOG] [-p v1|v2|any]\n"
  "                  [-W MS] [-G SECONDS] [-n SESSIONS] [-w SECONDS] HOST PORT PROTOCOL BACKEND [PLUGINS...]";

static int number(const char* s, unsigned long min, unsigned long max, unsigned long* out)
{
  char* end;
  if (!s || *s < '0' || *s > '9') return -1;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (*end || errno || v < min || v > max) return -1;
  *out = v;
  return 0;
}

static int fatal(const char* a, const char* b)
{
  log_parts(LOG_FATAL, a, b ? ": " : 0, b, 0);
  return EXIT_FAIL;
}

/* One option letter; -1 on a bad argument. */
static int option(struct options* o, int c, const char* arg)
{
  unsigned long v;
  switch (c) {
  case 'c': return number(arg, 1, 100000, &o->maxconn);
  case 'C': return number(arg, 0, 100000, &o->maxper);
  case '4': return number(arg, 0, 32, &o->v4bits);
  case '6': return number(arg, 0, 128, &o->v6bits);
  case 'x': o->rules = arg; return 0;
  case 'X': o->rules_optional = 1; return 0;
  case 'u': if (number(arg, 0, (uid_t)-2, &v) < 0) return -1; o->uid = (uid_t)v; o->set_uid = 1; return 0;
  case 'g': if (number(arg, 0, (gid_t)-2, &v) < 0) return -1; o->gid = (gid_t)v; o->set_gid = 1; return 0;
  case 'U':
    if (option(o, 'u', getenv("UID")) < 0 || option(o, 'g', getenv("GID")) < 0) return -1;
    return 0;
  case 'l': o->localname = arg; return 0;
  case 'H': o->lookup = 0; return 0;
  case 'h': o->lookup = 1; return 0;
  case 't': return number(arg, 1, 3600, &o->dns_s);
  case 'R': return 0;             /* no ident lookups: always the case */
  case 'q': o->verbose = 0; return 0;
  case 'v': o->verbose = 2; return 0;
  case '1': o->print_port = 1; return 0;
  case 'b': if (number(arg, 1, 65535, &o->backlog) < 0) return -1; return 0;
  case 'p': return (o->proxy = proxy_versions(arg)) ? 0 : -1;
  case 'W': return number(arg, 1, 3600000, &o->proxy_ms);
  case 'G': return number(arg, 0, 86400, &o->grace_s);
  case 'n': return number(arg, 1, 1000000, &o->reuse);
  case 'w': return number(arg, 1, 86400, &o->idle_s);
  }
  return -1;
}

static int drop_privileges(const struct options* o)
{
  if (o->set_gid && (setgroups(0, 0) < 0 || setgid(o->gid) < 0)) return -1;
  if (o->set_uid && setuid(o->uid) < 0) return -1;
  return 0;
}

/* Every library symbol bound once, here, instead of lazily in every
 * child: a lazy binding writes the GOT page and reads the symbol tables
 * of the libraries, which costs each child several page faults (copies
 * of the parent's pages after fork).  libc and libcdb are not linked
 * with -z now and dlopen(RTLD_NOW) does not rebind them, so mailfrontd
 * executes itself once more with $LD_BIND_NOW set to a mark, and removes
 * the mark at once (sessions and the programs they run never see it).
 * When $LD_BIND_NOW is already set, or /proc/self/exe cannot be executed
 * (no /proc in a chroot), mailfrontd runs as it is. */
#define BIND_MARK "mailfrontd"
static void bind_now(char** argv)
{
  const char* v = getenv("LD_BIND_NOW");
  if (v && strcmp(v, BIND_MARK) == 0) { unsetenv("LD_BIND_NOW"); return; }
  if (v && *v) return;
  /* the program's own path, not /proc/self/exe: the process name (ps,
   * pkill, systemd's logs) is the file name executed */
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0 || (size_t)n >= sizeof self - 1) return;
  self[n] = 0;
  if (setenv("LD_BIND_NOW", BIND_MARK, 1) == 0) execv(self, argv);
  unsetenv("LD_BIND_NOW");
}

/* fds 0-2 open, so that no accepted connection lands on them. */
static void fill_std_fds(void)
{
  for (int fd = 0; fd < 3; fd++)
    if (fcntl(fd, F_GETFD) < 0) {
      int n = open("/dev/null", O_RDWR);
      if (n > 2) close(n);
    }
}

int main(int argc, char** argv)
{
  struct options o = {
    .maxconn = 40, .v4bits = 32, .v6bits = 64, .lookup = 0, .dns_s = 2, .verbose = 1,
    .proxy_ms = 5000, .grace_s = 30, .backlog = 128, .reuse = 100, .idle_s = 30,
  };
  bind_now(argv);
  /* Room at the top of the heap for the children's first allocations:
   * without it each child grows the heap (brk and the arena's
   * bookkeeping pages); untouched room costs the parent nothing. */
  mallopt(M_TOP_PAD, 1 << 20);
  log_program("mailfrontd");
  fill_std_fds();
  int c;
  while ((c = getopt(argc, argv, "+1qvRHhXUc:C:4:6:x:u:g:l:b:p:W:G:t:n:w:")) != -1)
    if (c == '?' || option(&o, c, optarg) < 0) {
      if (c != '?') fprintf(stderr, "mailfrontd: bad argument to -%c: %s\n", c, optarg ? optarg : "");
      fprintf(stderr, "%s\n", usage);
      return EXIT_USAGE;
    }
  if (argc - optind < 4) {
    fprintf(stderr, "%s\n", usage);
    return EXIT_USAGE;
  }
  o.host = argv[optind];
  o.port = argv[optind + 1];
  o.modargv = argv + optind + 2;
  o.modargc = argc - optind - 2;

  struct server s;
  str err = {0, 0, 0};
  int inherited = listen_inherit(&s.ls, &err);
  if (inherited < 0) return fatal(err.s, 0);
  if (!inherited && listen_open(&s.ls, o.host, o.port, (int)o.backlog, &err) < 0)
    return fatal(err.s, 0);
  if (drop_privileges(&o) < 0) return fatal("cannot drop privileges", strerror(errno));

  const response* r = 0;
  struct mf_config* cfg = mf_load(o.modargc, o.modargv, NULL, &r);
  if (!cfg) {
    int failed = fatal(r && r->message ? r->message : "cannot load the modules", 0);
    mf_error_free(r);
    return failed;
  }
  if (o.localname) {
    size_t n = strlen(o.localname);
    if (!(o.localenv = malloc(sizeof "TCPLOCALHOST=" + n))) return fatal("out of memory", 0);
    memcpy(o.localenv, "TCPLOCALHOST=", sizeof "TCPLOCALHOST=" - 1);
    memcpy(o.localenv + sizeof "TCPLOCALHOST=" - 1, o.localname, n + 1);
  }
  struct listeners ls = s.ls;
  if (server_init(&s, &o, cfg, &err) < 0) return fatal(err.s, 0);
  s.ls = ls;
  const char* who = 0;
  s.reuse = o.reuse > 1 && mf_reusable(cfg, &who);
  if (o.reuse > 1 && !s.reuse)
    log_fmt(LOG_WARN, "one process per connection: module %s is not version 4 (not safe for -n %lu)", who, o.reuse);
  if (o.lookup && rdns_configure(&s.dns, o.dns_s, &err) < 0) return fatal(err.s, 0);
  if (server_load_rules(&s, &err) < 0) {
    if (!o.rules_optional) return fatal(err.s, 0);
    log_fmt(LOG_WARN, "%s (allowed without rules: -X)", err.s);
  }
  /* TLS credentials once, shared by the children; if they do not load,
   * each session tries (and logs) as under tcpserver. */
  if (tls_preload(NULL, &err) < 0) log_fmt(LOG_WARN, "%s", err.s);
  if (o.print_port) {
    printf("%u\n", listen_port(&s.ls));
    fflush(stdout);
  }
  if (o.verbose)
    log_fmt(0, "ready listeners=%u%s limit=%lu per_client=%lu sessions_per_process=%lu protocol=%s backend=%s",
            s.ls.n, inherited ? " (socket activation)" : "", o.maxconn, o.maxper, s.reuse ? o.reuse : 1,
            o.modargv[0], o.modargv[1]);
  notify_send("READY=1");
  int status = server_run(&s);
  tcprules_close(&s.rules);
  mf_free(cfg);
  free(o.localenv);
  str_free(&err);
  return status;
}

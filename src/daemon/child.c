/* child.c -- one connection in the child forked by the parent: leave the
 * parent's world (signal handlers, listening sockets, other pending
 * connections), set the variables tcpserver sets, apply the tcprules,
 * run the session, _exit with its status.
 *
 * Variables (setenv: third-party plugins read getenv()): PROTO=TCP,
 * TCPLOCALIP, TCPLOCALPORT, TCPLOCALHOST (-l, else DNS unless -H, else
 * unset), TCPREMOTEIP, TCPREMOTEPORT, TCPREMOTEHOST (DNS unless -H, unset
 * when it does not resolve), TCPREMOTEINFO unset (no ident, as -R); then
 * those of the matching tcprules rule.  With PROXY the remote (and local)
 * address are those of the header.
 *
 * A rule that denies ends the connection at once (log line `deny`, exit
 * status 100); an unreadable rules file does the same unless -X, as
 * tcpserver.  The session's stderr is the parent's: its lines are the
 * original `mailfront[PID]:` lines.  The client is on fds 0 and 1 (not
 * close-on-exec), exactly as tcpserver hands it to mailfront. */
#include "daemon/daemon.h"
#include "core/mf.h"
#include "lib/log.h"
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXIT_DENIED 100
#define EXIT_TEMP 111

static int set_var(void* ctx, const char* name, size_t nlen, const char* value)
{
  (void)ctx;
  char* n = strndup(name, nlen);
  if (!n) return -1;
  int r = value ? setenv(n, value, 1) : unsetenv(n);
  free(n);
  return r;
}

static const char* lookup(const struct sockaddr_storage* ss, char* host, size_t hostlen)
{
  socklen_t len = ss->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
  if (getnameinfo((const struct sockaddr*)ss, len, host, (socklen_t)hostlen, 0, 0, NI_NAMEREQD) != 0)
    return 0;
  return host;
}

static int set_ucspi(struct server* s, struct conn* c, const char** remotehost)
{
  char lip[ADDR_IP_MAX], rip[ADDR_IP_MAX], lport[8], rport[8];
  static char rhost[NI_MAXHOST], lhost[NI_MAXHOST];
  addr_ip(&c->server, lip);
  addr_ip(&c->client, rip);
  snprintf(lport, sizeof lport, "%u", addr_port(&c->server));
  snprintf(rport, sizeof rport, "%u", addr_port(&c->client));
  const char* localhost = s->o->localname;
  if (!localhost && s->o->lookup) localhost = lookup(&c->server, lhost, sizeof lhost);
  *remotehost = s->o->lookup ? lookup(&c->client, rhost, sizeof rhost) : 0;
  if (setenv("PROTO", "TCP", 1) < 0 || setenv("TCPLOCALIP", lip, 1) < 0
      || setenv("TCPLOCALPORT", lport, 1) < 0 || setenv("TCPREMOTEIP", rip, 1) < 0
      || setenv("TCPREMOTEPORT", rport, 1) < 0)
    return -1;
  if (localhost ? setenv("TCPLOCALHOST", localhost, 1) : unsetenv("TCPLOCALHOST")) return -1;
  if (*remotehost ? setenv("TCPREMOTEHOST", *remotehost, 1) : unsetenv("TCPREMOTEHOST")) return -1;
  return unsetenv("TCPREMOTEINFO");
}

/* 0 allowed, EXIT_DENIED, or EXIT_TEMP. */
static int apply_rules(struct server* s, struct conn* c, const char* host)
{
  if (!s->o->rules) return 0;
  char ip[ADDR_IP_MAX];
  addr_ip(&c->client, ip);
  if (s->rules.fd < 0) {
    if (s->o->rules_optional) return 0;
    log_fmt(LOG_WARN, "deny id=%llu ip=%s reason=\"rules file unreadable: %s\"", c->id, ip, s->o->rules);
    return EXIT_DENIED;
  }
  const char* data;
  size_t len;
  int r = tcprules_find(&s->rules, ip, host, &data, &len);
  if (r < 0) {
    log_fmt(LOG_ERR, "rules id=%llu ip=%s error=\"cannot read %s\"", c->id, ip, s->o->rules);
    return s->o->rules_optional ? 0 : EXIT_TEMP;
  }
  if (r == 0) return 0;
  int v = tcprules_apply(data, len, set_var, 0);
  if (v < 0) return EXIT_TEMP;
  if (v == TCPRULES_DENY) {
    if (s->o->verbose) log_fmt(0, "deny id=%llu ip=%s reason=tcprules", c->id, ip);
    return EXIT_DENIED;
  }
  return 0;
}

void child_run(struct server* s, struct conn* c)
{
  static const int sigs[] = { SIGCHLD, SIGHUP, SIGTERM, SIGINT };
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) signal(sigs[i], SIG_DFL);
  signal(SIGPIPE, SIG_IGN);   /* as mailfront's main: write errors are values */
  listen_close(&s->ls);
  close(s->sigpipe[0]);
  close(s->sigpipe[1]);
  for (size_t i = 0; i < s->npend; i++)
    if (s->pend[i].fd != c->fd) close(s->pend[i].fd);
  /* the client on fds 0 and 1 as under tcpserver: third-party plugins
   * and programs they run may use them directly */
  if (dup2(c->fd, 0) < 0 || dup2(c->fd, 1) < 0) _exit(EXIT_TEMP);
  if (c->fd > 1) close(c->fd);
  const char* host = 0;
  if (set_ucspi(s, c, &host) < 0) {
    log_fmt(LOG_ERR, "id=%llu out of memory", c->id);
    _exit(EXIT_TEMP);
  }
  int r = apply_rules(s, c, host);
  if (r) _exit(r);
  log_program("mailfront");
  _exit(mf_session(s->cfg, 0, 1, NULL));
}

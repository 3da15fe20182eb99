/* daemon.h -- mailfrontd's state, shared by its files:
 *   main.c    options (struct options), start-up, privilege drop
 *   server.c  the parent's event loop: accept, PROXY headers, limits,
 *             fork, reaping, signals, reload, drain (struct server)
 *   child.c   the session process forked by the parent: UCSPI variables,
 *             tcprules, then mf_session, for one connection or (-n) for
 *             several connections of one client, one after another
 *   handoff.c the channel that hands a process its next connection
 * The parent owns everything here; a child inherits a copy (fork) and
 * only reads it.  Nothing below main() exits the parent; a child ends
 * with _exit(status) in child_run. */
#ifndef MF_DAEMON_H
#define MF_DAEMON_H
#include "daemon/addr.h"
#include "daemon/listen.h"
#include "daemon/proxy.h"
#include "daemon/tcprules.h"
#include "plugins/rbl/dnstxt.h"
#include <poll.h>
#include <signal.h>
#include <sys/types.h>

struct mf_config;

struct options
{
  const char* host;
  const char* port;
  int modargc;                  /* PROTOCOL BACKEND [PLUGINS...] */
  char** modargv;
  unsigned long maxconn;        /* -c, default 40 */
  unsigned long maxper;         /* -C, 0 = no per-client limit */
  unsigned long v4bits, v6bits; /* -4/-6: prefix -C counts by (32, 64) */
  const char* rules;            /* -x */
  int rules_optional;           /* -X */
  int set_uid, set_gid;
  uid_t uid;
  gid_t gid;
  const char* localname;        /* -l */
  char* localenv;               /* "TCPLOCALHOST=" -l, made once in main */
  int lookup;                   /* -h (default -H): TCPREMOTEHOST/TCPLOCALHOST from DNS */
  unsigned long dns_s;          /* -t: deadline of those lookups, seconds */
  int verbose;                  /* 0 -q, 1 default (connection lines), 2 -v */
  unsigned proxy;               /* -p: PROXY_ACCEPT_* or 0 */
  unsigned long proxy_ms;       /* -W: deadline for the PROXY header */
  unsigned long grace_s;        /* -G: SIGTERM grace period */
  unsigned long backlog;        /* -b */
  unsigned long reuse;          /* -n: sessions per process (1 = a process per connection) */
  unsigned long idle_s;         /* -w: how long a process waits for its client's next connection */
  int print_port;               /* -1 */
};

/* A connection between accept and fork (or refusal). */
struct conn
{
  int fd;
  unsigned long long id;
  struct sockaddr_storage local, remote;   /* as the socket says */
  struct sockaddr_storage client, server;  /* after PROXY (= local/remote without) */
  int proxied;                             /* a PROXY header gave client/server */
  long long deadline_ms;                   /* for the PROXY header */
  size_t drain;                            /* header bytes still to consume */
};

struct child
{
  pid_t pid;
  unsigned long long id;
  struct addr_key key;
  char ip[ADDR_IP_MAX];
  unsigned port;
  char via[ADDR_IP_MAX];                   /* the proxy's address, or "" */
  long long start_ms;
  /* with -n > 1 */
  int chan;                                /* the parent's end of the channel, or -1 */
  int busy;                                /* running a session (the fields above are its) */
  unsigned gen;                            /* s->gen when forked: older ones are not reused */
  long long idle_since_ms;
};

struct server
{
  struct options* o;
  struct mf_config* cfg;
  struct tcprules rules;                   /* fd -1 when none */
  struct dnstxt_conf dns;                  /* -h lookups */
  struct listeners ls;
  int sigfd;                               /* signalfd of the blocked signals */
  sigset_t sigmask;                        /* the mask before: the children's */
  struct child* kids;                      /* parent-only memory (not forked) */
  size_t nkids;                            /* processes: busy and idle */
  size_t nbusy;                            /* sessions running */
  int* chans;                              /* kids[i].chan, in memory the children see:
                                              a new process closes the others' channels */
  struct pollfd* scratch;                  /* parent-only: maxconn entries */
  int reuse;                               /* -n > 1 and every module allows it (mf_reusable) */
  unsigned gen;                            /* bumped by each reload */
  struct conn* pend;                       /* waiting for a PROXY header */
  size_t npend;
  unsigned long long next_id;
  int stopping;
  long long stop_at_ms, kill_at_ms;
  long long pause_until_ms;                /* accept paused (EMFILE) */
};

int server_init(struct server* s, struct options* o, struct mf_config* cfg, str* err);
/* Runs until SIGTERM/SIGINT and the drain end.  Returns the exit status. */
int server_run(struct server* s);
/* (Re)open the -x rules into s->rules; on failure keep the old ones. */
int server_load_rules(struct server* s, str* err);

/* In the child after fork: never returns.  chan: the process's end of its
 * channel (handoff.h) when it may serve more connections, else -1. */
void child_run(struct server* s, struct conn* c, int chan) __attribute__((noreturn));

#endif

/* listen.h -- the listening sockets of mailfrontd: bound from HOST PORT
 * (every address HOST resolves to; "0" is any IPv4 address as for
 * tcpserver, "::" any IPv6 address and, dual-stack, IPv4 too), or
 * inherited from systemd socket activation ($LISTEN_PID = our pid,
 * $LISTEN_FDS sockets from fd 3 on; the variables are removed so that
 * sessions do not see them).  Sockets are non-blocking and close-on-exec.
 * Errors are values: -1 and the reason in *err (one log line); nothing
 * here logs or exits. */
#ifndef MF_DAEMON_LISTEN_H
#define MF_DAEMON_LISTEN_H
#include <mailfront/str.h>

struct listeners { int fd[64]; unsigned n; };

/* 1 when sockets were inherited, 0 when $LISTEN_FDS is not for us, -1. */
int listen_inherit(struct listeners* l, str* err);
int listen_open(struct listeners* l, const char* host, const char* port, int backlog, str* err);
void listen_close(struct listeners* l);
/* The local port of the first socket (for -1), 0 when unknown. */
unsigned listen_port(const struct listeners* l);
#endif

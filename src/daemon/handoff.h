/* handoff.h -- the channel between mailfrontd's parent and a session
 * process that serves several sessions one after another (-n): a
 * SOCK_SEQPACKET socket pair, one message per event.
 *   parent -> process: a job (the connection's id and addresses) with the
 *                      connection's fd attached (SCM_RIGHTS);
 *   process -> parent: the exit status of the session it just ran, when it
 *                      is ready for the next job.
 * End of file on the channel tells the process to exit.  Errors are
 * values; nothing here logs. */
#ifndef MF_DAEMON_HANDOFF_H
#define MF_DAEMON_HANDOFF_H
#include <sys/socket.h>

struct job
{
  unsigned long long id;
  struct sockaddr_storage local, client, server;
  int proxied;
};

/* 0, or -1 with errno (the process is gone: EPIPE, ECONNRESET). */
int handoff_send(int chan, const struct job* j, int fd);
/* 1 and *fd set, 0 at end of file, -1 with errno. */
int handoff_recv(int chan, struct job* j, int* fd);
/* The process's report: 0 (or -1 with errno). */
int handoff_done(int chan, int status);
/* 1 and *status, 0 at end of file (the process exited), -1 (EAGAIN: none yet). */
int handoff_status(int chan, int* status);
#endif

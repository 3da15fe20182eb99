/* tlsrelay.h -- keep a TLS session across the exec of a plain-text server.
 *
 * Used by pop3front-auth (STLS) and imapfront-auth (STARTTLS); documented
 * in docs/tls.md "POP3 and IMAP".  TLS state (src/tls/tls.h) lives in the
 * process memory and cannot survive exec(2).  After a login inside TLS the
 * program therefore splits in two:
 *
 *   int sock; pid_t pid; str err = {0, 0, 0};
 *   int r = tlsrelay_fork(&in, &out, &sock, &pid, &err);
 *   r == -1: nothing forked (fork, socketpair... failed); err holds the
 *          log line; the streams are unchanged.
 *   r == TLSRELAY_CHILD_FAILED (-2): in the child, its descriptors could
 *          not be set up; err holds the log line; the child must not touch
 *          the struct tls and ends (the parent sees EOF).
 *   r == 0 (child): fd 0 and fd 1 are one end of a socketpair; `in`/`out`
 *          are plain streams on fd 0/1 (TLS transport detached, buffered
 *          input dropped: the parent forwards it); go on with the normal
 *          exec path.  The child must never touch the struct tls (no
 *          tls_close/tls_free: the session belongs to the parent).
 *   r == 1 (parent): call tlsrelay_run(), which returns the exit status.
 *
 * tlsrelay_run() relays bytes between the client streams (TLS transport
 * installed) and `sock` with poll(2) until the server side closes, the
 * client side fails, or nothing moved for idle_ms (0 = no idle limit) or
 * the session deadline *in->deadline_ms passed.  Client input already
 * buffered in `in` (commands pipelined after the login) goes to the server
 * first.  Client EOF half-closes the socket (the server sees EOF and
 * finishes its output).  At the end it sends the TLS close alert when the
 * client is still writable (tls_close), closes `sock`, waits for the child
 * (at most idle_ms, else 10 s, then SIGKILL) and returns the child's exit
 * status (128 + signal number when it was killed by a signal).  Events
 * worth a log line (idle timeout, client I/O errors) go to *err (err->len
 * 0 = nothing to log).  Writes to the server never block (non-blocking
 * socket, at most one input buffer in flight), so a server busy writing
 * cannot deadlock against a client busy writing.  Nothing here exits. */
#ifndef MF_TLSRELAY_H
#define MF_TLSRELAY_H

#include "tls/tls.h"
#include <mailfront/iobuf.h>
#include <mailfront/str.h>
#include <sys/types.h>

#define TLSRELAY_CHILD_FAILED (-2)

/* For the relay process (the parent of a login inside TLS): switch to the
 * user's uid/gid with the user's group as the only supplementary group and
 * make the process non-dumpable, so the user's own processes cannot read
 * the TLS keys out of it.  0 ok, -1 (errno). */
int tlsrelay_drop_privileges(unsigned long uid, unsigned long gid);

/* The whole second stage behind the relay, for pop3front-auth and
 * imapfront-auth: drop to uid/gid (tlsrelay_drop_privileges), fork
 * (tlsrelay_fork), and in the parent arm the relay's limits ($TIMEOUT
 * idle, $SESSION_TIMEOUT overall, both in seconds with the defaults and
 * maxima of the programs) and run it.  *tls is cleared in the child.
 * Failures are logged here.  Returns:
 *   TLSRELAY_EXEC      in the child: go on with the exec path;
 *   TLSRELAY_DONE      in the parent: *status is the exit status;
 *   TLSRELAY_NO_USER   the privilege drop failed: reply an internal error;
 *   TLSRELAY_NO_FORK   nothing forked: reply an internal error;
 *   TLSRELAY_CHILD_GONE in a child that could not set up: exit 111, no reply. */
enum tlsrelay_stage { TLSRELAY_EXEC, TLSRELAY_DONE, TLSRELAY_NO_USER, TLSRELAY_NO_FORK, TLSRELAY_CHILD_GONE };
enum tlsrelay_stage tlsrelay_second_stage(struct tls** tls, ibuf* in, obuf* out, long long* deadline_ms,
                                          unsigned long uid, unsigned long gid, int* status);

int tlsrelay_fork(ibuf* in, obuf* out, int* sock, pid_t* pid, str* err);
int tlsrelay_run(struct tls* t, ibuf* in, obuf* out, int sock, pid_t pid, unsigned idle_ms, str* err);

#endif

/* tcprules.h -- tcpserver's access rules: lookup in a cdb built by
 * ucspi-tcp's `tcprules` (existing /etc/tcp.smtp.cdb files work as they
 * are).
 *
 * A struct tcprules is opened once (the file is memory-mapped by tinycdb)
 * and shared read-only by every child forked afterwards; reopening it is
 * the SIGHUP reload (open the new one first, swap on success, so a file
 * that fails keeps the old rules).
 *
 * Lookup order, as tcpserver: the remote IP, "=HOST", the IP cut after
 * each '.' or ':' from the longest ("1.2.3.", "1.2.", "1."), "=.SUFFIX"
 * for each dot of HOST, "=", and finally the empty key.  HOST is used only
 * when known (NULL when not looked up).  The data of a rule is a list of
 * NUL-terminated items: "D" deny, "+NAME=VALUE" set a variable, "+NAME"
 * (not written by tcprules, accepted from other cdb makers) unset it.
 *
 * Errors are values: -1 and a reason in *err (a static string or errno).
 * Nothing here logs or exits. */
#ifndef MF_DAEMON_TCPRULES_H
#define MF_DAEMON_TCPRULES_H
#include <cdb.h>
#include <stddef.h>

struct tcprules
{
  int fd;            /* -1 when closed */
  struct cdb cdb;
};

enum tcprules_verdict { TCPRULES_ALLOW = 0, TCPRULES_DENY = 1 };

/* Open and map PATH.  0, or -1 with errno. */
int tcprules_open(struct tcprules* t, const char* path);
void tcprules_close(struct tcprules* t);

/* The data of the first matching rule: 1 with *data and *len pointing into
 * the map, 0 when no key matches (tcpserver then allows), -1 on a read
 * error or out of memory (errno). */
int tcprules_find(struct tcprules* t, const char* ip, const char* host,
                  const char** data, size_t* len);

/* Walk a rule's items: each variable goes to set(ctx, name, namelen,
 * value or NULL to unset).  Returns TCPRULES_DENY when the rule denies,
 * else TCPRULES_ALLOW, or -1 when set() returned -1. */
int tcprules_apply(const char* data, size_t len,
                   int (*set)(void* ctx, const char* name, size_t namelen, const char* value),
                   void* ctx);

#endif

/* authfront.h -- what the authentication front ends (pop3front-auth,
 * imapfront-auth) share: the session set-up, the CVM deadline, failure
 * counting, the exec of the mailbox server and the TLS hand-off.  Each
 * program keeps its own protocol (commands, replies, SASL framing) and
 * embeds one struct authfront in its session.
 *
 * Life cycle: authfront_open (limits from the environment, the client
 * streams and TLS through authconn_open, the kv log's session start),
 * the program's command loop, then on success authfront_handoff (exec
 * the server, directly or behind the TLS relay), finally authfront_close
 * (the kv log's session end; frees everything).  Replies that depend on
 * the protocol are the program's: authfront hands them to the program's
 * reply function from its text table.  Nothing here exits (but the exec). */
#ifndef MF_AUTHFRONT_H
#define MF_AUTHFRONT_H

#include "auth/cvm.h"
#include "auth/sasl.h"
#include "tls/tls.h"
#include <mailfront/iobuf.h>

#define AUTHFRONT_DEFAULT_MAX_LINE 4096

struct authfront
{
  ibuf in;
  obuf out;
  long long deadline_ms;        /* session deadline (lib/clock.h) */
  struct tls* tls;              /* NULL: TLS not configured */
  struct sasl_config sasl;
  struct cvm_reply reply;       /* facts of the successful login */
  char** program;               /* the mailbox server's argv */
  const char* domain;           /* ${PROTO}LOCALHOST or "unknown" */
  unsigned long max_line;       /* $MAX_LINE_LENGTH (4096) */
  unsigned long max_authfail, authfails;   /* $MAXAUTHFAIL (0: no limit) */
  int auth_requires_tls;        /* $AUTH_REQUIRES_TLS set */
};

/* The protocol's side of the exec step: its reply function and texts, and
 * an optional extra environment step (0 ok, -1 failed). */
struct authfront_ops
{
  void (*reply)(void* ctx, const char* text);
  int (*environment)(void* ctx);
  const char* no_user;          /* could not switch to the user */
  const char* no_env;           /* could not set the environment */
  const char* no_exec;          /* could not execute the server */
  const char* internal;         /* the relay could not start */
};

/* Set up af (zeroed by the caller) for the server program.  0, or -1 when
 * memory is short. */
int authfront_open(struct authfront* af, char** program);
/* The end: flush, close TLS, the kv session_end line with status, free. */
void authfront_close(struct authfront* af, int status);

int authfront_expired(const struct authfront* af);
/* The deadline of one CVM call: $CVM_TIMEOUT cut to what is left of the
 * session, at least 1 ms. */
unsigned authfront_cvm_deadline(const struct authfront* af);
/* Count a failed login; 1 when $MAXAUTHFAIL is reached (end the session). */
int authfront_failed(struct authfront* af);

/* After a successful login (af->reply filled, the CVM variables exported
 * by SASL or not: env_exported): exec the server as the user, inside TLS
 * or with pipelined input behind the relay (tls/tlsrelay.h).  Returns only
 * on failure (in the relay's parent: when the session ended), with the
 * exit status. */
int authfront_handoff(struct authfront* af, int env_exported, const struct authfront_ops* ops, void* ctx);
#endif

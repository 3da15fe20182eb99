/* relay/relay.h -- the state and the functions shared by the relay back
 * ends backend-smtp.so and backend-lmtp.so (docs/relay.md).
 *
 * All state of one relay lives in one struct relay, the back end's
 * per-session context (version-4 session_open/session_close in hooks.c),
 * reached through relay_self().  conn.c owns the downstream
 * connection (connect, greeting, EHLO/LHLO, STARTTLS, AUTH, commands and
 * replies); hooks.c implements the back-end hooks on top of it.
 *
 * Errors are values: conn.c functions return 0 / -1 and leave a reason
 * in r->why (a log text, never a secret); hooks return responses. */
#ifndef MF_RELAY_H
#define MF_RELAY_H

#include <mailfront/mailfront.h>
#include <mailfront/iobuf.h>
#include "backends/relay/wire.h"

struct tls;

enum relay_tls_mode { RT_NONE, RT_MAY, RT_ENCRYPT, RT_VERIFY };
enum relay_state { RS_IDLE, RS_MAIL, RS_DATA };

/* One reply of the next hop: code and text as our reply text. */
struct relay_reply { unsigned code; str text; response resp; };

struct relay
{
  int lmtp;                          /* LHLO, one reply per recipient */
  /* configuration (init) */
  const char* hosts;                 /* $RELAY_HOST */
  const char* sockpath;              /* $RELAY_SOCKET */
  unsigned port;                     /* $RELAY_PORT */
  unsigned timeout_ms;               /* $RELAY_TIMEOUT */
  str helo;                          /* $RELAY_HELO */
  enum relay_tls_mode tls_mode;      /* $RELAY_TLS */
  const char* tls_ca, * tls_name, * tls_pin, * tls_priority;
  const char* auth_user, * auth_pass;
  int auth_insecure, chunking, xforward;
  /* the connection */
  int fd;
  long owner;                        /* pid that opened it (a forked child never QUITs) */
  ibuf in;
  obuf out;
  struct tls* tls;
  struct relay_caps caps;
  str peer;                          /* host:port or socket, for logs */
  str peer_host;                     /* the host name, for TLS checks */
  int reused;                        /* a transaction ran on it already */
  str xclient_sent;                  /* the XCLIENT command sent on it */
  /* the transaction */
  enum relay_state st;
  int txn;                           /* the sender hook ran since the reset */
  int file_mode;                     /* the body is read from the core's file */
  int spool_fd;                      /* body before envelope (QMQP/QMTP), or -1 */
  int bdat, bdat_pending;
  struct relay_enc enc;
  unsigned nrcpt;
  str rcpts;                         /* accepted recipients, NUL-separated */
  const response* data_error;
  unsigned long long bytes;
  /* scratch */
  str line, cmd, chunk, why;
  struct relay_reply reply, aux, first_ok, first_fail;   /* aux: reset, QUIT, identity */
};

/* This session's relay (the back end's context), or NULL outside one. */
struct relay* relay_self(void);

/* conn.c */
int relay_config(struct relay* r, int lmtp);          /* 0, or -1 with r->why */
int relay_open(struct relay* r);                      /* connect a next hop */
void relay_close(struct relay* r, int quit);          /* quit: QUIT politely */
void relay_free(struct relay* r);                     /* its strings (after relay_close) */
int relay_connected(const struct relay* r);
/* Queue one command line (CRLF added); 0 / -1. */
int relay_send(struct relay* r, const char* line, unsigned long len);
/* Flush and read one reply into *rep: 0, or -1 when the connection failed
 * (timeout, EOF, malformed reply), which closes it. */
int relay_reply(struct relay* r, struct relay_reply* rep);
/* EHLO/LHLO again (after XCLIENT) as name (NULL: $RELAY_HELO), reloading
 * the capabilities; 0, or -1 (the connection is then closed). */
int relay_rehello(struct relay* r, const char* name);
/* Queue raw bytes (message data); 0 / -1. */
int relay_write(struct relay* r, const char* b, unsigned long len);

#endif

/* authfront.h -- the authentication front ends (pop3front-auth,
 * imapfront-auth) less their protocol: the session set-up and limits, the
 * session's life (running, ended, authenticated), reading command lines,
 * the CVM deadline, credential checks, the SASL challenge loop, the
 * STARTTLS step, failure counting, and the exec of the mailbox server
 * with the TLS hand-off.  Each program embeds one struct authfront in its
 * session and describes its protocol in a struct authfront_proto: its
 * reply functions, its texts and its command step.  Its main.c keeps only
 * its command table, its replies and its log lines.
 *
 * Life cycle (authfront_run): the set-up (limits from the environment,
 * SIGPIPE ignored, the kv log's session start, the client streams and TLS
 * through authconn_open), the greeting, the program's step until the
 * session ends, then after a login the exec of the server, directly or
 * behind the TLS relay (tls/tlsrelay.h: inside TLS, or when the client
 * pipelined input after the login), finally the end (the kv log's
 * session end; frees everything).  Nothing here exits (but the exec).
 *
 * SASL framing (authfront_sasl): each challenge is written `+ CHALLENGE`
 * CR LF (RFC 5034 for POP3, RFC 3501 for IMAP alike); each client line is
 * read with the line limit and given to the engine (auth/sasl.h), which
 * treats a line starting with `*` as the client's cancel.  The protocol
 * writes the outcome: proto->sasl_failed with sasl_text() (POP3 `-ERR
 * TEXT`, IMAP `TAG NO AUTHENTICATE failed: TEXT`).  A read timeout or
 * error ends the session (proto->timed_out first when the read timed out
 * before the session deadline); end of input ends it too, after
 * sasl_failed when proto->eof_replies (POP3, as the reference). */
#ifndef MF_AUTHFRONT_H
#define MF_AUTHFRONT_H

#include "auth/cvm.h"
#include "auth/sasl.h"
#include "tls/tls.h"
#include <mailfront/iobuf.h>
#include <stddef.h>

#define AUTHFRONT_DEFAULT_MAX_LINE 4096
#define AUTHFRONT_MAX_CREDENTIAL 255    /* one CVM credential */

enum authfront_state { AUTHFRONT_RUNNING, AUTHFRONT_ENDED, AUTHFRONT_AUTHENTICATED };

/* The protocol.  ctx is the program's session (given to authfront_open). */
struct authfront_proto
{
  void (*reply)(void* ctx, const char* text);       /* to the current command (IMAP: tagged) */
  void (*notice)(void* ctx, const char* text);      /* outside a command (IMAP: untagged) */
  void (*sasl_failed)(void* ctx, const char* text); /* a failed SASL exchange; text = sasl_text() */
  void (*step)(void* ctx);                          /* read and answer one command */
  int (*environment)(void* ctx);                    /* extra environment for the server: 0, -1; NULL: none */
  int eof_replies;              /* end of input in SASL gets sasl_failed */
  const char* greeting;         /* notice: ready */
  const char* no_sasl;          /* notice: the SASL configuration cannot be read */
  const char* timed_out;        /* notice: a read timed out */
  const char* no_user;          /* reply: could not switch to the user */
  const char* no_env;           /* reply: could not set the environment */
  const char* no_exec;          /* reply: could not execute the server */
  const char* internal;         /* reply: the relay could not start */
};

struct authfront
{
  ibuf in;
  obuf out;
  long long deadline_ms;        /* session deadline (lib/clock.h) */
  struct tls* tls;              /* NULL: TLS not configured */
  struct sasl_config sasl;
  struct cvm_reply reply;       /* facts of the successful login */
  const struct authfront_proto* proto;
  void* ctx;
  char** program;               /* the mailbox server's argv */
  const char* domain;           /* ${PROTO}LOCALHOST or "unknown" */
  unsigned long max_line;       /* $MAX_LINE_LENGTH (4096) */
  unsigned long max_authfail, authfails;   /* $MAXAUTHFAIL (0: no limit) */
  int auth_requires_tls;        /* $AUTH_REQUIRES_TLS set */
  int env_exported;             /* SASL exported the CVM variables */
  int hide_input;               /* an AUTH failed: until a known command,
                                   client lines may be credentials (the
                                   program logs them masked) */
  enum authfront_state state;
  int status;                   /* exit status once ENDED */
};

/* The whole session for the server program, the protocol and its
 * session ctx (af is zeroed here): set-up (out of memory: logged, status
 * 111), the greeting, proto->step until the session ends, the exec of the
 * server after a login, then the end (flush, TLS closed, the kv
 * session_end line, af freed; the program frees its own session).
 * Returns the exit status (the exec does not return). */
int authfront_run(struct authfront* af, char** program, const struct authfront_proto* proto, void* ctx);

/* End the session with this exit status. */
void authfront_end(struct authfront* af, int status);
/* A login succeeded (af->reply holds the facts): exec the server next. */
void authfront_authenticated(struct authfront* af);
/* Count a failed login; at $MAXAUTHFAIL the session ends. */
void authfront_failed(struct authfront* af);

/* Input ended (r: 0 EOF, -1 error or timeout): the session ends; a read
 * timeout before the session deadline is announced (proto->timed_out). */
void authfront_input_ended(struct authfront* af, int r);
/* One command line (lib/linein.h rules, $MAX_LINE_LENGTH): 1 with the
 * line in *line, *len its length without the line end; -1 when input
 * ended (EOF, error, timeout): the session has ended. */
int authfront_getline(struct authfront* af, str* line, size_t* len, int* toolong);

/* The CVM deadline of one call: $CVM_TIMEOUT cut to what is left of the
 * session, at least 1 ms. */
unsigned authfront_cvm_deadline(const struct authfront* af);
/* 1 when s[0..len) can be sent to a CVM as one credential: no NUL byte
 * (the C-string call would silently truncate it), at most
 * AUTHFRONT_MAX_CREDENTIAL bytes. */
int authfront_credential_ok(const char* s, size_t len);

/* TLS configured (STLS/STARTTLS is a command at all). */
int authfront_tls_configured(const struct authfront* af);
/* STLS/STARTTLS may be used: TLS configured and not yet started. */
int authfront_tls_offered(const struct authfront* af);
/* $AUTH_REQUIRES_TLS and TLS not active: no credentials (fails closed
 * when TLS is not configured). */
int authfront_login_blocked(const struct authfront* af);

/* The TLS handshake after the program's go-ahead reply (RFC 2595):
 * input pipelined before it is dropped (logged, with the command name
 * verb), the outcome logged.  0; -1 when it failed: the session ended
 * with status 1. */
int authfront_starttls(struct authfront* af, const char* verb);

/* One SASL exchange for the AUTH argument "MECH[ INITIAL]" (framing above;
 * line is the program's line buffer, wiped after each line).  Afterwards
 * the session is AUTHENTICATED, ENDED or still RUNNING after a failure
 * (replied, counted, hide_input set).  The engine's log lines are
 * written. */
void authfront_sasl(struct authfront* af, str* line, const char* arg, size_t len);

#endif

/* sasl.h -- the cvm-sasl engine: SASL PLAIN, LOGIN and CRAM-MD5 checked
 * through CVM (the behaviour of cvm-sasl, the original's SASL library,
 * stated in full below), for SMTP AUTH, POP3 AUTH and IMAP AUTHENTICATE
 * alike.
 *
 * NO I/O: the engine never reads or writes the client.  The front-end
 * drives it with its own framing:
 *
 *     struct sasl_config cfg;  struct sasl_state st;
 *     sasl_config_init(&cfg);                 (once; 0 = out of memory)
 *     if (!sasl_enabled(&cfg)) ...AUTH unavailable...
 *     sasl_mechanisms(&cfg, &list);           ("LOGIN PLAIN CRAM-MD5")
 *     sasl_state_init(&st, &cfg);
 *     r = sasl_start(&st, arg, arglen);       (arg = "MECH [INITIAL]")
 *     while (r == SASL_CHALLENGE) {
 *       send PREFIX + st.challenge + CRLF     ("334 " SMTP, "+ " POP3/IMAP;
 *                                             st.challenge is base64, may
 *                                             be empty)
 *       read one line (with a length limit)
 *       EOF            -> r = SASL_EOF (stop)
 *       timeout/error  -> r = SASL_TEMP_FAIL (stop)
 *       otherwise strip CR LF, r = sasl_response(&st, line, linelen);
 *     }
 *     log sasl_log_reason(&st, r) if non-NULL, then sasl_log_line(...)
 *     reply sasl_code(r) + sasl_text(r)       (SMTP: "CODE TEXT"; POP3:
 *                                             "-ERR TEXT"; IMAP: "TAG NO
 *                                             AUTHENTICATE failed: TEXT")
 *     on SASL_SUCCESS: st.reply holds the CVM facts; the CVM variables
 *       (cvm_setenv) have ALREADY been exported to the process environment.
 *     sasl_state_free(&st);                   (always; wipes secrets)
 *
 * A state may be reused for another exchange after sasl_state_free() +
 * sasl_state_init().  "Already authenticated" is the front-end's business.
 *
 * CONFIGURATION (read by sasl_config_init from the process environment, or
 *   by sasl_config_init_env through the lookup function it is given)
 *   LOGIN    $CVM_SASL_PLAIN, or $CVM_SASL_LOGIN when CVM_SASL_PLAIN unset
 *   PLAIN    $CVM_SASL_PLAIN
 *   CRAM-MD5 $CVM_SASL_CRAM_MD5
 *   A mechanism is configured when its variable is set and non-empty.
 *   Every configured mechanism is offered and accepted, in the order LOGIN,
 *   PLAIN, CRAM-MD5 (the libcvm 0.97 quirk of dropping PLAIN is fixed).
 *   DOMAIN credential: ${PROTO}LOCALHOST when $PROTO is set, else empty;
 *   always sent (possibly empty).  Account names are split at the last
 *   $CVM_ACCOUNT_SPLIT_CHARS character (default "@") into ACCOUNT/DOMAIN.
 *   CRAM-MD5 challenge: <PID.SECONDS.MICROSECONDS@HOST>, HOST =
 *   ${PROTO:-TCP}LOCALHOST or "unknown".  CVM deadline: $CVM_TIMEOUT
 *   (cvm_timeout_ms()).
 *
 * PROTOCOL RULES
 *   The argument is MECH, optionally followed by spaces and a base64
 *   initial response; the initial response is decoded FIRST (invalid →
 *   SASL_RESP_BAD even for an unknown mechanism).  Mechanism names match
 *   case-insensitively.  A client line that is empty or starts with '*'
 *   aborts (SASL_AUTH_FAILED, log reason "aborted").  Client lines must be
 *   strict base64 (else SASL_RESP_BAD, reason "bad response").
 *   PLAIN: "authzid NUL authcid NUL password" (two NULs required, else
 *   SASL_RESP_BAD); authcid is the account.  An empty initial response
 *   ("=") is SASL_RESP_BAD.
 *   LOGIN: challenge "Username:" unless given as the initial response, then
 *   "Password:"; an empty decoded value is SASL_RESP_BAD.
 *   CRAM-MD5: initial response → SASL_RESP_NOTALLOWED; response
 *   "user HEX32" (32 hex digits, either case) sent as CHALLENGE, RESPONSE
 *   (16 raw bytes) and RESPONSE_TYPE "CRAM-MD5".
 *   Lengths: a credential that cannot fit the CVM packet (255 bytes each,
 *   512 bytes per packet) can never be valid: SASL_AUTH_FAILED without
 *   asking the CVM (the 2.12 reference answers 451).  The front-end limits
 *   the line length it reads.
 *
 * ERRORS are the sasl_status values below; nothing here exits or logs. */
#ifndef MF_SASL_H
#define MF_SASL_H

#include <mailfront/str.h>
#include "cvm.h"

enum sasl_mech
{
  SASL_MECH_LOGIN = 0,
  SASL_MECH_PLAIN = 1,
  SASL_MECH_CRAM_MD5 = 2,
  SASL_MECH_COUNT = 3
};

enum sasl_status
{
  SASL_SUCCESS = 0,        /* 235-ish: authenticated, facts in state.reply */
  SASL_CHALLENGE,          /* send state.challenge, call sasl_response    */
  SASL_AUTH_FAILED,        /* 501 Authentication failed.                  */
  SASL_NO_MECH,            /* 504 Unrecognized authentication mechanism.  */
  SASL_RESP_REQUIRED,      /* 535 Response was required but not given.    */
  SASL_RESP_NOTALLOWED,    /* 535 Initial response not allowed.           */
  SASL_RESP_BAD,           /* 501 Could not decode the response.          */
  SASL_EOF,                /* 535 End of file reached.                    */
  SASL_TEMP_FAIL           /* 451 Internal error.                         */
};

struct sasl_config
{
  str cvm[SASL_MECH_COUNT];   /* module chain per mechanism, empty = off */
  str domain;                 /* DOMAIN credential (may be empty) */
  str host;                   /* CRAM-MD5 challenge host */
  unsigned timeout_ms;        /* CVM deadline, 0 = cvm_timeout_ms() */
};

struct sasl_state
{
  const struct sasl_config* config;
  int mech;                   /* enum sasl_mech, or -1 */
  int step;                   /* internal */
  str mech_name;              /* the mechanism as the client wrote it */
  str challenge;              /* base64 text to send on SASL_CHALLENGE */
  str raw_challenge;          /* CRAM-MD5: the challenge sent */
  str account;                /* LOGIN: the user name given; after a CVM
                                 call: the ACCOUNT credential sent (after
                                 splitting at $CVM_ACCOUNT_SPLIT_CHARS) */
  const char* reason;         /* log reason: "aborted", "bad response", 0 */
  struct cvm_reply reply;     /* CVM result (facts after SASL_SUCCESS) */
};

/* Read the configuration from the environment.  1 ok, 0 out of memory. */
int sasl_config_init(struct sasl_config* cfg);
/* The same with the variables read through get (a mailfront plugin
 * passes session_getenv, so that each session has its own settings). */
int sasl_config_init_env(struct sasl_config* cfg, const char* (*get)(const char*));
void sasl_config_free(struct sasl_config* cfg);
/* Non-zero when at least one mechanism is configured. */
int sasl_enabled(const struct sasl_config* cfg);
/* Replace out with the space-separated list of configured mechanisms in
 * the order LOGIN PLAIN CRAM-MD5 (empty when none).  1 ok, 0 no memory. */
int sasl_mechanisms(const struct sasl_config* cfg, str* out);
/* The canonical name of a mechanism ("LOGIN", "PLAIN", "CRAM-MD5"). */
const char* sasl_mech_name(int mech);
/* Non-zero when word[0..len) is a registered SASL mechanism name (any
 * case), which a log may show.  Anything else in the mechanism's place
 * may be a credential (`AUTH <base64>`) and is logged as SASL_LOG_HIDDEN. */
int sasl_mech_loggable(const char* word, unsigned long len);
#define SASL_LOG_HIDDEN "[hidden]"

/* Prepare a state for one exchange (zeroes it; no allocation). */
void sasl_state_init(struct sasl_state* st, const struct sasl_config* cfg);
/* Start an exchange with the AUTH argument (not NUL-terminated). */
int sasl_start(struct sasl_state* st, const char* arg, unsigned long len);
/* Continue with one client line, CR LF already stripped. */
int sasl_response(struct sasl_state* st, const char* line, unsigned long len);
/* Release and wipe (challenge, account, reply). */
void sasl_state_free(struct sasl_state* st);

/* Reply code and text of a final status (SASL_SUCCESS: 235 and
 * "Authentication succeeded."; the front-end chooses its own success
 * reply). */
unsigned sasl_code(int status);
const char* sasl_text(int status);

/* Log texts (without program prefix or newline), as the reference logs:
 * sasl_log_reason: "SASL AUTH MECH failed: aborted" / "... failed: bad
 * response" when the exchange ended that way, else 0 (returns 1 and fills
 * out, or 0 when there is nothing to log / no memory);
 * sasl_log_line: "SASL AUTH MECH username=USER[ sys_username=X][
 * domain=D]" on SASL_SUCCESS, else "SASL AUTH MECH failed".  MECH is the
 * name as the client wrote it when it is a registered mechanism name,
 * else SASL_LOG_HIDDEN (it may be a credential).  1 ok (log out), 0 nothing to log (an
 * undecodable initial response is logged by the reason line alone, as the
 * reference does) or out of memory. */
int sasl_log_reason(const struct sasl_state* st, str* out);
int sasl_log_line(const struct sasl_state* st, int status, str* out);

#endif

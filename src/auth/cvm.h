/* cvm.h -- client for Credential Validation Modules, protocol version 2.
 *
 * mailfront never checks passwords itself: it sends the credentials to a
 * CVM and reads back a result code and "facts" about the user (the CVM
 * v2 protocol of Bruce Guenter's cvm package, stated in full below; user
 * documentation: man/pop3front-auth.8.scd, man/mailfront-plugin-cvm-
 * authenticate.8.scd).  This is our own implementation of the v2 client
 * (Debian's libcvm is NOT linked).
 *
 * MODULE NAMES (transport)
 *   A module name is a comma-separated chain of elements, each one of
 *     cvm-command:/path/prog   or just /path/prog
 *         fork/exec the program (no arguments), request on its stdin, reply
 *         from its stdout; a non-zero exit status replaces the result code.
 *     cvm-local:/path/socket   UNIX stream socket: write the request, shut
 *         down writing, read the reply until EOF.
 *     cvm-udp:HOST:PORT        UDP datagram (HOST numeric IPv4/IPv6 or a
 *         name), sent up to 4 times with waits of 2, 4, 8, 16 s; the request
 *         carries $CVM_RANDOM_BYTES (default 8, max 255) random bytes that
 *         the reply must echo, otherwise the datagram is ignored.
 *   Chain rule: stop at success or at a temporary error; at a permanent
 *   failure (100) stop only if the reply carries OUTOFSCOPE = 0, otherwise
 *   try the next element; the last result is returned.
 *
 * DEADLINE
 *   Every call has ONE deadline covering the whole chain (connect, write,
 *   read, the child's exit, UDP retries): timeout_ms, or when 0 the value
 *   of cvm_timeout_ms() ($CVM_TIMEOUT in seconds, default 30).  On expiry
 *   the child is killed (SIGKILL) and reaped, the socket closed, and the
 *   result is CVME_IO (temporary).  SIGPIPE is ignored during the exchange
 *   and an ignored SIGCHLD is set to its default (so that the module can be
 *   reaped); both previous dispositions are restored.  No other signal state or
 *   global state is changed; the functions are not thread-safe only in
 *   that they read the environment.
 *
 * REQUEST
 *   byte 2, byte L, L random bytes (L = 0 unless a cvm-udp: element is in
 *   the chain), credentials as TYPE LEN DATA, final 0 byte; at most 512
 *   bytes (else CVME_BAD_CLIDATA, nothing is sent).  A credential longer
 *   than 255 bytes is CVME_BAD_CLIDATA.
 *
 * AUTHENTICATION AND LOOKUP (security)
 *   A module started with $CVM_LOOKUP_SECRET in its environment runs in
 *   lookup mode and does not check passwords.  So the environment is never
 *   trusted here: cvm_authenticate() never sends a SECRET credential of its
 *   own and runs command modules WITHOUT $CVM_LOOKUP_SECRET and
 *   $LOOKUP_SECRET, whatever the process environment holds.  Only
 *   cvm_lookup() (recipient validation) sends the lookup secret, as SECRET
 *   credential, and gives it to its command modules as $CVM_LOOKUP_SECRET.
 *   The process environment's $CVM_LOOKUP_SECRET is not read at all.
 *
 * REPLY
 *   Parsed strictly: result byte, the echoed random bytes, facts, final 0
 *   byte, nothing after it; anything malformed or truncated is
 *   CVME_BAD_MODDATA (temporary).  On success USERNAME, USERID, GROUPID and
 *   DIRECTORY must be present (else CVME_BAD_MODDATA), integer facts must
 *   be decimal, string facts we keep must not contain NUL.  On failure only
 *   OUTOFSCOPE is kept (other facts are ignored).
 *
 * MEMORY
 *   struct cvm_reply owns its strings; a zeroed struct is a valid empty
 *   reply; cvm_reply_free() releases it (call it also after failures).
 *   cvm_authenticate*() reset the reply before filling it.
 *
 * ERRORS
 *   Every call returns the CVM result code (also stored in reply->result):
 *   CVME_OK (0) success, CVME_PERMFAIL (100) credentials rejected, any
 *   other value a temporary failure.  Local failures map to: bad module
 *   name or missing account → CVME_CONFIG / CVME_BAD_CLIDATA; fork, socket,
 *   I/O, timeout, killed or crashed child → CVME_IO; out of memory →
 *   CVME_GENERAL.  Nothing is logged and nothing exits. */
#ifndef MF_CVM_H
#define MF_CVM_H

#include <mailfront/str.h>

/* Result codes (errors.html). */
#define CVME_OK 0
#define CVME_GENERAL 1
#define CVME_BAD_CLIDATA 2
#define CVME_BAD_MODDATA 3
#define CVME_IO 4
#define CVME_NOFACT 5
#define CVME_CONFIG 6
#define CVME_NOCRED 7
#define CVME_PERMFAIL 100

/* Credential types (credentials.html). */
#define CVM_CRED_ACCOUNT 1
#define CVM_CRED_DOMAIN 2
#define CVM_CRED_PASSWORD 3
#define CVM_CRED_SECRET 4
#define CVM_CRED_CHALLENGE 5
#define CVM_CRED_RESPONSE 6
#define CVM_CRED_RESPONSE_TYPE 7

/* Fact numbers (facts.html). */
#define CVM_FACT_USERNAME 1
#define CVM_FACT_USERID 2
#define CVM_FACT_GROUPID 3
#define CVM_FACT_REALNAME 4
#define CVM_FACT_DIRECTORY 5
#define CVM_FACT_SHELL 6
#define CVM_FACT_GROUPNAME 7
#define CVM_FACT_SUPP_GROUPID 8
#define CVM_FACT_SYS_USERNAME 9
#define CVM_FACT_SYS_DIRECTORY 10
#define CVM_FACT_DOMAIN 14
#define CVM_FACT_MAILBOX 15
#define CVM_FACT_OUTOFSCOPE 16

#define CVM_PACKET_MAX 512

/* One credential: type CVM_CRED_*, len bytes of data (may hold NULs;
 * at most 255 bytes). */
struct cvm_credential
{
  unsigned type;
  const char* data;
  unsigned len;
};

/* The result of one call.  `present` has bit (1u << FACT) set for every
 * fact seen (FACT <= 31).  String facts are empty when absent. */
struct cvm_reply
{
  int result;                 /* CVME_* */
  unsigned present;           /* bit set of facts present */
  str username;               /* USERNAME (1) */
  unsigned long uid;          /* USERID (2) */
  unsigned long gid;          /* GROUPID (3) */
  str realname;               /* REALNAME (4) */
  str directory;              /* DIRECTORY (5) */
  str shell;                  /* SHELL (6) */
  str groupname;              /* GROUPNAME (7) */
  str supp_gids;              /* SUPP_GROUPID (8) list: "G1,G2,..." */
  str sys_username;           /* SYS_USERNAME (9) */
  str sys_directory;          /* SYS_DIRECTORY (10) */
  str domain;                 /* DOMAIN (14) */
  str mailbox;                /* MAILBOX (15) */
  unsigned long outofscope;   /* OUTOFSCOPE (16), also kept on failure */
};

#define CVM_HAS(reply, fact) (((reply)->present >> (fact)) & 1u)

/* Release the reply's strings and zero it (safe on a zeroed struct). */
void cvm_reply_free(struct cvm_reply* reply);

/* The default deadline: $CVM_TIMEOUT seconds (positive decimal), else 30 s,
 * in milliseconds. */
unsigned cvm_timeout_ms(void);

/* Send creds[0..n) to the module chain `modules` and wait for the reply
 * (at most timeout_ms, 0 = cvm_timeout_ms()).  Returns the result code,
 * also in reply->result; facts in *reply. */
int cvm_authenticate(const char* modules, const struct cvm_credential* creds,
                     unsigned n, unsigned timeout_ms, struct cvm_reply* reply);

/* A lookup (no password: the module answers whether the account exists):
 * as cvm_authenticate(), plus the SECRET credential `secret` (NULL is
 * taken as "", sent as an empty SECRET) unless creds holds one, and
 * $CVM_LOOKUP_SECRET=secret in a command module's environment. */
int cvm_lookup(const char* modules, const struct cvm_credential* creds,
               unsigned n, const char* secret, unsigned timeout_ms,
               struct cvm_reply* reply);

/* The password convenience call used by pop3front-auth PASS and
 * imapfront-auth LOGIN: ACCOUNT = account; DOMAIN = domain if non-NULL and
 * non-empty; if split is non-zero and account contains one of
 * $CVM_ACCOUNT_SPLIT_CHARS (default "@"; empty = never split), at its LAST
 * occurrence, ACCOUNT is the part before and DOMAIN the part after it;
 * PASSWORD only if password is non-NULL and non-empty.  Result as
 * cvm_authenticate(). */
int cvm_authenticate_password(const char* modules, const char* account,
                              const char* domain, const char* password,
                              int split, unsigned timeout_ms,
                              struct cvm_reply* reply);

/* Split account in place at the last $CVM_ACCOUNT_SPLIT_CHARS character:
 * domain receives the rest (replaced), account is truncated.  Returns 1 if
 * split, 0 if no split character (both unchanged), -1 out of memory. */
int cvm_split_account(str* account, str* domain);

/* ${PROTO}LOCALHOST ($PROTO defaulting to "TCP"), or NULL when unset or
 * empty.  The password call's domain is normally
 * cvm_ucspi_domain() or "unknown" when that is NULL. */
const char* cvm_ucspi_domain(void);
/* The same read through get (e.g. a mailfront plugin's session_getenv). */
const char* cvm_ucspi_domain_env(const char* (*get)(const char*));

/* Export the facts of a successful reply to the process environment
 * (setenv, overwriting): USER, UID, GID, HOME always; NAME, SHELL, GROUP,
 * DOMAIN, MAIL+MAILBOX+MAILDIR, GIDS only when present.  0 ok, -1 out of
 * memory (errno set). */
int cvm_setenv(const struct cvm_reply* reply);
/* The names cvm_setenv may set, NULL-terminated (for a caller that must
 * put the process environment back afterwards). */
extern const char* const cvm_env_names[];

/* "Switch to the user": setgid(gid), setuid(uid), chdir(directory), in
 * this order; supplementary groups are not changed.  0 ok, -1 with errno
 * of the failing call. */
int cvm_switch_user(const struct cvm_reply* reply);

/* Low-level packet functions (exposed for the unit tests and for special
 * clients).  cvm_request_build replaces out with the request packet for
 * the given random bytes and credentials, plus lookup_secret as SECRET
 * when it is non-NULL and creds has no SECRET; returns CVME_OK,
 * CVME_BAD_CLIDATA (too long, no ACCOUNT) or CVME_GENERAL (no memory).  cvm_reply_parse parses a
 * complete reply packet that must echo rnd[0..rlen); returns the result
 * code (CVME_BAD_MODDATA when malformed) and fills *reply. */
int cvm_request_build(str* out, const unsigned char* rnd, unsigned rlen,
                      const struct cvm_credential* creds, unsigned n,
                      const char* lookup_secret);
int cvm_reply_parse(const char* buf, unsigned long len,
                    const unsigned char* rnd, unsigned rlen,
                    struct cvm_reply* reply);

#endif

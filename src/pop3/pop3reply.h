/* pop3reply.h -- the replies of a POP3 server and the log lines of a POP3
 * conversation, shared by pop3front-auth and pop3front-maildir.
 *
 * Replies: every line is TEXT CR LF into the caller's obuf (flushed by the
 * obuf's tie before the next read).  A status line (`+OK ...`, `-ERR
 * ...`, the `.` that ends a multi-line reply) is also logged; the other
 * lines of a multi-line reply are not.
 *
 * Log lines (lib/log.h formats; docs/logging.md):
 *   status line  classic: the line as sent (a failed AUTH: only the text
 *                after `-ERR `, as the original); kv: event=reply with
 *                result=ok|err|end (`+OK`, `-ERR`, the final `.`) and
 *                text= the rest of the line (when there is one).
 *   command      classic: the line as received, with its secrets
 *                replaced by XXXXXXXX: PASS's argument, AUTH's initial
 *                response, an AUTH "mechanism" that is no mechanism
 *                name (a client sending `AUTH <base64>`); after a failed
 *                AUTH, until a known command, the whole line (it may be
 *                the client's credentials, out of step): `[line hidden
 *                after a failed AUTH]`.  kv: event=command command=VERB
 *                (upper case) arg=ARG, where PASS has no arg, AUTH's arg
 *                is its mechanism alone (`[hidden]` when it is no
 *                mechanism name) and a hidden line is command=[hidden].
 * Nothing here allocates beyond a scratch string, keeps state, or fails
 * visibly (write errors stay in the obuf). */
#ifndef MF_POP3REPLY_H
#define MF_POP3REPLY_H

#include <mailfront/iobuf.h>
#include <stddef.h>

#define POP3_OK "+OK "
#define POP3_ERR_SYNTAX "-ERR Syntax error"
#define POP3_ERR_UNIMPL "-ERR Unimplemented"
#define POP3_ERR_INTERNAL "-ERR Internal error"
#define POP3_ERR_TIMEOUT "-ERR Connection timed out"
#define POP3_ERR_TOOLONG "-ERR Line too long"

/* A line of a multi-line reply (not logged). */
void pop3_line(obuf* out, const char* text, size_t len);
/* A status line, logged. */
void pop3_status(obuf* out, const char* text, size_t len);
void pop3_reply(obuf* out, const char* text);
/* The CAPA reply (RFC 2449): `+OK `, the SASL line when sasl is not NULL
 * (`SASL MECHS`), PIPELINING, TOP, UIDL, USER when user is set, STLS
 * when stls is set, `.`. */
void pop3_capa(obuf* out, const char* sasl, int user, int stls);
/* Log a status line that was sent another way (the `.` after a message). */
void pop3_log_status(const char* text, size_t len);
/* `-ERR TEXT` for a failed AUTH: classic logs TEXT alone. */
void pop3_sasl_failed(obuf* out, const char* text);

/* Log a received command line (line end removed; c is its pop3_split),
 * masked as above; hidden: the line follows a failed AUTH. */
struct pop3_cmdline;
void pop3_log_command(const struct pop3_cmdline* c, const char* line, size_t len, int hidden);

#endif

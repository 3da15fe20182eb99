/* qmxp.h -- declarations of qmxp.c, the code shared by protocol-qmqp.so
 * and protocol-qmtp.so (protocols.md "QMQP", "QMTP", "QMQP/QMTP reply
 * encoding").  Both modules link qmxp.c (the build lists it in
 * qmqp_SHARED_SRCS / qmtp_SHARED_SRCS in the Makefile); it is not a
 * module of its own.  Contract: see qmxp.c. */
#ifndef MF_QMXP_H
#define MF_QMXP_H

#include <mailfront/mailfront.h>
#include <mailfront/iobuf.h>

#define QMXP_BLOCK 8192                /* largest data block handed on */
#define QMXP_MAXADDR_DFLT 4096         /* default address length limit */
#define QMXP_SESSION_SECONDS 3600      /* session limit set by mainloop */

/* ---- reply encoding ---- */
char qmxp_class(unsigned number);
int qmxp_encode(str* out, unsigned number, const char* text, unsigned long len);
const response* qmxp_session_open(void** ctx);
void qmxp_session_close(void* ctx);
int qmxp_respond_line(unsigned number, int final, const char* msg, unsigned long len);

/* ---- per-message state ---- */
struct qmxp
{
  ibuf* in;
  const response* err;     /* first error of this message, or NULL */
  str addr, params;        /* current address; params stay empty */
  unsigned long maxaddr;   /* longest sender/recipient accepted */
  int status;              /* exit status once the session ends */
};

/* One message of a protocol: 1 to go on with the next, 0 when the
 * session ends (with q->status). */
typedef int (*qmxp_message_fn)(struct qmxp* q);
int qmxp_run(const char* limitvar, qmxp_message_fn message);

/* The protocol's entry structure, the same for QMQP and QMTP but for the
 * name and the main loop (a designated initializer, no code). */
#define QMXP_PROTOCOL(proto_name, main_loop) {   \
  .version = PROTOCOL_VERSION_4,                \
  .name = (proto_name),                         \
  .respond_line = qmxp_respond_line,            \
  .session_open = qmxp_session_open,            \
  .session_close = qmxp_session_close,          \
  .mainloop = (main_loop),                      \
}

void qmxp_keep(struct qmxp* q, const response* r);
int qmxp_die(struct qmxp* q, const char* text);
int qmxp_oom(struct qmxp* q);
int qmxp_finish(struct qmxp* q);

/* ---- reading ---- */
int qmxp_skip(ibuf* in, unsigned long n);
int qmxp_body(struct qmxp* q, unsigned long len);
int qmxp_take_address(struct qmxp* q, unsigned long n, int* toolong);
int qmxp_address(struct qmxp* q, int* toolong);
void qmxp_envelope(struct qmxp* q, int is_sender, int toolong);
int qmxp_begin(struct qmxp* q, unsigned long* len);
int qmxp_body_and_sender(struct qmxp* q, unsigned long len);

#endif

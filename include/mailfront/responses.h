/* mailfront/responses.h -- the reply value every hook returns.
 *
 * A hook returns NULL ("no opinion") or a pointer to a response that
 * outlives the call (normally a static const object made with RESPONSE()).
 * number & RESPONSE_MASK is the reply code: < 400 accepts, 400-499 is a
 * temporary failure, >= 500 a permanent one.  RESPONSE_FINAL or-ed into an
 * accepting number stops the plugin chain ("accept, ask nobody else").
 * message is the reply text without code; it may hold '\n' for a
 * multi-line reply, or be NULL (the backend's or protocol's text is used). */
#ifndef MAILFRONT_RESPONSES_H
#define MAILFRONT_RESPONSES_H

struct response
{
  unsigned number;
  const char* message;
};
typedef struct response response;

#define RESPONSE_MASK 0x3ff
#define RESPONSE_FINAL 0x400

extern const response resp_accepted_message; /* 250 2.6.0 Message accepted. */
extern const response resp_accepted_sender;  /* 250 2.1.0 Sender accepted. */
extern const response resp_accepted_recip;   /* 250 2.1.5 Recipient accepted. */
extern const response resp_internal;         /* 451 4.3.0 Internal error. */
extern const response resp_oom;              /* 451 4.3.0 Out of memory. */

/* Defines `const response resp_NAME`. */
#define RESPONSE(NAME,CODE,MSG) const response resp_##NAME = {CODE,MSG}

/* number_ok: r is non-NULL and accepts.  response_ok: r is NULL or accepts. */
extern int number_ok(const response* r);
extern int response_ok(const response* r);

#endif

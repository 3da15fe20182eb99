/* relay/conn.c -- the downstream connection of the relay back ends (API:
 * relay.h): configuration from the environment, connecting to the first
 * next hop that answers ($RELAY_SOCKET, else each of $RELAY_HOST in
 * order), the greeting, EHLO/LHLO, STARTTLS, AUTH PLAIN/LOGIN, and
 * command/reply I/O.  Every connect, read and write waits at most
 * $RELAY_TIMEOUT and never past the session deadline (name lookups too,
 * through getaddrinfo_a).  Credentials are
 * never logged; r->why holds log text for the caller. */
#include "lib/setting.h"
#include "backends/relay/relay.h"
#include "auth/base64.h"
#include "lib/progenv.h"
#include "tls/tls.h"
#include "lib/clock.h"
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define RELAY_DEFAULT_TIMEOUT 300UL
#define RELAY_MAX_TIMEOUT 2000000UL
#define RELAY_IOBUF 65536

static int why(struct relay* r, const char* a, const char* b)
{
  r->why.len = 0;
  if (!str_copys(&r->why, a) || (b && !str_cats(&r->why, b))) r->why.len = 0;
  return -1;
}

static const struct { const char* name; enum relay_tls_mode mode; } tls_modes[] = {
  { "", RT_NONE }, { "no", RT_NONE }, { "none", RT_NONE }, { "may", RT_MAY },
  { "encrypt", RT_ENCRYPT }, { "verify", RT_VERIFY },
};

static const char* env(const char* name)
{
  const char* v = session_getenv(name);
  return v && *v ? v : 0;
}

/* Numeric settings by lib/setting.h's rule (0 or bad: the default, too
 * large: the largest; the switches: 0 off, any other number on). */
static const struct env_number timeout_spec = { RELAY_DEFAULT_TIMEOUT, 1, RELAY_MAX_TIMEOUT, 0 };
static const struct env_number flag_off = { 0, 0, 1, 1 }, flag_on = { 1, 0, 1, 1 };

int relay_config(struct relay* r, int lmtp)
{
  r->lmtp = lmtp;
  r->fd = -1;
  r->hosts = env("RELAY_HOST");
  r->sockpath = env("RELAY_SOCKET");
  if (!r->hosts && !r->sockpath) return why(r, "neither $RELAY_HOST nor $RELAY_SOCKET is set", 0);
  const struct env_number port_spec = { lmtp ? 24 : 25, 1, 65535, 0 };
  r->port = (unsigned)env_setting("RELAY_PORT", &port_spec);
  r->timeout_ms = (unsigned)(env_setting("RELAY_TIMEOUT", &timeout_spec) * 1000);
  const char* h = env("RELAY_HELO");
  if (!h) h = getprotoenv("LOCALHOST");
  char host[256];
  if (!h && gethostname(host, sizeof host - 1) == 0) { host[sizeof host - 1] = 0; h = host; }
  if (!str_copys(&r->helo, h ? h : "localhost")) return why(r, "out of memory", 0);
  for (unsigned i = 0; i < r->helo.len; i++)
    if ((unsigned char)r->helo.s[i] <= 0x20 || r->helo.s[i] == 0x7f) return why(r, "bad $RELAY_HELO", 0);
  const char* m = session_getenv("RELAY_TLS");
  size_t k = 0;
  for (; k < sizeof tls_modes / sizeof tls_modes[0]; k++)
    if (strcasecmp(m ? m : "", tls_modes[k].name) == 0) break;
  if (k == sizeof tls_modes / sizeof tls_modes[0]) return why(r, "bad $RELAY_TLS: ", m);
  r->tls_mode = tls_modes[k].mode;
  r->tls_ca = env("RELAY_TLS_CAFILE");
  r->tls_name = env("RELAY_TLS_NAME");
  r->tls_pin = env("RELAY_TLS_PIN");
  r->tls_priority = env("RELAY_TLS_PRIORITY");
  if (r->tls_pin && r->tls_mode < RT_ENCRYPT) r->tls_mode = RT_ENCRYPT;
  r->auth_user = env("RELAY_AUTH_USER");
  r->auth_pass = session_getenv("RELAY_AUTH_PASSWORD");
  r->auth_insecure = (int)env_setting("RELAY_AUTH_INSECURE", &flag_off);
  r->chunking = (int)env_setting("RELAY_CHUNKING", &flag_on);
  r->xforward = (int)env_setting("RELAY_XFORWARD", &flag_on);
  if (r->auth_user && !r->auth_pass) return why(r, "$RELAY_AUTH_USER without $RELAY_AUTH_PASSWORD", 0);
  return 0;
}

int relay_connected(const struct relay* r) { return r->fd >= 0; }


/* Non-blocking connect bounded by the timeout and the session deadline. */
static int connect_bounded(struct relay* r, int fd, const struct sockaddr* sa, socklen_t len)
{
  if (connect(fd, sa, len) == 0) return 0;
  if (errno != EINPROGRESS) return -1;
  long long end = clock_mono_ms() + r->timeout_ms;
  const long long* dl = session_input() ? session_input()->deadline_ms : 0;
  if (dl && *dl > 0 && *dl < end) end = *dl;
  for (;;) {
    long long left = end - clock_mono_ms();
    if (left <= 0) { errno = ETIMEDOUT; return -1; }
    struct pollfd p = { fd, POLLOUT, 0 };
    int n = poll(&p, 1, left > 0x7fffffff ? 0x7fffffff : (int)left);
    if (n > 0) break;
    if (n < 0 && errno != EINTR) return -1;
  }
  int err = 0;
  socklen_t el = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0) return -1;
  if (err) { errno = err; return -1; }
  return 0;
}

static int attach(struct relay* r, int fd)
{
  r->fd = fd;
  r->owner = (long)getpid();
  if (ibuf_init(&r->in, fd, RELAY_IOBUF) < 0 || obuf_init(&r->out, fd, RELAY_IOBUF) < 0) {
    ibuf_close(&r->in);
    close(fd);
    r->fd = -1;
    return why(r, "out of memory", 0);
  }
  r->in.timeout_ms = r->out.timeout_ms = r->timeout_ms;
  ibuf* cin = session_input();
  r->in.deadline_ms = r->out.deadline_ms = cin ? cin->deadline_ms : 0;
  r->in.tie = &r->out;
  r->reused = 0;
  relay_caps_clear(&r->caps);
  return 0;
}

static int connect_unix(struct relay* r)
{
  struct sockaddr_un sun;
  memset(&sun, 0, sizeof sun);
  sun.sun_family = AF_UNIX;
  if (strlen(r->sockpath) >= sizeof sun.sun_path) return why(r, "socket path too long: ", r->sockpath);
  strcpy(sun.sun_path, r->sockpath);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return why(r, "socket: ", strerror(errno));
  if (connect_bounded(r, fd, (struct sockaddr*)&sun, sizeof sun) < 0) {
    int e = errno;
    close(fd);
    why(r, "cannot connect to ", r->sockpath);
    str_cat2s(&r->why, ": ", strerror(e));
    return -1;
  }
  r->peer.len = r->peer_host.len = 0;
  if (!str_copys(&r->peer, r->sockpath) || !str_copys(&r->peer_host, "")) { close(fd); return why(r, "out of memory", 0); }
  return attach(r, fd);
}

/* getaddrinfo bounded by $RELAY_TIMEOUT and the session deadline (glibc's
 * getaddrinfo_a).  0 with *res, or an EAI_ code (EAI_AGAIN on timeout).
 * A lookup that cannot be cancelled keeps its request block: it is
 * leaked, not freed under the resolver's feet. */
static int resolve(struct relay* r, const char* host, const char* port, struct addrinfo** res)
{
  struct lookup { struct addrinfo hints; struct gaicb cb; char host[256], port[16]; };
  struct lookup* l = calloc(1, sizeof *l);
  if (!l) return EAI_MEMORY;
  snprintf(l->host, sizeof l->host, "%s", host);
  snprintf(l->port, sizeof l->port, "%s", port);
  l->hints.ai_socktype = SOCK_STREAM;
  l->cb.ar_name = l->host;
  l->cb.ar_service = l->port;
  l->cb.ar_request = &l->hints;
  struct gaicb* list[1] = { &l->cb };
  int g = getaddrinfo_a(GAI_NOWAIT, list, 1, 0);
  if (g != 0) { free(l); return g; }
  long long end = clock_mono_ms() + r->timeout_ms;
  const long long* dl = session_input() ? session_input()->deadline_ms : 0;
  if (dl && *dl > 0 && *dl < end) end = *dl;
  while ((g = gai_error(&l->cb)) == EAI_INPROGRESS) {
    long long left = end - clock_mono_ms();
    if (left <= 0) break;
    struct timespec ts = { (time_t)(left / 1000), (long)(left % 1000) * 1000000L };
    (void)gai_suspend((const struct gaicb* const*)list, 1, &ts);
  }
  if (g == EAI_INPROGRESS) {
    int c = gai_cancel(&l->cb);
    if (c == EAI_CANCELED) free(l);
    if (c != EAI_ALLDONE) return EAI_AGAIN;
    g = gai_error(&l->cb);
  }
  *res = l->cb.ar_result;
  free(l);
  return g;
}

/* One host token: name, name:port, [addr] or [addr]:port. */
static int connect_host(struct relay* r, const char* tok, unsigned long len)
{
  char host[256], port[16];
  unsigned long hl;
  const char* p = 0;
  if (len && tok[0] == '[') {
    const char* e = memchr(tok, ']', len);
    if (!e) return why(r, "bad host in $RELAY_HOST", 0);
    hl = (unsigned long)(e - tok - 1);
    if (hl >= sizeof host) return why(r, "host name too long", 0);
    memcpy(host, tok + 1, hl);
    if ((unsigned long)(e + 1 - tok) < len && e[1] == ':') p = e + 2;
  } else {
    const char* c = memchr(tok, ':', len);
    hl = c ? (unsigned long)(c - tok) : len;
    if (hl >= sizeof host) return why(r, "host name too long", 0);
    memcpy(host, tok, hl);
    if (c) p = c + 1;
  }
  host[hl] = 0;
  unsigned long pl = p ? len - (unsigned long)(p - tok) : 0;
  if (p && (pl == 0 || pl >= sizeof port)) return why(r, "bad port in $RELAY_HOST", 0);
  if (p) { memcpy(port, p, pl); port[pl] = 0; }
  else snprintf(port, sizeof port, "%u", r->port);
  struct addrinfo* res = 0;
  int g = resolve(r, host, port, &res);
  if (g != 0) {
    why(r, "cannot resolve ", host);
    str_cat2s(&r->why, ": ", gai_strerror(g));
    return -1;
  }
  int fd = -1, e = 0;
  for (struct addrinfo* a = res; a && fd < 0; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0) { e = errno; continue; }
    if (connect_bounded(r, fd, a->ai_addr, a->ai_addrlen) < 0) { e = errno; close(fd); fd = -1; }
  }
  freeaddrinfo(res);
  if (fd < 0) {
    why(r, "cannot connect to ", host);
    str_cat3s(&r->why, ":", port, ": ");
    str_cats(&r->why, strerror(e));
    return -1;
  }
  r->peer.len = r->peer_host.len = 0;
  if (!str_cat3s(&r->peer, host, ":", port) || !str_copys(&r->peer_host, host)) { close(fd); return why(r, "out of memory", 0); }
  return attach(r, fd);
}

void relay_close(struct relay* r, int quit)
{
  if (r->fd < 0) return;
  if (r->owner != (long)getpid()) {             /* a forked child: hands off */
    r->fd = -1;
    return;
  }
  if (quit && r->st == RS_IDLE && !r->in.error && !r->in.timedout && !r->out.error) {
    unsigned t = r->in.timeout_ms;
    r->in.timeout_ms = r->out.timeout_ms = t < 5000 ? t : 5000;   /* a polite bound */
    if (relay_send(r, "QUIT", 4) == 0 && obuf_flush(&r->out) == 0) {
      int tl;
      (void)ibuf_getline(&r->in, &r->line, RELAY_LINE_MAX, &tl);
    }
  }
  if (r->tls) { tls_free(r->tls); r->tls = 0; }
  ibuf_close(&r->in);
  obuf_close(&r->out);
  close(r->fd);
  r->fd = -1;
  r->st = RS_IDLE;
}

static void reply_free(struct relay_reply* rep) { str_free(&rep->text); }

void relay_free(struct relay* r)
{
  str* strs[] = { &r->helo, &r->peer, &r->peer_host, &r->xclient_sent, &r->rcpts, &r->line, &r->cmd,
                  &r->chunk, &r->why, &r->caps.xforward, &r->caps.xclient };
  for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) str_free(strs[i]);
  struct relay_reply* reps[] = { &r->reply, &r->aux, &r->first_ok, &r->first_fail };
  for (size_t i = 0; i < sizeof reps / sizeof reps[0]; i++) reply_free(reps[i]);
}

static int write_failed(struct relay* r)
{
  return why(r, r->fd < 0 ? "no connection to the next hop"
             : r->out.timedout ? "timeout writing to the next hop" : "lost connection writing to the next hop", 0);
}

int relay_send(struct relay* r, const char* line, unsigned long len)
{
  if (r->fd < 0 || obuf_write(&r->out, line, len) < 0 || obuf_write(&r->out, "\r\n", 2) < 0) return write_failed(r);
  return 0;
}

int relay_write(struct relay* r, const char* b, unsigned long len)
{
  if (r->fd < 0 || obuf_write(&r->out, b, len) < 0) return write_failed(r);
  return 0;
}

static int broken(struct relay* r, const char* what)
{
  why(r, what, 0);
  if (r->peer.len) { str_cat2s(&r->why, " from ", r->peer.s); }
  r->st = RS_IDLE;
  relay_close(r, 0);
  return -1;
}

int relay_reply(struct relay* r, struct relay_reply* rep)
{
  if (r->fd < 0) return why(r, "no connection to the next hop", 0);
  rep->code = 0;
  rep->text.len = 0;
  if (obuf_flush(&r->out) < 0)
    return broken(r, r->out.timedout ? "timeout writing to the next hop" : "lost connection writing to the next hop");
  for (unsigned n = 0; ; n++) {
    int toolong;
    int k = ibuf_getline(&r->in, &r->line, RELAY_LINE_MAX, &toolong);
    if (k <= 0)
      return broken(r, k == 0 ? "connection closed by the next hop"
                    : r->in.timedout ? "timeout reading from the next hop" : "lost connection reading from the next hop");
    unsigned code;
    int last;
    const char* t;
    unsigned long tl;
    if (relay_reply_line(r->line.s, r->line.len, &code, &last, &t, &tl) < 0 || (n && code != rep->code)
        || n >= RELAY_REPLY_LINES)
      return broken(r, "malformed reply");
    rep->code = code;
    if (relay_reply_append(&rep->text, code, t, tl) < 0) return broken(r, "out of memory");
    if (last) break;
  }
  rep->resp.number = rep->code;
  rep->resp.message = rep->text.s;
  return 0;
}

/* Send VERB NAME and read the reply into the capabilities; 0, -1 broken,
 * 1 refused. */
static int hello_as(struct relay* r, const char* verb, const char* name)
{
  str* c = &r->cmd;
  c->len = 0;
  if (!str_cat3s(c, verb, " ", name) || relay_send(r, c->s, c->len) < 0) return broken(r, "cannot send to the next hop");
  if (obuf_flush(&r->out) < 0) return broken(r, "lost connection writing to the next hop");
  relay_caps_clear(&r->caps);
  for (unsigned n = 0; ; n++) {
    int toolong;
    int k = ibuf_getline(&r->in, &r->line, RELAY_LINE_MAX, &toolong);
    if (k <= 0) return broken(r, "connection closed during EHLO");
    unsigned code;
    int last;
    const char* t;
    unsigned long tl;
    if (relay_reply_line(r->line.s, r->line.len, &code, &last, &t, &tl) < 0 || n >= 1000)
      return broken(r, "malformed EHLO reply");
    if (code != 250) {
      while (!last) {                        /* drain the rest of the refusal */
        k = ibuf_getline(&r->in, &r->line, RELAY_LINE_MAX, &toolong);
        if (k <= 0 || relay_reply_line(r->line.s, r->line.len, &code, &last, &t, &tl) < 0) return broken(r, "malformed reply");
      }
      return 1;
    }
    if (n > 0 && relay_caps_add(&r->caps, t, tl) < 0) return broken(r, "out of memory");
    if (last) return 0;
  }
}

static int fail_close(struct relay* r, const char* a, const char* b);
static int hello(struct relay* r, const char* verb) { return hello_as(r, verb, r->helo.s); }

int relay_rehello(struct relay* r, const char* name)
{
  int h = hello_as(r, r->lmtp ? "LHLO" : "EHLO", name && *name ? name : r->helo.s);
  if (h > 0) return fail_close(r, "next hop refused EHLO after XCLIENT", 0);
  return h;
}

static int greet(struct relay* r)
{
  if (relay_reply(r, &r->reply) < 0) return -1;
  if (r->reply.code != 220) {
    char code[8];
    snprintf(code, sizeof code, "%u ", r->reply.code);
    why(r, "next hop greeting: ", code);
    str_cats(&r->why, r->reply.text.s);
    relay_close(r, 0);
    return -1;
  }
  int h = hello(r, r->lmtp ? "LHLO" : "EHLO");
  if (h < 0) return -1;
  if (h > 0 && !r->lmtp) {
    h = hello(r, "HELO");        /* a plain SMTP server: no extensions */
    relay_caps_clear(&r->caps);
  }
  if (h != 0) {
    why(r, "next hop refused ", r->lmtp ? "LHLO" : "EHLO/HELO");
    relay_close(r, 0);
    return -1;
  }
  return 0;
}

static int fail_close(struct relay* r, const char* a, const char* b)
{
  why(r, a, b);
  relay_close(r, 0);
  return -1;
}

static int starttls(struct relay* r)
{
  if (!(r->caps.bits & CAP_STARTTLS)) {
    if (r->tls_mode == RT_MAY) return 0;
    return fail_close(r, "next hop does not offer STARTTLS", 0);
  }
  if (relay_send(r, "STARTTLS", 8) < 0 || relay_reply(r, &r->reply) < 0) return -1;
  if (r->reply.code != 220) {
    if (r->tls_mode == RT_MAY) return 0;
    return fail_close(r, "next hop refused STARTTLS: ", r->reply.text.s);
  }
  struct tls_client_opts o = {
    r->tls_mode == RT_VERIFY, r->tls_ca, r->tls_name ? r->tls_name : r->peer_host.s, r->tls_pin, r->tls_priority
  };
  str err = {0, 0, 0};
  r->tls = tls_client_start(&o, &r->in, &r->out, &err);
  if (!r->tls) {
    why(r, err.len ? err.s : "TLS handshake failed", 0);
    str_free(&err);
    relay_close(r, 0);
    return -1;
  }
  str_free(&err);
  if (tls_params(r->tls, &r->cmd) == 0) msg4("relay: TLS to ", r->peer.s, ": ", r->cmd.s);
  int h = hello(r, r->lmtp ? "LHLO" : "EHLO");
  if (h != 0) return h < 0 ? -1 : fail_close(r, "next hop refused EHLO after STARTTLS", 0);
  return 0;
}

/* AUTH PLAIN or LOGIN; the secret is only ever base64 on the wire. */
static int authenticate(struct relay* r)
{
  if (!r->tls && !r->sockpath && !r->auth_insecure)
    return fail_close(r, "refusing to send AUTH credentials without TLS (set $RELAY_TLS)", 0);
  if (!(r->caps.bits & CAP_AUTH) || !(r->caps.auth_plain || r->caps.auth_login))
    return fail_close(r, "next hop offers no AUTH PLAIN or LOGIN", 0);
  str tok = {0, 0, 0}, b64 = {0, 0, 0};
  int rc = -1;
  size_t ul = strlen(r->auth_user), pl = strlen(r->auth_pass);
  if (r->caps.auth_plain) {
    if (!str_catc(&tok, 0) || !str_catb(&tok, r->auth_user, (unsigned)ul) || !str_catc(&tok, 0)
        || !str_catb(&tok, r->auth_pass, (unsigned)pl) || !base64_encode(tok.s, tok.len, &b64)
        || !str_copys(&r->cmd, "AUTH PLAIN ") || !str_cat(&r->cmd, &b64))
      goto out;
    if (relay_send(r, r->cmd.s, r->cmd.len) < 0 || relay_reply(r, &r->reply) < 0) goto out;
  } else {
    if (relay_send(r, "AUTH LOGIN", 10) < 0 || relay_reply(r, &r->reply) < 0) goto out;
    if (r->reply.code != 334) goto refused;
    if (!base64_encode(r->auth_user, ul, &b64) || relay_send(r, b64.s, b64.len) < 0 || relay_reply(r, &r->reply) < 0) goto out;
    if (r->reply.code != 334) goto refused;
    if (!base64_encode(r->auth_pass, pl, &b64) || relay_send(r, b64.s, b64.len) < 0 || relay_reply(r, &r->reply) < 0) goto out;
  }
refused:
  if (r->reply.code == 235) rc = 0;
  else { fail_close(r, "next hop refused AUTH: ", r->reply.text.s); }
out:
  if (rc < 0 && r->fd >= 0) fail_close(r, "AUTH to the next hop failed", 0);
  if (tok.s) memset(tok.s, 0, tok.len);
  if (b64.s) memset(b64.s, 0, b64.len);
  if (r->cmd.s) memset(r->cmd.s, 0, r->cmd.len);
  r->cmd.len = 0;
  str_free(&tok);
  str_free(&b64);
  return rc;
}

static int setup(struct relay* r)
{
  if (greet(r) < 0) return -1;
  if (r->tls_mode != RT_NONE && starttls(r) < 0) return -1;
  if (r->auth_user && authenticate(r) < 0) return -1;
  msg2("relay: connected to ", r->peer.s);
  return 0;
}

int relay_open(struct relay* r)
{
  if (r->fd >= 0) return 0;
  if (r->sockpath) return connect_unix(r) < 0 ? -1 : setup(r);
  const char* h = r->hosts;
  while (*h) {
    while (*h == ' ' || *h == '\t' || *h == ',') h++;
    if (!*h) break;
    unsigned long n = strcspn(h, " \t,");
    if (connect_host(r, h, n) == 0 && setup(r) == 0) return 0;
    warn2("relay: ", r->why.s ? r->why.s : "connection failed");
    h += n;
  }
  return -1;
}

/* check.c -- `pop3front-auth --check` and `imapfront-auth --check` (API:
 * check.h): what the program reads at start, checked without a session.
 *   - the CVM module chains (pop3front-auth's argument, $CVM_SASL_PLAIN,
 *     $CVM_SASL_LOGIN, $CVM_SASL_CRAM_MD5): each comma-separated element
 *     cvm-command:PATH or PATH is an executable file (run with execve, no
 *     $PATH search), cvm-local:PATH a UNIX socket, cvm-udp:HOST:PORT well
 *     formed (not resolved);
 *   - imapfront-auth: $CVM_SASL_PLAIN is set (it refuses to start without);
 *   - the numeric settings are decimal numbers;
 *   - the TLS files and credentials when $TLS_CERTFILE is set;
 *   - the program run after a login is executable ($PATH searched, as
 *     execvp does).
 * One table row per program; lines and verdict through lib/confcheck.h. */
#include "auth/check.h"
#include "lib/confcheck.h"
#include "tls/tlscheck.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct auth_program
{
  const char* who;               /* line prefix */
  const char* usage;
  int cvm_arg;                   /* argv[1] is a CVM chain (pop3front-auth) */
  const char* required_var;      /* NULL, or a setting the program needs */
  const char* const* numbers;    /* numeric settings it reads */
};

static const char* const pop3_numbers[] = {
  "MAXUSERCMD", "MAXAUTHFAIL", "MAX_LINE_LENGTH", "AUTH_TIMEOUT", "AUTH_SESSION_TIMEOUT", "TIMEOUT",
  "SESSION_TIMEOUT", "CVM_TIMEOUT", "CVM_RANDOM_BYTES", 0
};
static const char* const imap_numbers[] = {
  "MAXAUTHFAIL", "MAX_LINE_LENGTH", "MAX_LITERAL_LENGTH", "AUTH_TIMEOUT", "AUTH_SESSION_TIMEOUT", "TIMEOUT",
  "SESSION_TIMEOUT", "CVM_TIMEOUT", "CVM_RANDOM_BYTES", 0
};

static const struct auth_program pop3front_auth = {
  "pop3front-auth --check", "usage: pop3front-auth --check cvm program [args...]\n", 1, 0, pop3_numbers,
};
static const struct auth_program imapfront_auth = {
  "imapfront-auth --check", "usage: imapfront-auth --check imapd [args...]\n", 0, "CVM_SASL_PLAIN", imap_numbers,
};

static const char* const sasl_vars[] = { "CVM_SASL_PLAIN", "CVM_SASL_LOGIN", "CVM_SASL_CRAM_MD5" };

static const char* after(const char* s, const char* prefix)
{
  size_t n = strlen(prefix);
  return strncmp(s, prefix, n) == 0 ? s + n : 0;
}

/* One chain element (NUL-terminated). */
static void cvm_element(struct confcheck* c, const char* label, const char* elem)
{
  const char* arg;
  if ((arg = after(elem, "cvm-local:")) != 0) confcheck_socket(c, label, arg);
  else if ((arg = after(elem, "cvm-udp:")) != 0) {
    const char* why = confcheck_hostport(arg, strlen(arg), 1);
    if (why) {
      c->problems++;
      fprintf(stderr, "%s: %s %s: %s\n", c->who, label, elem, why);
    }
  } else {
    if ((arg = after(elem, "cvm-command:")) == 0) arg = elem;
    confcheck_program(c, label, arg, 0, 0);
  }
}

static void cvm_chain(struct confcheck* c, const char* label, const char* chain)
{
  if (!*chain) { confcheck_problem(c, label, "empty CVM module name"); return; }
  char* copy = strdup(chain);
  if (!copy) { confcheck_problem(c, label, "out of memory"); return; }
  for (char* elem = copy; elem; ) {
    char* comma = strchr(elem, ',');
    if (comma) *comma = 0;
    if (*elem) cvm_element(c, label, elem);
    else confcheck_problem(c, label, "empty element in the CVM chain");
    elem = comma ? comma + 1 : 0;
  }
  free(copy);
}

static int check_auth_program(const struct auth_program* p, int argc, char** argv)
{
  if (argc < 2 + p->cvm_arg) {
    fputs(p->usage, stderr);
    return 100;
  }
  struct confcheck c = { p->who, 0, 0 };
  if (p->cvm_arg) cvm_chain(&c, "CVM module", argv[1]);
  if (p->required_var && !getenv(p->required_var)) {
    char label[64];
    snprintf(label, sizeof label, "$%s", p->required_var);
    confcheck_problem(&c, label, "not set");
  }
  for (size_t i = 0; i < sizeof sasl_vars / sizeof *sasl_vars; i++) {
    const char* v = getenv(sasl_vars[i]);
    char label[64];
    snprintf(label, sizeof label, "$%s", sasl_vars[i]);
    if (v) cvm_chain(&c, label, v);
  }
  confcheck_numbers(&c, p->numbers);
  tls_check(&c);
  confcheck_program(&c, "program", argv[1 + p->cvm_arg], 0, 1);
  return confcheck_verdict(&c);
}

int pop3front_auth_check(int argc, char** argv) { return check_auth_program(&pop3front_auth, argc, argv); }
int imapfront_auth_check(int argc, char** argv) { return check_auth_program(&imapfront_auth, argc, argv); }

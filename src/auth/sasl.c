/* sasl.c -- the cvm-sasl engine (contract in sasl.h).
 *
 * A table maps each mechanism to its name and two functions: start (the
 * AUTH argument's initial response, or none) and step (one client line,
 * decoded).  The engine holds all exchange state in struct sasl_state; it
 * never reads or writes the client and never logs.  Credentials are sent
 * to the CVM with cvm_authenticate(); on success the CVM variables are
 * exported with cvm_setenv().  Secrets held in the state are wiped by
 * sasl_state_free(). */
#include "sasl.h"
#include "base64.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <unistd.h>

/* ---- configuration ---- */

static int copy_env(str* s, const char* (*get)(const char*), const char* name)
{
  const char* v = get(name);
  return str_copys(s, v ? v : "");
}

static const char* process_getenv(const char* name) { return getenv(name); }

int sasl_config_init(struct sasl_config* cfg) { return sasl_config_init_env(cfg, process_getenv); }

int sasl_config_init_env(struct sasl_config* cfg, const char* (*get)(const char*))
{
  memset(cfg, 0, sizeof *cfg);
  const char* plain = get("CVM_SASL_PLAIN");
  const char* login = get("CVM_SASL_LOGIN");
  int ok = str_copys(&cfg->cvm[SASL_MECH_LOGIN], plain ? plain : login ? login : "")
    && copy_env(&cfg->cvm[SASL_MECH_PLAIN], get, "CVM_SASL_PLAIN")
    && copy_env(&cfg->cvm[SASL_MECH_CRAM_MD5], get, "CVM_SASL_CRAM_MD5");

  /* DOMAIN credential: ${PROTO}LOCALHOST only when $PROTO is set */
  const char* proto = get("PROTO");
  ok = ok && str_copys(&cfg->domain, "");
  if (ok && proto && *proto) {
    str name = {0, 0, 0};
    ok = str_cat2s(&name, proto, "LOCALHOST") && copy_env(&cfg->domain, get, name.s);
    str_free(&name);
  }
  /* CRAM-MD5 host: ${PROTO:-TCP}LOCALHOST or "unknown" */
  if (ok) {
    const char* h = cvm_ucspi_domain_env(get);
    ok = str_copys(&cfg->host, h ? h : "unknown");
  }
  cfg->timeout_ms = 0;
  if (!ok) sasl_config_free(cfg);
  return ok;
}

void sasl_config_free(struct sasl_config* cfg)
{
  for (int i = 0; i < SASL_MECH_COUNT; i++) str_free(&cfg->cvm[i]);
  str_free(&cfg->domain);
  str_free(&cfg->host);
}

static int configured(const struct sasl_config* cfg, int mech)
{
  return cfg->cvm[mech].len > 0;
}

int sasl_enabled(const struct sasl_config* cfg)
{
  for (int i = 0; i < SASL_MECH_COUNT; i++)
    if (configured(cfg, i)) return 1;
  return 0;
}

static const char* const mech_names[SASL_MECH_COUNT] = { "LOGIN", "PLAIN", "CRAM-MD5" };

const char* sasl_mech_name(int mech)
{
  return (mech >= 0 && mech < SASL_MECH_COUNT) ? mech_names[mech] : "";
}

/* Registered SASL mechanism names a client may send (IANA registry, the
 * common ones): only these are written to a log as the client wrote them. */
static const char* const known_mechs[] = {
  "LOGIN", "PLAIN", "CRAM-MD5", "DIGEST-MD5", "SCRAM-SHA-1", "SCRAM-SHA-1-PLUS",
  "SCRAM-SHA-256", "SCRAM-SHA-256-PLUS", "GSSAPI", "GS2-KRB5", "NTLM", "EXTERNAL",
  "ANONYMOUS", "OAUTHBEARER", "XOAUTH2", "OTP", "SKEY",
};

int sasl_mech_loggable(const char* word, unsigned long len)
{
  for (size_t i = 0; i < sizeof known_mechs / sizeof known_mechs[0]; i++)
    if (len == strlen(known_mechs[i]) && strncasecmp(word, known_mechs[i], len) == 0) return 1;
  return 0;
}

int sasl_mechanisms(const struct sasl_config* cfg, str* out)
{
  if (!str_copys(out, "")) return 0;
  for (int i = 0; i < SASL_MECH_COUNT; i++)
    if (configured(cfg, i))
      if ((out->len && !str_catc(out, ' ')) || !str_cats(out, mech_names[i])) return 0;
  return 1;
}

/* ---- results ---- */

static const struct { unsigned code; const char* text; } results[] = {
  [SASL_SUCCESS] = { 235, "Authentication succeeded." },
  [SASL_CHALLENGE] = { 334, "" },
  [SASL_AUTH_FAILED] = { 501, "Authentication failed." },
  [SASL_NO_MECH] = { 504, "Unrecognized authentication mechanism." },
  [SASL_RESP_REQUIRED] = { 535, "Response was required but not given." },
  [SASL_RESP_NOTALLOWED] = { 535, "Initial response not allowed." },
  [SASL_RESP_BAD] = { 501, "Could not decode the response." },
  [SASL_EOF] = { 535, "End of file reached." },
  [SASL_TEMP_FAIL] = { 451, "Internal error." },
};

unsigned sasl_code(int status)
{
  if (status < 0 || status > SASL_TEMP_FAIL) status = SASL_TEMP_FAIL;
  return results[status].code;
}

const char* sasl_text(int status)
{
  if (status < 0 || status > SASL_TEMP_FAIL) status = SASL_TEMP_FAIL;
  return results[status].text;
}

/* ---- state ---- */

void sasl_state_init(struct sasl_state* st, const struct sasl_config* cfg)
{
  memset(st, 0, sizeof *st);
  st->config = cfg;
  st->mech = -1;
}

static void wipe(str* s)
{
  if (s->s) memset(s->s, 0, s->size);
  str_free(s);
}

void sasl_state_free(struct sasl_state* st)
{
  wipe(&st->mech_name);
  wipe(&st->challenge);
  wipe(&st->raw_challenge);
  wipe(&st->account);
  cvm_reply_free(&st->reply);
  const struct sasl_config* cfg = st->config;
  sasl_state_init(st, cfg);
}

/* Set the challenge to the base64 of text. */
static int challenge(struct sasl_state* st, const char* text, unsigned long len)
{
  if (!base64_encode(text, len, &st->challenge)) return SASL_TEMP_FAIL;
  return SASL_CHALLENGE;
}

/* ---- the CVM call ---- */

/* Split the account, add the domain, send extra credentials. */
static int check(struct sasl_state* st, const char* account, unsigned long alen,
                 const struct cvm_credential* extra, unsigned nextra)
{
  const struct sasl_config* cfg = st->config;
  str acc = {0, 0, 0}, dom = {0, 0, 0};
  int status = SASL_TEMP_FAIL;
  if (alen > 255) { status = SASL_AUTH_FAILED; goto out; }
  for (unsigned i = 0; i < nextra; i++)
    if (extra[i].len > 255) { status = SASL_AUTH_FAILED; goto out; }
  /* CVM string credentials cannot carry NUL: such a name cannot be valid */
  if (memchr(account, 0, alen)) { status = SASL_AUTH_FAILED; goto out; }
  if (!str_copyb(&acc, account, (unsigned)alen) || !str_copy(&dom, &cfg->domain)) goto out;
  if (cvm_split_account(&acc, &dom) < 0) goto out;
  if (!str_copy(&st->account, &acc)) goto out;

  struct cvm_credential c[8];
  unsigned n = 0;
  c[n++] = (struct cvm_credential){ CVM_CRED_ACCOUNT, acc.s, acc.len };
  c[n++] = (struct cvm_credential){ CVM_CRED_DOMAIN, dom.s, dom.len };
  for (unsigned i = 0; i < nextra && n < 8; i++) c[n++] = extra[i];

  int rc = cvm_authenticate(cfg->cvm[st->mech].s, c, n, cfg->timeout_ms, &st->reply);
  if (rc == CVME_OK)
    status = cvm_setenv(&st->reply) == 0 ? SASL_SUCCESS : SASL_TEMP_FAIL;
  else if (rc == CVME_PERMFAIL || rc == CVME_BAD_CLIDATA)
    status = SASL_AUTH_FAILED;    /* rejected, or cannot fit a CVM packet */
  else
    status = SASL_TEMP_FAIL;
out:
  wipe(&acc);
  wipe(&dom);
  return status;
}

/* ---- mechanisms ---- */

/* PLAIN: authzid NUL authcid NUL password. */
static int plain_step(struct sasl_state* st, const str* resp)
{
  const char* p = resp->s;
  const char* n1 = memchr(p, 0, resp->len);
  if (n1 == 0) return SASL_RESP_BAD;
  const char* n2 = memchr(n1 + 1, 0, resp->len - (unsigned long)(n1 + 1 - p));
  if (n2 == 0) return SASL_RESP_BAD;
  const char* pass = n2 + 1;
  unsigned long plen = resp->len - (unsigned long)(pass - p);
  if (memchr(pass, 0, plen)) return SASL_AUTH_FAILED;
  struct cvm_credential c = { CVM_CRED_PASSWORD, pass, (unsigned)plen };
  return check(st, n1 + 1, (unsigned long)(n2 - n1 - 1), &c, 1);
}

static int plain_start(struct sasl_state* st, const str* initial)
{
  if (initial == 0) { st->step = 1; return challenge(st, "", 0); }
  return plain_step(st, initial);
}

/* LOGIN: user name, then password. */
static int login_step(struct sasl_state* st, const str* resp)
{
  if (resp->len == 0) return SASL_RESP_BAD;
  if (st->step == 1) {
    if (!str_copy(&st->account, resp)) return SASL_TEMP_FAIL;
    st->step = 2;
    return challenge(st, "Password:", 9);
  }
  if (memchr(resp->s, 0, resp->len)) return SASL_AUTH_FAILED;
  struct cvm_credential c = { CVM_CRED_PASSWORD, resp->s, resp->len };
  str user = {0, 0, 0};
  if (!str_copy(&user, &st->account)) return SASL_TEMP_FAIL;
  int r = check(st, user.s, user.len, &c, 1);
  wipe(&user);
  return r;
}

static int login_start(struct sasl_state* st, const str* initial)
{
  st->step = 1;
  if (initial == 0) return challenge(st, "Username:", 9);
  return login_step(st, initial);
}

/* CRAM-MD5: challenge <PID.SEC.USEC@HOST>, response "user HEX32". */
static int cram_start(struct sasl_state* st, const str* initial)
{
  if (initial != 0) return SASL_RESP_NOTALLOWED;
  struct timeval tv;
  gettimeofday(&tv, 0);
  str* c = &st->raw_challenge;
  char usec[7];
  unsigned long u = (unsigned long)tv.tv_usec % 1000000;
  for (int i = 5; i >= 0; i--) { usec[i] = (char)('0' + u % 10); u /= 10; }
  usec[6] = 0;
  if (!str_copys(c, "<") || !str_catu(c, (unsigned long)getpid()) || !str_catc(c, '.')
      || !str_catu(c, (unsigned long)tv.tv_sec) || !str_catc(c, '.')
      || !str_cats(c, usec) || !str_catc(c, '@') || !str_cat(c, &st->config->host)
      || !str_catc(c, '>'))
    return SASL_TEMP_FAIL;
  st->step = 1;
  return challenge(st, c->s, c->len);
}

static int hexval(char h)
{
  if (h >= '0' && h <= '9') return h - '0';
  if (h >= 'a' && h <= 'f') return h - 'a' + 10;
  if (h >= 'A' && h <= 'F') return h - 'A' + 10;
  return -1;
}

static int cram_step(struct sasl_state* st, const str* resp)
{
  int found = str_findlast(resp, ' ');
  if (found <= 0) return SASL_RESP_BAD;
  unsigned sp = (unsigned)found;
  if (resp->len - sp - 1 != 32) return SASL_RESP_BAD;
  char digest[16];
  for (int i = 0; i < 16; i++) {
    int hi = hexval(resp->s[sp + 1 + 2 * i]), lo = hexval(resp->s[sp + 2 + 2 * i]);
    if (hi < 0 || lo < 0) return SASL_RESP_BAD;
    digest[i] = (char)(hi << 4 | lo);
  }
  struct cvm_credential c[3] = {
    { CVM_CRED_CHALLENGE, st->raw_challenge.s, st->raw_challenge.len },
    { CVM_CRED_RESPONSE, digest, 16 },
    { CVM_CRED_RESPONSE_TYPE, "CRAM-MD5", 8 },
  };
  int r = check(st, resp->s, sp, c, 3);
  memset(digest, 0, sizeof digest);
  return r;
}

static const struct mechanism
{
  int (*start)(struct sasl_state*, const str* initial);  /* initial may be 0 */
  int (*step)(struct sasl_state*, const str* response);
} mechanisms[SASL_MECH_COUNT] = {
  [SASL_MECH_LOGIN] = { login_start, login_step },
  [SASL_MECH_PLAIN] = { plain_start, plain_step },
  [SASL_MECH_CRAM_MD5] = { cram_start, cram_step },
};

/* ---- the exchange ---- */

/* After a final status no more lines are accepted. */
static int finish(struct sasl_state* st, int status)
{
  if (status != SASL_CHALLENGE) st->step = -1;
  return status;
}

int sasl_start(struct sasl_state* st, const char* arg, unsigned long len)
{
  unsigned long w = 0;
  while (w < len && arg[w] != ' ') w++;
  unsigned long r = w;
  while (r < len && arg[r] == ' ') r++;
  st->step = -1;
  /* the name as written, for the log; a word that is not a mechanism name
   * may be a credential (`AUTH <base64>`): never logged */
  if (sasl_mech_loggable(arg, w) ? !str_copyb(&st->mech_name, arg, (unsigned)w)
                                 : !str_copys(&st->mech_name, SASL_LOG_HIDDEN))
    return SASL_TEMP_FAIL;
  str initial = {0, 0, 0};
  int have_initial = r < len;
  int status;
  if (have_initial && !base64_decode(arg + r, len - r, &initial)) {
    st->reason = "bad response";
    str_free(&initial);
    return SASL_RESP_BAD;
  }
  st->mech = -1;
  for (int i = 0; i < SASL_MECH_COUNT; i++)
    if (configured(st->config, i) && w == strlen(mech_names[i])
        && strncasecmp(arg, mech_names[i], w) == 0)
      st->mech = i;
  if (st->mech < 0) status = SASL_NO_MECH;
  else status = mechanisms[st->mech].start(st, have_initial ? &initial : 0);
  wipe(&initial);
  return finish(st, status);
}

int sasl_response(struct sasl_state* st, const char* line, unsigned long len)
{
  if (st->mech < 0 || st->step < 0) return SASL_TEMP_FAIL;   /* misuse */
  if (len == 0 || line[0] == '*') {
    st->reason = "aborted";
    return finish(st, SASL_AUTH_FAILED);
  }
  str resp = {0, 0, 0};
  if (!base64_decode(line, len, &resp)) {
    st->reason = "bad response";
    str_free(&resp);
    return finish(st, SASL_RESP_BAD);
  }
  int status = mechanisms[st->mech].step(st, &resp);
  wipe(&resp);
  return finish(st, status);
}

/* ---- log texts ---- */

int sasl_log_reason(const struct sasl_state* st, str* out)
{
  if (st->reason == 0) return 0;
  return str_copys(out, "SASL AUTH ") && str_cat(out, &st->mech_name)
    && str_cat2s(out, " failed: ", st->reason);
}

int sasl_log_line(const struct sasl_state* st, int status, str* out)
{
  /* an undecodable initial response is logged by the reason line only */
  if (st->mech < 0 && st->reason != 0) { str_truncate(out, 0); return 0; }
  if (!str_copys(out, "SASL AUTH ") || !str_cat(out, &st->mech_name)) return 0;
  if (status != SASL_SUCCESS) return str_cats(out, " failed");
  const struct cvm_reply* r = &st->reply;
  if (!str_cats(out, " username=") || !str_cat(out, &r->username)) return 0;
  if (CVM_HAS(r, CVM_FACT_SYS_USERNAME)
      && (!str_cats(out, " sys_username=") || !str_cat(out, &r->sys_username)))
    return 0;
  if (CVM_HAS(r, CVM_FACT_DOMAIN)
      && (!str_cats(out, " domain=") || !str_cat(out, &r->domain)))
    return 0;
  return 1;
}

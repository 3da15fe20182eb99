/* sasl_engine -- unit tests of src/auth/sasl.c: configuration and the
 * mechanism list (the libcvm PLAIN-dropping quirk fixed), every status of
 * PLAIN, LOGIN and CRAM-MD5 driven without any I/O, the credentials that
 * reach the CVM (recorded by a shell module written at run time), log
 * texts, and result codes/texts. */
#include "../../src/auth/sasl.c"
#include "tap.h"
#include <stdio.h>
#include <sys/stat.h>

static char dir[] = "/tmp/saslunit.XXXXXX";
static char okmod[300], rejmod[300], recfile[300];

static void write_module(char* path, const char* name, const char* body)
{
  snprintf(path, 300, "%s/%s", dir, name);
  FILE* f = fopen(path, "w");
  fprintf(f, "#!/bin/sh\n%s\n", body);
  fclose(f);
  chmod(path, 0755);
}

static void clear_env(void)
{
  const char* v[] = { "CVM_SASL_PLAIN", "CVM_SASL_LOGIN", "CVM_SASL_CRAM_MD5", "PROTO", "TCPLOCALHOST" };
  for (unsigned i = 0; i < sizeof v / sizeof v[0]; i++) unsetenv(v[i]);
}

static int mechs_are(const char* expect)
{
  struct sasl_config cfg;
  str m = {0, 0, 0};
  int ok = sasl_config_init(&cfg) && sasl_mechanisms(&cfg, &m) && strcmp(m.s, expect) == 0;
  sasl_config_free(&cfg);
  str_free(&m);
  return ok;
}

/* Run start + responses; returns the last status; challenge of the last
 * SASL_CHALLENGE into *chal when non-NULL. */
static int run(struct sasl_config* cfg, const char* arg, const char** lines, str* chal, str* logline)
{
  struct sasl_state st;
  sasl_state_init(&st, cfg);
  int r = sasl_start(&st, arg, strlen(arg));
  while (r == SASL_CHALLENGE && lines && *lines) {
    if (chal) str_copy(chal, &st.challenge);
    r = sasl_response(&st, *lines, strlen(*lines));
    lines++;
  }
  if (r == SASL_CHALLENGE && chal) str_copy(chal, &st.challenge);
  if (logline) {
    str reason = {0, 0, 0};
    str_copys(logline, "");
    if (sasl_log_reason(&st, &reason)) { str_cat(logline, &reason); str_catc(logline, '|'); }
    str l = {0, 0, 0};
    if (sasl_log_line(&st, r, &l)) str_cat(logline, &l);
    str_free(&l);
    str_free(&reason);
  }
  sasl_state_free(&st);
  return r;
}

static int record_is(const char* expect)
{
  FILE* f = fopen(recfile, "r");
  char buf[1024] = "";
  size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
  if (f) fclose(f);
  buf[n] = 0;
  unlink(recfile);
  return strcmp(buf, expect) == 0;
}

int main(void)
{
  if (!mkdtemp(dir)) return 1;
  snprintf(recfile, sizeof recfile, "%s/rec", dir);
  char body[700];
  /* od prints the request so the test can see the credentials */
  snprintf(body, sizeof body, "od -An -c | tr -s ' \\n' ' ' >> %s; printf '\\000\\000\\001\\005alice\\002\\0011\\003\\0012\\005\\001/\\011\\002sa\\000'", recfile);
  write_module(okmod, "ok", body);
  snprintf(body, sizeof body, "cat > /dev/null; printf '\\144\\000\\000'; exit 100");
  write_module(rejmod, "rej", body);

  clear_env();
  CHECK(mechs_are(""), "nothing configured");
  setenv("CVM_SASL_PLAIN", "x", 1);
  CHECK(mechs_are("LOGIN PLAIN"), "PLAIN -> LOGIN PLAIN");
  setenv("CVM_SASL_CRAM_MD5", "x", 1);
  CHECK(mechs_are("LOGIN PLAIN CRAM-MD5"), "PLAIN+CRAM -> all three (quirk fixed)");
  unsetenv("CVM_SASL_PLAIN");
  CHECK(mechs_are("CRAM-MD5"), "CRAM only");
  setenv("CVM_SASL_LOGIN", "x", 1);
  CHECK(mechs_are("LOGIN CRAM-MD5"), "LOGIN+CRAM");
  clear_env();

  struct sasl_config cfg;
  setenv("CVM_SASL_PLAIN", okmod, 1);
  setenv("CVM_SASL_CRAM_MD5", okmod, 1);
  setenv("PROTO", "TCP", 1);
  setenv("TCPLOCALHOST", "mx.example", 1);
  CHECK(sasl_config_init(&cfg) && sasl_enabled(&cfg), "config");
  str ch = {0, 0, 0}, log = {0, 0, 0};

  CHECK(run(&cfg, "PLAIN AGFsaWNlAHNlY3JldA==", 0, 0, &log) == SASL_SUCCESS, "PLAIN initial response");
  CHECK(strcmp(log.s, "SASL AUTH PLAIN username=alice sys_username=sa") == 0, "success log line");
  CHECK(record_is(" 002 \\0 001 005 a l i c e 002 \\n m x . e x a m p l e 003 006 s e c r e t \\0 "),
        "credentials: account, domain, password");
  const char* user = getenv("USER");
  const char* uid = getenv("UID");
  CHECK(user && strcmp(user, "alice") == 0 && uid && strcmp(uid, "1") == 0, "variables exported");
  const char* plain_lines[] = { "AGFsaWNlAHNlY3JldA==", 0 };
  CHECK(run(&cfg, "plain", plain_lines, &ch, 0) == SASL_SUCCESS && ch.len == 0, "PLAIN: empty challenge, lower case");
  unlink(recfile);
  CHECK(run(&cfg, "PLAIN   YWJj", 0, 0, &log) == SASL_RESP_BAD && strcmp(log.s, "SASL AUTH PLAIN failed") == 0,
        "PLAIN without NULs: could not decode, no reason");
  CHECK(run(&cfg, "PLAIN !!", 0, 0, &log) == SASL_RESP_BAD && strcmp(log.s, "SASL AUTH PLAIN failed: bad response|") == 0,
        "bad initial base64: reason line only");
  CHECK(run(&cfg, "FOO !!", 0, 0, 0) == SASL_RESP_BAD, "bad base64 before unknown mechanism");
  /* issue 10 item 8: a word that is no registered mechanism name may be a
   * credential (AUTH <base64>): logged hidden */
  CHECK(run(&cfg, "FOO", 0, 0, &log) == SASL_NO_MECH && strcmp(log.s, "SASL AUTH [hidden] failed") == 0, "unknown mechanism");
  CHECK(run(&cfg, "AGFsaWNlAHNlY3JldA==", 0, 0, &log) == SASL_NO_MECH
        && strcmp(log.s, "SASL AUTH [hidden] failed") == 0, "base64 in place of the mechanism: hidden");
  CHECK(run(&cfg, "AGFsaWNlAHNlY3JldA== AGFsaWNlAHNlY3JldA==", 0, 0, &log) == SASL_NO_MECH
        && strstr(log.s, "AGFs") == 0, "base64 mechanism and initial response: hidden");
  CHECK(run(&cfg, "Digest-MD5", 0, 0, &log) == SASL_NO_MECH
        && strcmp(log.s, "SASL AUTH Digest-MD5 failed") == 0, "a registered mechanism name is logged as written");
  CHECK(run(&cfg, "PLAINX", 0, 0, 0) == SASL_NO_MECH, "prefix is not a mechanism");
  CHECK(run(&cfg, "", 0, 0, 0) == SASL_NO_MECH, "empty argument");
  const char* abort1[] = { "*", 0 };
  CHECK(run(&cfg, "PLAIN", abort1, 0, &log) == SASL_AUTH_FAILED
        && strcmp(log.s, "SASL AUTH PLAIN failed: aborted|SASL AUTH PLAIN failed") == 0, "* aborts");
  const char* abort2[] = { "", 0 };
  CHECK(run(&cfg, "LOGIN", abort2, 0, 0) == SASL_AUTH_FAILED, "empty line aborts");
  const char* badline[] = { "YWJ", 0 };
  CHECK(run(&cfg, "LOGIN", badline, 0, &log) == SASL_RESP_BAD
        && strcmp(log.s, "SASL AUTH LOGIN failed: bad response|SASL AUTH LOGIN failed") == 0, "bad base64 line");

  const char* login[] = { "YWxpY2VAZXgub3Jn", "c2VjcmV0", 0 };
  str c1 = {0, 0, 0};
  struct sasl_state st;
  sasl_state_init(&st, &cfg);
  CHECK(sasl_start(&st, "LOGIN", 5) == SASL_CHALLENGE && strcmp(st.challenge.s, "VXNlcm5hbWU6") == 0, "LOGIN: Username:");
  CHECK(sasl_response(&st, login[0], strlen(login[0])) == SASL_CHALLENGE && strcmp(st.challenge.s, "UGFzc3dvcmQ6") == 0,
        "LOGIN: Password:");
  CHECK(sasl_response(&st, login[1], strlen(login[1])) == SASL_SUCCESS, "LOGIN success");
  CHECK(sasl_response(&st, login[1], strlen(login[1])) == SASL_TEMP_FAIL, "no response after the end");
  sasl_state_free(&st);
  CHECK(record_is(" 002 \\0 001 005 a l i c e 002 006 e x . o r g 003 006 s e c r e t \\0 "),
        "account split at @ replaces the domain");
  const char* pw_only[] = { "c2VjcmV0", 0 };
  CHECK(run(&cfg, "LOGIN YWxpY2U=", pw_only, &c1, 0) == SASL_SUCCESS, "LOGIN with initial user name");
  unlink(recfile);
  const char* empty_user[] = { "=", 0 };
  CHECK(run(&cfg, "LOGIN", empty_user, 0, 0) == SASL_RESP_BAD, "LOGIN: '=' is bad base64");
  CHECK(run(&cfg, "LOGIN AA==", pw_only, 0, 0) == SASL_AUTH_FAILED, "LOGIN: NUL user name fails");
  CHECK(record_is(""), "NUL user name never reaches the CVM");

  /* CRAM-MD5 */
  sasl_state_init(&st, &cfg);
  CHECK(sasl_start(&st, "cram-md5", 8) == SASL_CHALLENGE, "CRAM-MD5 challenge");
  str raw = {0, 0, 0};
  CHECK(base64_decode(st.challenge.s, st.challenge.len, &raw) && raw.s[0] == '<'
        && strstr(raw.s, "@mx.example>") != 0 && raw.s[raw.len - 1] == '>', "challenge <pid.sec.usec@host>");
  const char* dot2 = strchr(strchr(raw.s, '.') + 1, '.');
  CHECK(dot2 && strchr(dot2, '@') - dot2 == 7, "microseconds have 6 digits");
  str resp = {0, 0, 0}, b = {0, 0, 0};
  str_copys(&resp, "alice 0123456789abcdefABCDEF0123456789");
  base64_encode(resp.s, resp.len, &b);
  CHECK(sasl_response(&st, b.s, b.len) == SASL_SUCCESS, "CRAM-MD5 response accepted by the module");
  sasl_state_free(&st);
  {
    FILE* f = fopen(recfile, "r");
    char rec[2048] = "";
    size_t n = f ? fread(rec, 1, sizeof rec - 1, f) : 0;
    if (f) fclose(f);
    rec[n] = 0;
    CHECK(strstr(rec, " 001 005 a l i c e 002 \\n m x . e x a m p l e 005 ") != 0, "CRAM: account and domain");
    CHECK(strstr(rec, " 006 020 001 # E g 211 253 315 357 253 315 357 001 # E g 211 ") != 0, "CRAM: 16 raw digest bytes");
    CHECK(strstr(rec, " \\a \\b C R A M - M D 5 \\0 ") != 0, "CRAM: response type");
    unlink(recfile);
  }
  const char* bad_cram[] = { "YWxpY2UgMDEy", 0 };    /* "alice 012" */
  CHECK(run(&cfg, "CRAM-MD5", bad_cram, 0, 0) == SASL_RESP_BAD, "short digest");
  str_copys(&resp, "alice 0123456789abcdefABCDEF012345678g");
  base64_encode(resp.s, resp.len, &b);
  const char* bad_hex[] = { b.s, 0 };
  CHECK(run(&cfg, "CRAM-MD5", bad_hex, 0, 0) == SASL_RESP_BAD, "non-hex digest");
  CHECK(run(&cfg, "CRAM-MD5 YWJj", 0, 0, 0) == SASL_RESP_NOTALLOWED, "initial response not allowed");
  unlink(recfile);

  /* lengths: never sent */
  char big[400];
  memset(big, 'x', sizeof big);
  big[0] = 0; big[6] = 0;
  memcpy(big + 1, "alice", 5);
  base64_encode(big, 7 + 300, &b);
  str arg = {0, 0, 0};
  str_copys(&arg, "PLAIN "); str_cat(&arg, &b);
  CHECK(run(&cfg, arg.s, 0, 0, 0) == SASL_AUTH_FAILED, "300-byte password: failed");
  CHECK(record_is(""), "over-long credential never reaches the CVM");

  /* rejection, temporary failure */
  sasl_config_free(&cfg);
  setenv("CVM_SASL_PLAIN", rejmod, 1);
  sasl_config_init(&cfg);
  CHECK(run(&cfg, "PLAIN AGFsaWNlAHNlY3JldA==", 0, 0, 0) == SASL_AUTH_FAILED, "rejected");
  sasl_config_free(&cfg);
  setenv("CVM_SASL_PLAIN", "/nonexistent/module", 1);
  unsetenv("PROTO");
  sasl_config_init(&cfg);
  CHECK(cfg.domain.len == 0 && strcmp(cfg.host.s, "mx.example") == 0, "PROTO unset: empty domain, host via TCP");
  CHECK(run(&cfg, "PLAIN AGFsaWNlAHNlY3JldA==", 0, 0, 0) == SASL_TEMP_FAIL, "module missing: temporary");
  sasl_config_free(&cfg);

  CHECK(sasl_code(SASL_AUTH_FAILED) == 501 && strcmp(sasl_text(SASL_AUTH_FAILED), "Authentication failed.") == 0, "501 text");
  CHECK(sasl_code(SASL_NO_MECH) == 504 && strcmp(sasl_text(SASL_NO_MECH), "Unrecognized authentication mechanism.") == 0, "504");
  CHECK(sasl_code(SASL_RESP_REQUIRED) == 535 && strcmp(sasl_text(SASL_RESP_REQUIRED), "Response was required but not given.") == 0, "535 required");
  CHECK(sasl_code(SASL_RESP_NOTALLOWED) == 535 && strcmp(sasl_text(SASL_RESP_NOTALLOWED), "Initial response not allowed.") == 0, "535 initial");
  CHECK(sasl_code(SASL_RESP_BAD) == 501 && strcmp(sasl_text(SASL_RESP_BAD), "Could not decode the response.") == 0, "501 decode");
  CHECK(sasl_code(SASL_EOF) == 535 && strcmp(sasl_text(SASL_EOF), "End of file reached.") == 0, "535 EOF");
  CHECK(sasl_code(SASL_TEMP_FAIL) == 451 && strcmp(sasl_text(SASL_TEMP_FAIL), "Internal error.") == 0, "451");
  CHECK(sasl_code(99) == 451, "out of range -> 451");

  str_free(&ch); str_free(&log); str_free(&c1); str_free(&raw); str_free(&resp); str_free(&b); str_free(&arg);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0) return 1;
  return done();
}

/* sasl.c -- fuzzes the SASL engine (src/auth/sasl.c): the input is an AUTH
 * argument and then client lines, separated by LF.  Every mechanism is
 * fuzz_configured with a CVM that cannot be reached (a missing local socket), so
 * credentials that decode lead to a fast temporary failure, never to
 * success.  Invariants: a status is always one of the enum; a challenge
 * comes with text; no exchange succeeds; the state frees cleanly. */
#include "fuzz.h"
#include "auth/sasl.c"

static struct sasl_config cfg;
static int fuzz_configured;

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
  if (!fuzz_configured) {
    setenv("CVM_SASL_PLAIN", "cvm-local:/nonexistent/fuzz-cvm", 1);
    setenv("CVM_SASL_CRAM_MD5", "cvm-local:/nonexistent/fuzz-cvm", 1);
    setenv("TCPLOCALHOST", "fuzz.example", 1);
    FUZZ_ASSERT(sasl_config_init(&cfg));
    fuzz_configured = 1;
  }
  struct sasl_state st;
  sasl_state_init(&st, &cfg);
  const uint8_t* p = data;
  const uint8_t* end = data + size;
  const uint8_t* nl = memchr(p, '\n', size);
  size_t len = nl ? (size_t)(nl - p) : size;
  char* line = fuzz_dup(p, len);
  int r = sasl_start(&st, line, len);
  free(line);
  p = nl ? nl + 1 : end;
  while (r == SASL_CHALLENGE) {
    FUZZ_ASSERT(st.challenge.len > 0 || st.mech == SASL_MECH_PLAIN);
    if (p >= end) { r = SASL_EOF; break; }
    nl = memchr(p, '\n', (size_t)(end - p));
    len = nl ? (size_t)(nl - p) : (size_t)(end - p);
    line = fuzz_dup(p, len);
    r = sasl_response(&st, line, len);
    free(line);
    p = nl ? nl + 1 : end;
  }
  FUZZ_ASSERT(r != SASL_SUCCESS);
  FUZZ_ASSERT(sasl_code(r) >= 400 && sasl_code(r) < 600);
  str log = { 0, 0, 0 };
  sasl_log_reason(&st, &log);
  sasl_log_line(&st, r, &log);
  str_free(&log);
  sasl_state_free(&st);
  return 0;
}

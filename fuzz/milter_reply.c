/* milter_reply.c -- fuzzes the parsers of what a milter sends and of the
 * $MILTERS list (src/plugins/milter/wire.c): option negotiation answers,
 * SMFIR_REPLYCODE texts, NUL-separated string payloads, list items, their
 * options and time values.  The first byte chooses the parser.
 * Invariants: results are 0/-1 (1/0/-1 for the list walkers); a parsed
 * reply code is 4xx or 5xx; split strings lie inside the payload; the list
 * walkers always advance and stay inside the input. */
#include "fuzz.h"
#include "plugins/milter/wire.c"

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
  struct fuzz_in in = { data, size };
  unsigned which = fuzz_byte(&in) % 5;
  if (in.n > 1u << 20) return 0;
  char* b = fuzz_dup(in.p, in.n);
  unsigned len = (unsigned)in.n;
  switch (which) {
  case 0: {
    struct mw_optneg o;
    memset(&o, 0, sizeof o);
    int r = mw_optneg(b, len, &o);
    FUZZ_ASSERT(r == 0 || r == -1);
    mw_optneg_free(&o);
    break;
  }
  case 1: {
    unsigned number = 0;
    str text = { 0, 0, 0 };
    int r = mw_replycode(b, len, &number, &text);
    FUZZ_ASSERT(r == 0 || r == -1);
    if (r == 0) FUZZ_ASSERT(number >= 400 && number < 600);
    str_free(&text);
    break;
  }
  case 2: {
    const char* out[4];
    unsigned lens[4];
    for (unsigned n = 1; n <= 4; n++)
      if (mw_strings(b, len, n, out, lens) == 0)
        for (unsigned i = 0; i < n; i++) FUZZ_ASSERT(out[i] >= b && out[i] + lens[i] <= b + len);
    break;
  }
  case 3: {
    unsigned pos = 0, steps = 0;
    struct mw_item it;
    int r;
    while ((r = mw_list_next(b, len, &pos, &it)) == 1) {
      FUZZ_ASSERT(pos <= len && ++steps <= len + 1);
      struct mw_spec spec;
      memset(&spec, 0, sizeof spec);
      (void)mw_spec_parse(it.spec, it.speclen, &spec);
      str_free(&spec.host);
      unsigned op = 0, nl, vl, osteps = 0;
      const char* name;
      const char* value;
      while (mw_option_next(it.opts, it.optslen, &op, &name, &nl, &value, &vl) == 1) {
        FUZZ_ASSERT(op <= it.optslen && ++osteps <= it.optslen + 1);
        unsigned long secs;
        (void)mw_time(value, vl, &secs);
      }
    }
    FUZZ_ASSERT(r == 0 || r == -1);
    break;
  }
  default: {
    unsigned long secs;
    (void)mw_time(b, len, &secs);
    str out = { 0, 0, 0 };
    FUZZ_ASSERT(mw_packet(&out, 'y', b, len));
    FUZZ_ASSERT(out.len == len + 5);
    str_free(&out);
    break;
  }
  }
  free(b);
  return 0;
}

/* Unit tests: the one rule for numeric settings (src/lib/progenv.c,
 * env_number_parse): digits after blanks, text after them ignored, no
 * digits = default, too large = maximum, 0 = default unless 0 is a value
 * of its own, below the minimum = minimum. */
#include "tap.h"
#include "../../src/lib/progenv.h"
#include <stdlib.h>

int main(void)
{
  const struct env_number line = { 4096, 512, 1UL << 30, 0 };   /* like SMTP_MAXLINE */
  const struct env_number notimpl = { 0, 0, ~0UL, 1 };          /* like MAXNOTIMPL */
  CHECK(env_number_parse(0, &line) == 4096, "unset: default");
  CHECK(env_number_parse("", &line) == 4096, "empty: default");
  CHECK(env_number_parse("x", &line) == 4096, "no digit: default");
  CHECK(env_number_parse("-5", &line) == 4096, "a sign is no digit: default");
  CHECK(env_number_parse("8000", &line) == 8000, "a plain number");
  CHECK(env_number_parse(" \t8000", &line) == 8000, "leading blanks skipped");
  CHECK(env_number_parse("8000x", &line) == 8000, "text after the digits ignored");
  CHECK(env_number_parse("0", &line) == 4096, "0: the default");
  CHECK(env_number_parse("000", &line) == 4096, "0 in any spelling: the default");
  CHECK(env_number_parse("100", &line) == 512, "below the minimum: the minimum");
  CHECK(env_number_parse("99999999999", &line) == 1UL << 30, "above the maximum: the maximum");
  CHECK(env_number_parse("999999999999999999999999999999", &line) == 1UL << 30, "overflow: the maximum");
  CHECK(env_number_parse("0", &notimpl) == 0, "0 of its own where documented");
  CHECK(env_number_parse("1x", &notimpl) == 1 && env_number_parse(" 2", &notimpl) == 2, "read like the original");
  CHECK(env_number_parse("x", &notimpl) == 0, "default 0");
  setenv("MF_TEST_NUMBER", "77", 1);
  CHECK(env_number("MF_TEST_NUMBER", &line) == 512 && mf_env_number("MF_TEST_NUMBER", 50) == 50, "from the environment");
  unsetenv("MF_TEST_NUMBER");
  CHECK(mf_env_number("MF_TEST_NUMBER", 50) == 0, "the programs' limits: 0 when unset");
  return done();
}

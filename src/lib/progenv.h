/* progenv.h -- numeric settings from the environment: the one parser and
 * the one rule of the code base (docs/configuration-numbers in README:
 * "Numeric settings").
 *
 * THE RULE (env_number_parse):
 *   - leading blanks are skipped, then the decimal digits are the value;
 *     text after them is ignored (how the original reads its numbers,
 *     strtoul-like: "2x" is 2, " 2" is 2);
 *   - unset, empty, or no digit at all: the default;
 *   - a value larger than the maximum (also one too large to represent):
 *     the maximum;
 *   - 0: the default, unless the setting documents 0 as a value of its
 *     own ("no limit", "off": zero_ok), then 0;
 *   - any other value below the minimum: the minimum.
 * No allocation, no I/O, cannot fail. */
#ifndef MF_PROGENV_H
#define MF_PROGENV_H

struct env_number
{
  unsigned long dflt, min, max;
  int zero_ok;             /* 0 is a value of its own (no limit / off) */
};

unsigned long env_number_parse(const char* value, const struct env_number* spec);
/* The same for $NAME of the process environment. */
unsigned long env_number(const char* name, const struct env_number* spec);

/* $NAME by the rule with default 0, 0 allowed, at most max (the
 * stand-alone programs' limits, where 0 means "not set": use default). */
unsigned long mf_env_number(const char* name, unsigned long max);
/* $FIRST when set, else $SECOND (e.g. AUTH_TIMEOUT over TIMEOUT). */
unsigned long mf_env_override(const char* first, const char* second, unsigned long max);

#endif

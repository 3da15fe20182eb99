/* clock.h -- the one clock of the code base: milliseconds of
 * CLOCK_MONOTONIC, for deadlines and durations (never for dates).  No
 * allocation, cannot fail. */
#ifndef MF_CLOCK_H
#define MF_CLOCK_H
long long clock_mono_ms(void);
#endif

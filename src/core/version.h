/* version.h -- release version of this build (src/core/version.c). */
#ifndef MF_VERSION_H
#define MF_VERSION_H
#include <stdio.h>

/* The release, e.g. "3.0.0". */
const char* mailfront_version(void);
/* One line "mailfront VERSION (plugin ABI N, ...)" on out; -1 on error. */
int version_print(FILE* out);
#endif

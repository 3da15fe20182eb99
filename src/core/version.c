/* version.c -- the release and ABI version of this build (`mailfront
 * --version`).  The string is set by the build from the VERSION file. */
#include "core/version.h"
#include <mailfront/mailfront.h>
#include <stdio.h>

#ifndef MF_VERSION
#define MF_VERSION "unknown"
#endif

const char* mailfront_version(void) { return MF_VERSION; }

int version_print(FILE* out)
{
  return fprintf(out, "mailfront %s (plugin ABI %u, protocol ABI %u, modules %s)\n",
                 MF_VERSION, (unsigned)PLUGIN_VERSION, (unsigned)PROTOCOL_VERSION, MODULE_DIR) < 0 ? -1 : 0;
}

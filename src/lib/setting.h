/* setting.h -- numeric settings of the modules (plugins, back ends,
 * protocols): the session's value of a variable (session_getenv: what
 * plugins set for this session, else the process environment) read by the
 * one rule of progenv.h (env_number_parse: default, bounds, 0, bad values).
 * Only for modules: it calls the driver's session_getenv.  No allocation,
 * cannot fail. */
#ifndef MF_SETTING_H
#define MF_SETTING_H

#include "lib/progenv.h"

/* $name of the session by spec's rule. */
unsigned long env_setting(const char* name, const struct env_number* spec);
/* $first when it is set, else $second (NULL: none), by spec's rule. */
unsigned long env_setting2(const char* first, const char* second, const struct env_number* spec);

#endif

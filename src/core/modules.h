/* modules.h -- loading protocol/backend/plugin modules and maintaining the
 * ordered plugin list ($PLUGINS syntax).  Errors are returned as responses
 * (451 4.3.0 ...) whose text lives in the session. */
#ifndef MF_MODULES_H
#define MF_MODULES_H
#include "core/session.h"

const response* load_protocol(struct protocol** p, const char* name);
/* Apply one colon-separated plugin list (name, +name, -name, -*). */
const response* plugins_apply(struct session* s, const char* list);
/* Built-in plugin by name, or NULL. */
struct plugin* builtin_plugin(const char* name);
/* Build s->commands: backend's commands, then each plugin's. */
int commands_build(struct session* s);
#endif

/* modules.h -- loading protocol/backend/plugin modules and maintaining the
 * ordered plugin list ($PLUGINS syntax) of a configuration.  Errors are
 * returned as responses (451 4.3.0 ...) whose text lives in the errbuf
 * passed in (the configuration's, or the current session's for the ABI
 * functions load_plugin/load_backend). */
#ifndef MF_MODULES_H
#define MF_MODULES_H
#include "core/session.h"

/* module_path: the directory of the .so files ($MODULE_PATH), NULL or ""
 * for MODULE_DIR. */
const response* module_load_protocol(struct protocol** p, const char* module_path, const char* name, struct errbuf* e);
const response* module_load_backend(struct plugin** b, const char* module_path, const char* name, struct errbuf* e);
/* Apply one colon-separated plugin list (name, +name, -name, -*) to cfg's
 * plugin list; loaded modules' flags are or-ed into cfg->flags. */
const response* plugins_apply(struct mf_config* cfg, const char* module_path, const char* list);
void plugins_free(struct mf_plist* l);
/* Built-in plugin by name, or NULL. */
struct plugin* builtin_plugin(const char* name);
/* Build cfg->commands: backend's commands, then each plugin's. */
int commands_build(struct mf_config* cfg);
/* Whether p carries the fields of ABI version 4. */
int plugin_is_v4(const struct plugin* p);
#endif

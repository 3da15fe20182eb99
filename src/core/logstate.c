/* logstate.c -- the driver's logging state, exported (mf_log_state in
 * src/core/exports.map) so that the copies of src/lib/log.c linked into
 * the modules log with the driver's format, session id and address (see
 * log.c).  Only the driver and the programs that link the core define it. */
#include "lib/log.h"

struct mf_log_state mf_log_state = { "mailfront", LOG_CLASSIC, "", {0, 0, 0}, 0, 0 };

/* compat.c -- objects that plugins built against the original expect the
 * driver to define.  Their libbg's msg functions (msg1, warn1, die_oom...)
 * print the executable's `program` (a weak reference in libbg.so.2: left
 * undefined they crash on NULL).  Exported through src/core/exports.map,
 * declared in mailfront.h. */
#include <mailfront/mailfront.h>

const char program[] = "mailfront";

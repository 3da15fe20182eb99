# exports.mk -- symbol hygiene (issue 10 item 1).
#
# The mailfront driver exports exactly the plugin ABI, listed in
# src/core/exports.map; each module exports only its entry structure
# (src/core/module.map) and links the parts of src/lib it uses
# (libmf.a) instead of taking them from the driver.
# (The rules below come before the Makefile's `all`: keep it the default.)
.DEFAULT_GOAL := all

EXPORTS_MAP := src/core/exports.map
MODULE_MAP  := src/core/module.map
MODULE_SOS  := $(PROTOCOLS:%=$(BUILD)/lib/protocol-%.so) $(BACKENDS:%=$(BUILD)/lib/backend-%.so) \
               $(PLUGINS:%=$(BUILD)/lib/plugin-%.so)

$(BUILD)/bin/mailfront: LDSAN += -Wl,--version-script=$(EXPORTS_MAP)
$(BUILD)/bin/mailfront: $(EXPORTS_MAP)
$(MODULE_SOS): LDSAN += -Wl,--version-script=$(MODULE_MAP)
$(MODULE_SOS): $(LIBMF)

# Our sources use our own str.h declarations (never an installed
# <bglibs/str.h>; a plugin built elsewhere may use both).
ALLCF += -DMAILFRONT_OWN_STR

# The differential str test dlopen()s Debian's libbg.so.2.
str_bglibs_LIBS = -ldl

# Start-up cost (issue 11): the dynamic linker's symbol lookups are most of
# what start-up costs (bench/run.py, "start-up+1 msg").  Each module links
# only the functions of libmf.a it calls (per-function sections, garbage-
# collected), so it imports only the libc functions those need; and it is
# linked without the C start files, whose weak references (__gmon_start__,
# _ITM_*TMCloneTable) are looked up in every loaded object and never found.
# Our modules are C without atexit(); constructors/destructors still run
# (.init_array/.fini_array are the dynamic linker's, not the start files').
# tests/test_symbols.py checks that no module needs __dso_handle.
ALLCF += -ffunction-sections -fdata-sections
$(BUILD)/bin/mailfront: LDSAN += -Wl,--gc-sections
$(MODULE_SOS): LDSAN += -Wl,--gc-sections -nostartfiles

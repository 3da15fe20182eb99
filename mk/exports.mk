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

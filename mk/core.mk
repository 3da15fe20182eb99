# Unit tests that include driver sources need the loader library.
core_plist_LIBS = -ldl
core_queuedir_LIBS = -ldl

# The driver as a library: every core object but main.o.  A second program
# (mailfrontd) links $(CORE_LIB_OBJ) + $(LIBMF) with its own main and
# -rdynamic (modules resolve the ABI functions against the program).
CORE_LIB_OBJ := $(filter-out $(BUILD)/obj/core/main.o,$(CORE_OBJ))

# (This file is included before the Makefile's first rule: keep `all` the
# default goal although a rule follows.)
.DEFAULT_GOAL := all

# 10,000 sessions through mf_session in one process (tests/unit/core_sessions.c).
$(BUILD)/tests/core_sessions: tests/unit/core_sessions.c $(CORE_LIB_OBJ) $(LIBMF)
	@mkdir -p $(dir $@)
	$(CC) $(ALLCF) -Wno-missing-prototypes -rdynamic -o $@ $< $(CORE_LIB_OBJ) -Wl,--whole-archive $(LIBMF) -Wl,--no-whole-archive -ldl $(LIBS_COMMON)

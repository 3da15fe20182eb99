# Group "a" plugins, many sessions in one process (tests/unit/reuse_a.c):
# linked like core_sessions (the driver's objects, -rdynamic, so the
# modules of $(BUILD)/lib resolve the ABI against it), plus tinycdb for the
# qmail-validate fixture's morercpthosts.cdb.  WITH_CDB=0 / WITH_LUA=0
# (mk/install.mk) build no mailrules, qmail-validate or lua: the test then
# reports those parts as skipped and needs no tinycdb.
# Included before the Makefile's `all`: keep `all` the default goal.
.DEFAULT_GOAL := all
REUSE_A_DEFS = $(if $(filter 0,$(WITH_CDB)),-DREUSE_NO_CDB) $(if $(filter 0,$(WITH_LUA)),-DREUSE_NO_LUA)
REUSE_A_LIBS = $(if $(filter 0,$(WITH_CDB)),,-lcdb)
$(BUILD)/tests/reuse_a: tests/unit/reuse_a.c tests/unit/sessions.h $(CORE_LIB_OBJ) $(LIBMF)
	@mkdir -p $(dir $@)
	$(CC) $(ALLCF) $(REUSE_A_DEFS) -Wno-missing-prototypes -rdynamic -o $@ $< $(CORE_LIB_OBJ) -Wl,--whole-archive $(LIBMF) -Wl,--no-whole-archive $(REUSE_A_LIBS) -ldl $(LIBS_COMMON)

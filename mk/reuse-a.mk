# Group "a" plugins, many sessions in one process (tests/unit/reuse_a.c):
# linked like core_sessions (the driver's objects, -rdynamic, so the
# modules of $(BUILD)/lib resolve the ABI against it), plus tinycdb for the
# qmail-validate fixture's morercpthosts.cdb.
# Included before the Makefile's `all`: keep `all` the default goal.
.DEFAULT_GOAL := all
$(BUILD)/tests/reuse_a: tests/unit/reuse_a.c tests/unit/sessions.h $(CORE_LIB_OBJ) $(LIBMF)
	@mkdir -p $(dir $@)
	$(CC) $(ALLCF) -Wno-missing-prototypes -rdynamic -o $@ $< $(CORE_LIB_OBJ) -Wl,--whole-archive $(LIBMF) -Wl,--no-whole-archive -lcdb -ldl $(LIBS_COMMON)

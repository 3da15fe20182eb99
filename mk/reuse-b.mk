# Sessions one after another in one process through the version-4 plugins
# clamav, spamassassin, rspamd, milter, greylist, ratelimit and the LMTP
# back end (tests/unit/reuse_b.c): linked like core_sessions, with the
# driver's objects and -rdynamic (the modules resolve the ABI against it).
# Included before the Makefile's `all`: keep `all` the default goal.
.DEFAULT_GOAL := all
$(BUILD)/tests/reuse_b: tests/unit/reuse_b.c tests/unit/sessions.h $(CORE_LIB_OBJ) $(LIBMF)
	@mkdir -p $(dir $@)
	$(CC) $(ALLCF) -Wno-missing-prototypes -rdynamic -o $@ $< $(CORE_LIB_OBJ) -Wl,--whole-archive $(LIBMF) -Wl,--no-whole-archive -ldl $(LIBS_COMMON)

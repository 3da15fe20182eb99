# The relay back ends (backend-smtp.so, backend-lmtp.so) share the code in
# src/backends/relay/, which is linked into both and is no module itself.
# The rules below come before `all` in the Makefile: keep `all` the default.
.DEFAULT_GOAL := all
BACKENDS := $(filter-out relay,$(BACKENDS))
RELAY_OBJ := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(wildcard src/backends/relay/*.c))
$(BUILD)/lib/backend-smtp.so: $(RELAY_OBJ)
$(BUILD)/lib/backend-lmtp.so: $(RELAY_OBJ)

# Relay sessions one after another in one process (tests/unit/relay_sessions.c):
# linked like core_sessions, with the driver's objects and -rdynamic.
$(BUILD)/tests/relay_sessions: tests/unit/relay_sessions.c $(CORE_LIB_OBJ) $(LIBMF)
	@mkdir -p $(dir $@)
	$(CC) $(ALLCF) -Wno-missing-prototypes -rdynamic -o $@ $< $(CORE_LIB_OBJ) -Wl,--whole-archive $(LIBMF) -Wl,--no-whole-archive -ldl $(LIBS_COMMON)

# mk/fuzz.mk -- the libFuzzer harnesses of fuzz/ (see fuzz/README.md).
#   make fuzz-build                  build every harness into $(FUZZ_BUILD)/
#   make fuzz FUZZ_SECONDS=N         run each harness N seconds (default 10)
#   make fuzz-regress                replay the seed corpora and regressions
# Harnesses are built with clang, libFuzzer, ASan and UBSan; the library
# and core objects they link are compiled with the same instrumentation in
# $(FUZZ_BUILD)/obj, apart from the normal builds.
FUZZ_BUILD   ?= build-fuzz
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 10
FUZZERS      := $(basename $(notdir $(wildcard fuzz/*.c)))
FUZZ_CF      := -std=c11 $(WARN) -Wno-missing-prototypes -g -O1 -fno-omit-frame-pointer \
                -fsanitize=address,undefined -fno-sanitize-recover=all -fPIC -MMD -MP $(CPPFL) -Ifuzz
FUZZ_LIBOBJ  := $(patsubst $(BUILD)/obj/%,$(FUZZ_BUILD)/obj/%,$(LIB_OBJ))
FUZZ_COREOBJ := $(patsubst $(BUILD)/obj/%,$(FUZZ_BUILD)/obj/%,$(filter-out $(BUILD)/obj/core/main.o,$(CORE_OBJ)))

# Extra libraries of a harness (NAME_FUZZLIBS).
mailrules_FUZZLIBS := -lcdb
qmail_control_FUZZLIBS := -lcdb
dns_txt_FUZZLIBS := -lresolv
ptr_reply_FUZZLIBS := -lresolv

$(FUZZ_BUILD)/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CF) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_BUILD)/libmf.a: $(FUZZ_LIBOBJ)
	rm -f $@ && ar rcs $@ $^
$(FUZZ_BUILD)/libcore.a: $(FUZZ_COREOBJ)
	rm -f $@ && ar rcs $@ $^

# Harnesses that run whole sessions load modules: they link every core and
# library object and export the ABI (-rdynamic), like the mailfront program.
FUZZ_SESSIONS := session
$(FUZZ_SESSIONS:%=$(FUZZ_BUILD)/bin/%): FUZZ_LINK = -rdynamic -Wl,--whole-archive $(FUZZ_BUILD)/libcore.a \
  $(FUZZ_BUILD)/libmf.a -Wl,--no-whole-archive
FUZZ_LINK = -Wl,--start-group $(FUZZ_BUILD)/libcore.a $(FUZZ_BUILD)/libmf.a -Wl,--end-group

$(FUZZ_BUILD)/bin/%: fuzz/%.c fuzz/fuzz.h $(FUZZ_BUILD)/libcore.a $(FUZZ_BUILD)/libmf.a
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CF) -fsanitize=fuzzer -o $@ $< $(FUZZ_LINK) $($*_FUZZLIBS) -ldl

# The modules the session harness loads, instrumented like the harness.
FUZZ_MODULES := protocol-smtp protocol-qmqp protocol-qmtp backend-echo plugin-counters plugin-add-received
define fuzz_module_rule
$(FUZZ_BUILD)/lib/$(2)-$(3).so: $(patsubst src/%.c,$(FUZZ_BUILD)/obj/%.o,$(call srcs_of,$(1),$(3)))
	@mkdir -p $$(dir $$@)
	$(FUZZ_CC) -fsanitize=address,undefined -shared -o $$@ $$^ $$($(2)-$(3)_LIBS)
endef
$(foreach m,smtp qmqp qmtp,$(eval $(call fuzz_module_rule,protocols,protocol,$(m))))
$(eval $(call fuzz_module_rule,backends,backend,echo))
$(foreach m,counters add-received,$(eval $(call fuzz_module_rule,plugins,plugin,$(m))))

fuzz-build: $(FUZZERS:%=$(FUZZ_BUILD)/bin/%) $(FUZZ_MODULES:%=$(FUZZ_BUILD)/lib/%.so)

fuzz: fuzz-build
	FUZZ_BUILD=$(FUZZ_BUILD) fuzz/run.sh fuzz $(FUZZ_SECONDS) $(FUZZERS)

fuzz-regress: fuzz-build
	FUZZ_BUILD=$(FUZZ_BUILD) fuzz/run.sh regress 0 $(FUZZERS)

.PHONY: fuzz fuzz-build fuzz-regress
-include $(shell find $(FUZZ_BUILD) -name "*.d" 2>/dev/null)

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
                -fsanitize=address,undefined -fno-sanitize-recover=all -MMD -MP $(CPPFL) -Ifuzz
FUZZ_LIBOBJ  := $(patsubst src/%.c,$(FUZZ_BUILD)/obj/%.o,$(wildcard src/lib/*.c))
FUZZ_COREOBJ := $(patsubst src/%.c,$(FUZZ_BUILD)/obj/%.o,$(filter-out src/core/main.c,$(wildcard src/core/*.c)))

# Extra libraries of a harness (NAME_FUZZLIBS).
mailrules_FUZZLIBS := -lcdb
qmail_control_FUZZLIBS := -lcdb
dns_txt_FUZZLIBS := -lresolv

$(FUZZ_BUILD)/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CF) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_BUILD)/libmf.a: $(FUZZ_LIBOBJ)
	rm -f $@ && ar rcs $@ $^
$(FUZZ_BUILD)/libcore.a: $(FUZZ_COREOBJ)
	rm -f $@ && ar rcs $@ $^

$(FUZZ_BUILD)/bin/%: fuzz/%.c fuzz/fuzz.h $(FUZZ_BUILD)/libcore.a $(FUZZ_BUILD)/libmf.a
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CF) -fsanitize=fuzzer -o $@ $< -Wl,--start-group $(FUZZ_BUILD)/libcore.a \
	  $(FUZZ_BUILD)/libmf.a -Wl,--end-group $($*_FUZZLIBS) -ldl

fuzz-build: $(FUZZERS:%=$(FUZZ_BUILD)/bin/%)

fuzz: fuzz-build
	FUZZ_BUILD=$(FUZZ_BUILD) fuzz/run.sh fuzz $(FUZZ_SECONDS) $(FUZZERS)

fuzz-regress: fuzz-build
	FUZZ_BUILD=$(FUZZ_BUILD) fuzz/run.sh regress 0 $(FUZZERS)

.PHONY: fuzz fuzz-build fuzz-regress
-include $(shell find $(FUZZ_BUILD) -name "*.d" 2>/dev/null)

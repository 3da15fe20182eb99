# mailfront -- GNU make build.
#   make            build everything into $(BUILD) (default build/)
#   make asan       the same with AddressSanitizer + UBSan into build-asan/
#   make test       build, then run every test against $(BUILD)
#   make check      test the normal and the sanitizer build
#   make bench      benchmarks against the reference when installed
#   make install PREFIX=/usr/local [DESTDIR=...]   (layout: mk/install.mk)
#   make WITH_LUA=0 WITH_TLS=0 WITH_CDB=0          leave optional parts out
#
# Layout: a module NAME of kind KIND (protocols, backends, plugins) is built
# from src/KIND/NAME.c or from every file in src/KIND/NAME/.  A program is
# src/programs/NAME.c or src/programs/NAME/*.c.  libmf.a (src/lib: strings,
# I/O, logging; src/auth: CVM, SASL, base64; src/tls: the TLS facade and
# relay; src/pop3: the POP3 command splitter) is linked into everything;
# src/core is the mailfront driver; src/tls/gnutls.c is mailfront-tls.so.

BUILD     ?= build
PREFIX    ?= /usr/local
# The original's conf-bin, conf-modules and conf-include (first line) are
# honoured when present; make variables override them (mk/install.mk).
conf_file  = $(if $(wildcard conf-$(1)),$(strip $(shell head -n 1 conf-$(1))))
BINDIR    ?= $(or $(call conf_file,bin),$(PREFIX)/bin)
MODULEDIR ?= $(or $(call conf_file,modules),$(PREFIX)/lib/mailfront)
INCDIR    ?= $(or $(call conf_file,include),$(PREFIX)/include)
QMAILHOME ?= /var/qmail
CC        ?= cc
CFLAGS    ?= -O2 -g
SAN       ?=
PYTHON    ?= /usr/bin/python3

WARN   := -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wstrict-prototypes -Wmissing-prototypes
CPPFL  := -D_GNU_SOURCE -Iinclude -Isrc -DMODULE_DIR='"$(MODULEDIR)"' -DQMAIL_HOME='"$(QMAILHOME)"'
ALLCF  := -std=c11 $(WARN) $(CFLAGS) $(SAN) -fPIC -MMD -MP $(CPPFL)
LDSAN  := $(SAN)
# Libraries every program needs because src/lib (libmf.a) uses them
# (dlopen of the TLS implementation, mailfront-tls.so).
LIBS_COMMON := -ldl

# Code that several modules of a kind link is not a module: it is listed in
# SHARED_SRCS, and each module that links it names it in NAME_SHARED_SRCS
# (here, so that every rule, mk/fuzz.mk's too, sees them).
SHARED_SRCS := src/protocols/qmxp.c src/plugins/netclient.c
qmqp_SHARED_SRCS := src/protocols/qmxp.c
qmtp_SHARED_SRCS := src/protocols/qmxp.c
clamav_SHARED_SRCS := src/plugins/netclient.c
spamassassin_SHARED_SRCS := src/plugins/netclient.c
rspamd_SHARED_SRCS := src/plugins/netclient.c
milter_SHARED_SRCS := src/plugins/netclient.c
kinds_of = $(filter-out $(basename $(notdir $(SHARED_SRCS))),$(sort $(basename $(notdir $(wildcard src/$(1)/*.c))) $(notdir $(patsubst %/,%,$(wildcard src/$(1)/*/)))))
srcs_of  = $(or $(wildcard src/$(1)/$(2).c),$(wildcard src/$(1)/$(2)/*.c)) $($(2)_SHARED_SRCS)
objs_of  = $(patsubst src/%.c,$(BUILD)/obj/%.o,$(call srcs_of,$(1),$(2)))

PROTOCOLS := $(call kinds_of,protocols)
BACKENDS  := $(call kinds_of,backends)
PLUGINS   := $(call kinds_of,plugins)
PROGRAMS  := $(call kinds_of,programs)
SCRIPTS   := $(notdir $(wildcard scripts/*))
UNITTESTS := $(basename $(notdir $(wildcard tests/unit/*.c)))

TLS_IMPL := src/tls/gnutls.c
LIB_OBJ  := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(filter-out $(TLS_IMPL),$(wildcard src/lib/*.c src/auth/*.c src/tls/*.c src/pop3/*.c)))
CORE_OBJ := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(wildcard src/core/*.c))
LIBMF    := $(BUILD)/libmf.a

# Per-module settings and extra targets live in mk/*.mk: extra libraries
# (name_LIBS), and rules of their own whose outputs they add to
# EXTRA_TARGETS (built by `all`) and EXTRA_INSTALL (installed to BINDIR).
EXTRA_TARGETS :=
EXTRA_INSTALL :=
include $(wildcard mk/*.mk)

MODULE_FILES := $(TLS_MODULE) $(PROTOCOLS:%=$(BUILD)/lib/protocol-%.so) $(BACKENDS:%=$(BUILD)/lib/backend-%.so) $(PLUGINS:%=$(BUILD)/lib/plugin-%.so)
PROGRAM_FILES := $(BUILD)/bin/mailfront $(PROGRAMS:%=$(BUILD)/bin/%) $(SCRIPTS:%=$(BUILD)/bin/%)
UNIT_FILES := $(UNITTESTS:%=$(BUILD)/tests/%)

all: $(PROGRAM_FILES) $(MODULE_FILES) $(UNIT_FILES) $(BUILD)/examples/plugin-template.so $(EXTRA_TARGETS)

$(BUILD)/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALLCF) -c -o $@ $<

$(LIBMF): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/bin/mailfront: $(CORE_OBJ) $(LIBMF)
	@mkdir -p $(dir $@)
	$(CC) $(LDSAN) -rdynamic -o $@ $(CORE_OBJ) -Wl,--whole-archive $(LIBMF) -Wl,--no-whole-archive -ldl $(LIBS_COMMON)

# TLS (GnuTLS) in its own object, loaded only when TLS is configured.
TLS_OBJ := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(TLS_IMPL) src/lib/clock.c)
$(BUILD)/lib/mailfront-tls.so: $(TLS_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDSAN) -shared -Wl,-Bsymbolic -o $@ $^ -lgnutls

define module_rule
$(BUILD)/lib/$(2)-$(3).so: $(call objs_of,$(1),$(3))
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDSAN) -shared -o $$@ $$^ $$($(2)-$(3)_LIBS)
endef
$(foreach m,$(PROTOCOLS),$(eval $(call module_rule,protocols,protocol,$(m))))
$(foreach m,$(BACKENDS),$(eval $(call module_rule,backends,backend,$(m))))
$(foreach m,$(PLUGINS),$(eval $(call module_rule,plugins,plugin,$(m))))

define program_rule
$(BUILD)/bin/$(1): $(call objs_of,programs,$(1)) $(LIBMF)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDSAN) -rdynamic -o $$@ $$^ $$($(1)_LIBS) $$(LIBS_COMMON)
endef
$(foreach p,$(PROGRAMS),$(eval $(call program_rule,$(p))))

$(BUILD)/bin/%: scripts/%
	@mkdir -p $(dir $@)
	cp $< $@ && chmod 755 $@

# Unit tests: tests/unit/NAME.c may #include the source file it tests.
$(BUILD)/tests/%: tests/unit/%.c $(LIBMF)
	@mkdir -p $(dir $@)
	$(CC) $(ALLCF) -Wno-missing-prototypes -o $@ $< $(LIBMF) $($*_LIBS) $(LIBS_COMMON)

# The out-of-tree plugin example, built against the installed-style header.
$(BUILD)/examples/plugin-template.so: examples/plugin-template/plugin-template.c include/mailfront/mailfront.h
	@mkdir -p $(dir $@)
	$(CC) -std=c11 $(WARN) $(CFLAGS) $(SAN) -fPIC -shared -Iinclude -o $@ $<

asan:
	$(MAKE) BUILD=build-asan CFLAGS="-O1 -g" SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all"

test: all
	MF_BUILD=$(abspath $(BUILD)) $(PYTHON) tests/run.py

check: all asan
	MF_BUILD=$(abspath $(BUILD)) $(PYTHON) tests/run.py
	MF_BUILD=$(abspath build-asan) MF_SANITIZED=1 $(PYTHON) tests/run.py

# SMTP throughput first, then the plugin chain, rules, scanners, TLS, POP3,
# Redis policies, the relay, milters, the built-in listener (mailfrontd).
BENCHES := run chain_bench rules_bench scan_bench tls_bench pop3_bench redis_bench relay_bench milter_bench listen_bench
bench: all
	set -e; for b in $(BENCHES); do echo "== bench/$$b.py"; MF_BUILD=$(abspath $(BUILD)) $(PYTHON) bench/$$b.py; done

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MODULEDIR) $(DESTDIR)$(INCDIR)/mailfront
	install -m 755 $(PROGRAM_FILES) $(EXTRA_INSTALL) $(DESTDIR)$(BINDIR)
	install -m 755 $(MODULE_FILES) $(DESTDIR)$(MODULEDIR)
	install -m 644 include/mailfront/*.h $(DESTDIR)$(INCDIR)/mailfront

clean:
	rm -rf build build-asan

.PHONY: all asan test check bench install clean
-include $(shell find $(BUILD)/obj $(BUILD)/tests -name '*.d' 2>/dev/null)

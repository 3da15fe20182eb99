# Install layout, optional features, version and the pkg-config file.
#
# Layout (make variables; the original's conf-* files are honoured when present):
#   PREFIX    /usr/local
#   BINDIR    $(PREFIX)/bin              conf-bin      (the original: /usr/local/bin)
#   MODULEDIR $(PREFIX)/lib/mailfront    conf-modules  (the original: /usr/local/lib/mailfront)
#   INCDIR    $(PREFIX)/include          conf-include  (the original: /usr/local/include)
#   MANDIR    $(PREFIX)/share/man
#   PKGCONFIGDIR $(PREFIX)/lib/pkgconfig
#   DESTDIR   staging root prepended to every installed path
# Optional parts: WITH_LUA=0 (no plugin-lua, no liblua5.4), WITH_TLS=0 (no
# mailfront-tls.so, no GnuTLS: STARTTLS/STLS are never offered), WITH_CDB=0
# (no mailrules and qmail-validate, no tinycdb).  `make lua` builds plugin-lua
# alone, as the original's target does.
# Rules in mk/*.mk come before `all` in the Makefile: keep `all` the default.
.DEFAULT_GOAL := all

WITH_LUA ?= 1
WITH_TLS ?= 1
WITH_CDB ?= 1
MANDIR       ?= $(PREFIX)/share/man
PKGCONFIGDIR ?= $(PREFIX)/lib/pkgconfig
MF_VERSION   := $(strip $(shell cat VERSION))

OFF_PLUGINS   := $(if $(filter 0,$(WITH_LUA)),lua) $(if $(filter 0,$(WITH_CDB)),mailrules qmail-validate)
OFF_UNITTESTS := $(if $(filter 0,$(WITH_TLS)),tls_session) $(if $(filter 0,$(WITH_CDB)),mailrules_parse)
PLUGINS   := $(filter-out $(OFF_PLUGINS),$(PLUGINS))
UNITTESTS := $(filter-out $(OFF_UNITTESTS),$(UNITTESTS))
TLS_MODULE := $(if $(filter 0,$(WITH_TLS)),,$(BUILD)/lib/mailfront-tls.so)

# Link flags of the environment (e.g. Debian's -Wl,-z,relro -Wl,-z,now).
LDSAN += $(LDFLAGS)

# mailfront --version (src/core/version.c)
$(BUILD)/obj/core/version.o: ALLCF += -DMF_VERSION='"$(MF_VERSION)"'
$(BUILD)/obj/core/version.o: VERSION

# pkg-config file for plugin authors: `cc $(pkg-config --cflags mailfront) -shared -fPIC`.
PCFILE := $(BUILD)/mailfront.pc
$(PCFILE): mk/install.mk VERSION
	@mkdir -p $(dir $@)
	printf '%s\n' 'prefix=$(PREFIX)' 'includedir=$(INCDIR)' 'moduledir=$(MODULEDIR)' 'bindir=$(BINDIR)' '' \
	  'Name: mailfront' 'Description: mailfront plugin API (protocols, back ends, plugins)' \
	  'Version: $(MF_VERSION)' 'Cflags: -I$${includedir}' > $@
EXTRA_TARGETS += $(PCFILE)

lua: $(BUILD)/lib/plugin-lua.so

# `make layout` prints where `make install` would put things (nothing is built).
layout:
	@printf '%s\n' 'BINDIR=$(BINDIR)' 'MODULEDIR=$(MODULEDIR)' 'INCDIR=$(INCDIR)' 'MANDIR=$(MANDIR)' \
	  'PKGCONFIGDIR=$(PKGCONFIGDIR)' 'QMAILHOME=$(QMAILHOME)'

install: install-extra
install-extra: all
	install -d $(DESTDIR)$(PKGCONFIGDIR)
	install -m 644 $(PCFILE) $(DESTDIR)$(PKGCONFIGDIR)/mailfront.pc

.PHONY: lua layout install-extra

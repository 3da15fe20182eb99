# mailfrontd: the built-in listener (src/daemon/).  It links the whole
# driver (src/core) except main.o, plus its own main.  The unit tests of
# its parsers are tests/unit/proxy_parse.c, tcprules_lookup.c and
# rdns_qname.c.
tcprules_lookup_LIBS = -lcdb
rdns_qname_LIBS = -lresolv

# This file is included before the Makefile's `all`: keep `all` the goal
# of a plain `make` (and of `make asan`) although a rule comes first here.
.DEFAULT_GOAL := all

DAEMON_OBJ := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(wildcard src/daemon/*.c))
DAEMON_CORE_OBJ := $(filter-out $(BUILD)/obj/core/main.o,$(CORE_OBJ))

# -h lookups use the bounded resolver set-up of plugin-rbl (dnstxt.o).
# -z now: its own symbols bound at start (main.c binds the libraries'
# too), not in every child.
DAEMON_DNS_OBJ := $(BUILD)/obj/plugins/rbl/dnstxt.o

$(BUILD)/bin/mailfrontd: $(DAEMON_OBJ) $(DAEMON_DNS_OBJ) $(DAEMON_CORE_OBJ) $(LIBMF)
	@mkdir -p $(dir $@)
	$(CC) $(LDSAN) -rdynamic -Wl,-z,now -o $@ $(DAEMON_OBJ) $(DAEMON_DNS_OBJ) $(DAEMON_CORE_OBJ) -Wl,--whole-archive $(LIBMF) -Wl,--no-whole-archive -lcdb -lresolv -ldl $(LIBS_COMMON)

# Built once the driver is a library (src/core/mf.h).
# mailfrontd reads tcprules cdb files with tinycdb: WITH_CDB=0 leaves it out.
ifneq ($(WITH_CDB),0)
EXTRA_TARGETS += $(BUILD)/bin/mailfrontd
EXTRA_INSTALL += $(BUILD)/bin/mailfrontd
endif

# plugin-spf: libspf2 (Debian libspf2-dev) with our own DNS layer, which
# uses the rbl plugin's resolver settings ($DNSCACHEIP/$DNSCACHEPORT,
# src/plugins/rbl/dnstxt.c, linked in) and glibc's resolver.
$(BUILD)/lib/plugin-spf.so: $(BUILD)/obj/plugins/rbl/dnstxt.o
plugin-spf_LIBS = -lspf2 -lresolv
spf_header_LIBS = -lspf2 -lresolv
# Included before the Makefile's `all`: keep `all` the default goal.
.DEFAULT_GOAL := all

# analyze.mk -- static analysis (issue 18, item 6): `make analyze` runs
# clang's static analyser (scan-build --status-bugs) over a clean build of
# everything `all` builds (programs, modules, unit tests, the example
# plugin) in its own build directory, then cppcheck over the sources;
# it fails when either reports anything.  Suppressions are inline
# only (`// cppcheck-suppress id` with the reason beside it); see
# docs/analysis.md.
# Included before the Makefile's `all`: keep `all` the default goal.
.DEFAULT_GOAL := all

ANALYZE_BUILD ?= build-analyze
SCAN_BUILD    ?= $(or $(shell command -v scan-build 2>/dev/null),$(shell command -v scan-build-14 2>/dev/null),scan-build)
CPPCHECK      ?= cppcheck
ANALYZE_JOBS  ?= 2
# The trees cppcheck reads (fuzz/ when it exists).  The unit tests are
# analysed by scan-build (they are part of `all`), not by cppcheck: its
# whole-program checks take their deliberately empty or truncated inputs
# for bugs of the code under test.
ANALYZE_DIRS  ?= src examples $(wildcard fuzz)
CPPCHECK_FLAGS := -q --std=c11 --enable=warning,portability,performance \
  --inline-suppr --error-exitcode=1 \
  -D_GNU_SOURCE -DMAILFRONT_OWN_STR -Iinclude -Isrc \
  -DMODULE_DIR='"/usr/local/lib/mailfront"' -DQMAIL_HOME='"/var/qmail"' \
  --template='{file}:{line}: {severity}: {message} [{id}]' \
  -j $(ANALYZE_JOBS) --cppcheck-build-dir=$(ANALYZE_BUILD)/cppcheck

analyze:
	@status=0; \
	rm -rf $(ANALYZE_BUILD) && mkdir -p $(ANALYZE_BUILD)/cppcheck; \
	echo "== scan-build ($(SCAN_BUILD)) into $(ANALYZE_BUILD)/"; \
	$(SCAN_BUILD) --status-bugs -o $(ANALYZE_BUILD)/scan-report \
	  $(MAKE) -s -j$(ANALYZE_JOBS) BUILD=$(ANALYZE_BUILD) CFLAGS="-O0 -g0" all || status=1; \
	echo "== cppcheck $(ANALYZE_DIRS)"; \
	$(CPPCHECK) $(CPPCHECK_FLAGS) $(ANALYZE_DIRS) || status=1; \
	if [ $$status = 0 ]; then echo "analyze: no findings"; else echo "analyze: FINDINGS (see above)"; fi; \
	exit $$status

.PHONY: analyze

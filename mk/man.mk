# Manual pages: man/PAGE.SECTION.scd (scdoc) -> $(BUILD)/man/PAGE.SECTION,
# installed into $(MANDIR)/manSECTION; the wrapper scripts' pages are links
# to mailfront-wrappers.8.  Every man/*.scd is picked up; the
# coverage test (tests/test_man.py) checks them against the code.
SCDOC     ?= scdoc
MAN_SRC   := $(wildcard man/*.scd)
MAN_PAGES := $(patsubst man/%.scd,$(BUILD)/man/%,$(MAN_SRC))

$(BUILD)/man/%: man/%.scd
	@mkdir -p $(dir $@)
	$(SCDOC) < $< > $@.tmp && mv $@.tmp $@

man: $(MAN_PAGES)
EXTRA_TARGETS += $(MAN_PAGES)

install: install-man
install-man: $(MAN_PAGES)
	set -e; for p in $(notdir $(MAN_PAGES)); do \
	  sec=$${p##*.}; install -d $(DESTDIR)$(MANDIR)/man$$sec; \
	  install -m 644 $(BUILD)/man/$$p $(DESTDIR)$(MANDIR)/man$$sec/$$p; done
	set -e; for w in $(SCRIPTS); do ln -sf mailfront-wrappers.8 $(DESTDIR)$(MANDIR)/man8/$$w.8; done

.PHONY: man install-man

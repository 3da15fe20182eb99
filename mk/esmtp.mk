# esmtp.mk -- the ESMTP extensions' benchmark (bench/bdat_bench.py):
# callgrind instructions per message through DATA and BDAT.  Included
# before the Makefile's `all`, so the default goal is named explicitly.
.DEFAULT_GOAL := all
bench-esmtp: all
	MF_BUILD=$(abspath $(BUILD)) $(PYTHON) bench/bdat_bench.py
.PHONY: bench-esmtp

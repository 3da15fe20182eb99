# make soak: bench/soak.py, 500 concurrent SMTP sessions of a mixed load for
# 10 minutes against mailfront under tcpserver, then against mailfrontd
# (docs/soak.md).  Not part of `make test` (tests/test_soak.py is its short
# smoke run).  SOAK_ARGS passes options, e.g. SOAK_ARGS="--seconds 60".

# This file is included before the Makefile's `all`: keep `all` the goal
# of a plain `make` although a rule comes first here.
.DEFAULT_GOAL := all

SOAK_ARGS ?=

soak: all
	MF_BUILD=$(abspath $(BUILD)) $(PYTHON) bench/soak.py $(SOAK_ARGS)

.PHONY: soak

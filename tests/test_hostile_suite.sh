#!/bin/sh
# tests/test_hostile_suite.sh - the fast sample of the hostile-input suite for make test: every
# 24th input of each group of tests/hostile/run.sh (every tool that reads it, the ASan+UBSan build
# only, no sparse 2^32-picture sets), one PASS/FAIL line per input group x tool. `make hostile`
# runs all of it, with the plain builds' peak memory (and HOSTILE_ARCH=i686 under qemu).
cd "$(dirname "$0")/.." || exit 1
HOSTILE=sample HOSTILE_BUILD=tests/build/hostile-sample exec sh tests/hostile/run.sh

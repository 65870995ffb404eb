#!/bin/sh
# tests/check_tsan.sh - `make check-tsan`: the unit-test programs and tests/determinism.c under
# ThreadSanitizer with OpenMP on 2 threads (issue #17). gcc's TSan with an uninstrumented
# libgomp reports at every barrier, so this is clang -fsanitize=thread with LLVM's own OpenMP
# runtime (libomp) and its Archer tool (OMP_TOOL_LIBRARIES=libarcher.so), which tells TSan
# about OpenMP's barriers, forks and joins: what remains is a real race. Both come from
# Debian's libomp-dev (LLVM 14 on bookworm). On the GEMM race of issue #17 it reports
# "data race ... in heph__gemm_pack" on every run of determinism.c, busy machine or not.
# One PASS/FAIL line per program (a FAIL quotes TSan's first SUMMARY line); ~2 minutes.
cd "$(dirname "$0")/.." || exit 1
B=tests/build/tsan
rm -rf "$B" && mkdir -p "$B" || exit 1
passed=0; failed=0
pass() { passed=$((passed + 1)); echo "PASS $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1${2:+: $2}"; }
finish() { echo "check_tsan.sh: $passed passed, $failed failed"; [ "$failed" -eq 0 ]; exit $?; }

CC=${TSAN_CC:-clang}
ARCHER=${ARCHER:-$(ls /usr/lib/llvm-*/lib/libarcher.so 2>/dev/null | tail -n 1)}
if ! command -v "$CC" >/dev/null 2>&1 || [ -z "$ARCHER" ]; then
    fail "tsan set-up" "needs clang and libomp-dev (Archer: /usr/lib/llvm-*/lib/libarcher.so); apt-get install -y clang libomp-dev"
    finish
fi
FLAGS="-std=c99 -O1 -g -fsanitize=thread -fopenmp -Wall -Wextra -Wpedantic -Wdouble-promotion -Werror -I."
export OMP_NUM_THREADS=2 OMP_TOOL_LIBRARIES="$ARCHER"
export TSAN_OPTIONS="ignore_noninstrumented_modules=1 halt_on_error=0 exitcode=66"
for src in tests/test_*.c tests/determinism.c; do
    t=$(basename "$src" .c)
    [ -f "tests/$t.sh" ] && continue # driven by its own script
    if ! $CC $FLAGS "$src" -o "$B/$t" -lm >"$B/$t.build" 2>&1; then
        fail "tsan: $t" "build failed: $(head -n 3 "$B/$t.build" | tr '\n' ' ')"; continue
    fi
    mkdir -p "$B/tmp-$t"
    HEPH_TEST_TMP="$B/tmp-$t" "$B/$t" >"$B/$t.out" 2>"$B/$t.err"
    rc=$?
    nr=$(grep -c 'WARNING: ThreadSanitizer' "$B/$t.err")
    nf=$(grep -c '^FAIL ' "$B/$t.out")
    if [ "$nr" -gt 0 ]; then
        fail "tsan: $t" "$nr reports: $(grep -m 1 'SUMMARY' "$B/$t.err")"
    elif [ "$rc" -ne 0 ] || [ "$nf" -gt 0 ]; then
        fail "tsan: $t" "exit $rc, $nf FAIL lines: $(grep -m 1 '^FAIL ' "$B/$t.out")"
    else
        what="$(grep -c '^PASS ' "$B/$t.out") checks passed"
        [ "$t" = determinism ] && what="$(grep -c ' params ' "$B/$t.out") trainings"
        pass "tsan: $t under ThreadSanitizer + Archer, 2 threads: no report ($what)"
    fi
done
finish

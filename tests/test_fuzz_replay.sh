#!/bin/sh
# tests/test_fuzz_replay.sh - replays every fuzz target's seed corpus (tests/fuzz/corpus/X/) and
# regression inputs (tests/fuzz/regress/X/: the crashes the fuzzers found, kept after the fix)
# through the target built WITHOUT libFuzzer: CC -O0 -DFUZZ_REPLAY -fsanitize=address,undefined,
# with a main() that runs each file once (tests/fuzz/fuzz_common.h). Any sanitizer report,
# leak, failed check (abort) or single allocation above 1 GB (ASan max_allocation_size_mb)
# fails the target. Run by tests/run.sh (step g) and so by `make test` and CI.
# Prints "PASS fuzz replay X: N inputs (C corpus + R regression)" or FAIL per target, then
# "fuzz replay: N passed, N failed". Environment: CC (default cc), JOBS (default 2).
cd "$(dirname "$0")/.." || exit 1
CC=${CC:-cc}
JOBS=${JOBS:-2}
B=tests/build/fuzz_replay
mkdir -p "$B" || exit 1
export ASAN_OPTIONS="detect_leaks=1:max_allocation_size_mb=1024:allocator_may_return_null=0:exitcode=86"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=86"
export OMP_WAIT_POLICY=passive
npass=0; nfail=0
TARGETS=""
for src in tests/fuzz/fuzz_*.c; do TARGETS="$TARGETS $(basename "$src" .c | sed 's/^fuzz_//')"; done
# builds, JOBS at a time
n=0
for t in $TARGETS; do
    lib=""; case $t in cli|scorer) lib=-lstb ;; esac
    ( $CC -std=c99 -O0 -g -DFUZZ_REPLAY -fsanitize=address,undefined -fno-sanitize-recover=all -D_POSIX_C_SOURCE=200809L \
          -I. "tests/fuzz/fuzz_$t.c" -o "$B/replay_$t" $lib -lm >"$B/build_$t.log" 2>&1; echo $? >"$B/build_$t.rc" ) &
    n=$((n + 1)); [ "$n" -ge "$JOBS" ] && { wait; n=0; }
done
wait
for t in $TARGETS; do
    if [ "$(cat "$B/build_$t.rc")" != 0 ]; then
        nfail=$((nfail + 1)); echo "FAIL fuzz replay $t: build failed: $(head -n 3 "$B/build_$t.log" | tr '\n' ' ' | cut -c1-300)"; continue
    fi
    nc=0; nr=0
    [ -d "tests/fuzz/corpus/$t" ] && nc=$(ls "tests/fuzz/corpus/$t" | wc -l)
    [ -d "tests/fuzz/regress/$t" ] && nr=$(ls "tests/fuzz/regress/$t" | wc -l)
    dirs=""
    [ "$nc" -gt 0 ] && dirs="tests/fuzz/corpus/$t"
    [ "$nr" -gt 0 ] && dirs="$dirs tests/fuzz/regress/$t"
    if [ -z "$dirs" ]; then nfail=$((nfail + 1)); echo "FAIL fuzz replay $t: no corpus"; continue; fi
    TMPDIR="$B" "$B/replay_$t" $dirs >"$B/out_$t.txt" 2>"$B/err_$t.txt"
    rc=$?
    ran=$(sed -n 's/^ran \([0-9]*\) inputs$/\1/p' "$B/out_$t.txt")
    if [ "$rc" -eq 0 ] && [ "${ran:-0}" -eq $((nc + nr)) ] && ! grep -q -e 'Sanitizer' -e 'runtime error' "$B/err_$t.txt"; then
        npass=$((npass + 1)); echo "PASS fuzz replay $t: $ran inputs ($nc corpus + $nr regression)"
    else
        nfail=$((nfail + 1))
        echo "FAIL fuzz replay $t: exit $rc after $(grep '^replay: ' "$B/err_$t.txt" | tail -n 1 | sed 's/^replay: //'): $(grep -m 2 -e 'ERROR' -e 'runtime error' -e 'SUMMARY' "$B/err_$t.txt" | tr '\n' ' ' | cut -c1-300)"
    fi
done
echo "fuzz replay: $npass passed, $nfail failed"
[ "$nfail" -eq 0 ]

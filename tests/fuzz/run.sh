#!/bin/sh
# tests/fuzz/run.sh - `make fuzz`: builds every libFuzzer target tests/fuzz/fuzz_X.c with
# clang -fsanitize=fuzzer,address,undefined and runs each for FUZZ_SECONDS (default 60), one at
# a time, niced, starting from the seed corpus tests/fuzz/corpus/X/ plus what earlier runs
# found (tests/build/fuzz/work/X/, kept between runs). A crash, leak, timeout or
# out-of-memory is saved as tests/build/fuzz/crashes/X/crash-* (copy it to
# tests/fuzz/regress/X/ once fixed: `make test` replays that folder).
# One line per target: "fuzz X: N executions in S s, corpus C files, OK | FAILED (artifact)".
# Environment: FUZZ_SECONDS, FUZZ_TARGETS (default: every tests/fuzz/fuzz_*.c), FUZZ_CC (default clang),
# FUZZ_FLAGS (extra libFuzzer flags), FUZZ_TMPDIR (the targets' temporary files, default /tmp).
# Every run appends "TARGET EXECUTIONS SECONDS EXIT" to tests/build/fuzz/history.txt.
# Exit 1 when a target failed.
cd "$(dirname "$0")/../.." || exit 1
SECONDS_EACH=${FUZZ_SECONDS:-60}
TARGETS=$FUZZ_TARGETS
[ -n "$TARGETS" ] || for src in tests/fuzz/fuzz_*.c; do TARGETS="$TARGETS $(basename "$src" .c | sed 's/^fuzz_//')"; done
CCF=${FUZZ_CC:-clang}
B=tests/build/fuzz
mkdir -p "$B" || exit 1
export OMP_WAIT_POLICY=passive
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
bad=0
for t in $TARGETS; do
    src=tests/fuzz/fuzz_$t.c
    [ -f "$src" ] || { echo "fuzz $t: no $src"; bad=1; continue; }
    lib=""; case $t in cli|scorer) lib=-lstb ;; esac
    if ! nice -n 19 $CCF -std=c99 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
         -D_POSIX_C_SOURCE=200809L -I. "$src" -o "$B/fuzz_$t" $lib -lm 2>"$B/build_$t.log"; then
        echo "fuzz $t: build failed: $(head -n 3 "$B/build_$t.log" | tr '\n' ' ')"; bad=1; continue
    fi
    mkdir -p "$B/work/$t" "$B/crashes/$t"
    s0=$(date +%s)
    TMPDIR=${FUZZ_TMPDIR:-/tmp} nice -n 19 "$B/fuzz_$t" -max_total_time="$SECONDS_EACH" -timeout=60 -rss_limit_mb=2048 -malloc_limit_mb=1024 \
        -close_fd_mask=3 -print_final_stats=1 -artifact_prefix="$B/crashes/$t/" $FUZZ_FLAGS \
        "$B/work/$t" "tests/fuzz/corpus/$t" >"$B/log_$t.txt" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$B/log_$t.txt" | tail -n 1)
    secs=$(($(date +%s) - s0))
    files=$(ls "$B/work/$t" | wc -l)
    art=$(sed -n 's/.*Test unit written to \(.*\)/\1/p' "$B/log_$t.txt" | tail -n 1)
    if [ "$rc" -eq 0 ]; then
        echo "fuzz $t: ${execs:-?} executions in $secs s, corpus $files files, OK"
    else
        bad=1
        echo "fuzz $t: ${execs:-?} executions in $secs s, FAILED (exit $rc): $(grep -m 1 -e 'ERROR:' -e 'runtime error' -e 'SUMMARY' "$B/log_$t.txt") ${art:+-> $art}"
    fi
    printf '%s %s %s %s\n' "$t" "${execs:-0}" "$secs" "$rc" >>"$B/history.txt"
done
[ "$bad" -eq 0 ]

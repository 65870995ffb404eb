#!/bin/sh
# tests/check_valgrind.sh - `make check-valgrind`: the unit-test programs (every tests/test_*.c
# without a driver script: test_core, test_layers, test_files, test_train, test_conv, ...)
# built portable (-std=c99 -O1 -g, no -march=native, no OpenMP) and run under valgrind memcheck
# with --leak-check=full --error-exitcode=1: any invalid read/write, use of uninitialised
# values or leak (definite, indirect or possible) fails. Prints PASS/FAIL per program with its
# time, then "N passed, N failed". Everything runs under nice -n 19.
# Environment: CC (default gcc), ONLY="test_core ..." to run some.
cd "$(dirname "$0")/.." || exit 1
CC=${CC:-gcc}
B=tests/build/valgrind
mkdir -p "$B" || exit 1
command -v valgrind >/dev/null 2>&1 || { echo "FAIL valgrind: not installed (apt-get install valgrind)"; exit 1; }
npass=0; nfail=0; t0=$(date +%s)
for src in tests/test_*.c; do
    t=$(basename "$src" .c)
    [ -f "tests/$t.sh" ] && continue
    if [ -n "$ONLY" ]; then case " $ONLY " in *" $t "*) ;; *) continue ;; esac; fi
    if ! nice -n 19 $CC -std=c99 -O1 -g -Wall -Wextra -I. "$src" -o "$B/$t" -lm 2>"$B/$t.build"; then
        nfail=$((nfail + 1)); echo "FAIL $t: build: $(head -n 2 "$B/$t.build" | tr '\n' ' ')"; continue
    fi
    rm -rf "$B/tmp" && mkdir -p "$B/tmp"
    s=$(date +%s)
    HEPH_TEST_TMP="$B/tmp" nice -n 19 valgrind --tool=memcheck --error-exitcode=1 --leak-check=full \
        --show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect,possible \
        --track-origins=yes --log-file="$B/$t.vg" "$B/$t" >"$B/$t.out" 2>&1
    rc=$?
    secs=$(($(date +%s) - s))
    errs=$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$B/$t.vg" | tail -n 1)
    tp=$(grep -c '^PASS ' "$B/$t.out"); tf=$(grep -c '^FAIL ' "$B/$t.out")
    if [ "$rc" -eq 0 ] && [ "${errs:-1}" -eq 0 ] && [ "$tf" -eq 0 ]; then
        npass=$((npass + 1)); echo "PASS $t under valgrind: $tp checks, 0 errors, no leaks ($secs s)"
    else
        nfail=$((nfail + 1))
        echo "FAIL $t under valgrind: exit $rc, ${errs:-?} errors, $tf failed checks ($secs s): $(grep -m 2 -e 'Invalid' -e 'uninitialised' -e 'definitely lost' -e 'FAIL' "$B/$t.vg" "$B/$t.out" | tr '\n' ' ' | cut -c1-300)"
    fi
done
echo "check-valgrind: $(($(date +%s) - t0)) s"
echo "$npass passed, $nfail failed"
[ "$nfail" -eq 0 ]

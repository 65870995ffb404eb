#!/bin/sh
# tests/test_cross.sh - make test-cross: the test suite on other CPUs (POSIX sh, Debian).
# Cross-compiles every tests/test_*.c (those without a driver script, as tests/run.sh) with
# Debian's cross compilers, statically linked, and runs them under qemu-user:
#   aarch64 (64-bit little-endian), i686 (32-bit, x87 floating point: FLT_EVAL_METHOD 2) and
#   s390x (64-bit big-endian), each with gcc and with clang --target; test_train once more with
#   gcc -fopenmp on 2 threads (threads_bitwise included). The same programs are also built with
#   gcc, clang and tcc on this x86-64 machine and run natively (seconds), so that the summary
#   table compares every build under the same flags. clang for i686 uses SSE2
#   (-msse2 -mfpmath=sse): on x87 clang keeps float expressions in 80-bit registers across
#   assignments and casts (C99 wants them rounded), so exact float comparisons in the tests
#   can miss by one ulp there (gcc -std=c99 rounds them: gcc-i686 is the x87 build).
# Flags: -std=c99 -O2 -Wall -Wextra -Wpedantic -Wdouble-promotion -Werror -static (no
#   -march=native). gcc for s390x adds -fexcess-precision=fast: in ISO C mode gcc evaluates
#   float arithmetic in double there (FLT_EVAL_METHOD 1), which -Wdouble-promotion reports at
#   every float expression; that mode is built and tested too, as gcc-s390x-iso, without
#   -Wdouble-promotion.
# Then the cross-load matrix (tests/xload.c): every build above (the x86-64 ones included)
#   writes a .hpd, a .hpm (after a seeded 40-step training) and its reference outputs; every
#   build loads every other build's files and compares (.hpd bit-exact, .hpm configuration/
#   step/RNG exact, decoded pixels, D^2 and -ELBO within rounding, and its own training from
#   the same seed against the loaded parameters: the trajectory).
# A crashed program, a build error or a missing tool counts as a failure (missing tools are
# installed first when run as root: apt-get install gcc-aarch64-linux-gnu gcc-i686-linux-gnu
# gcc-s390x-linux-gnu qemu-user clang tcc). The last line is "N passed, N failed"; exit status
# 1 when anything failed.
# Environment: TARGETS (default all: "gcc-aarch64 gcc-i686 gcc-s390x gcc-s390x-iso
# clang-aarch64 clang-i686 clang-s390x"), JOBS (default 2) compilers at a time, CROSS_BUILD
# (default tests/build/cross) the build folder (emptied first). The x86-64 builds always run.
# Time: ~11 min of CPU in all (most of it qemu; gcc-i686's x87 code is the slowest to emulate),
#   one program at a time: 18 min wall with JOBS=1 on 2 cores busy with two trainings.

cd "$(dirname "$0")/.." || exit 1
B=${CROSS_BUILD:-tests/build/cross} # CROSS_BUILD: another folder, e.g. for two runs at once
rm -rf "$B" && mkdir -p "$B/log" "$B/xload" || exit 1
L=$B/log
start=$(date +%s)
passed=0
failed=0
WARN="-Wall -Wextra -Wpedantic -Wdouble-promotion -Werror"
BASE="-std=c99 -O2 -I. -static"
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
TARGETS=${TARGETS:-"gcc-aarch64 gcc-i686 gcc-s390x gcc-s390x-iso clang-aarch64 clang-i686 clang-s390x"}
NATIVE_X="gcc clang tcc" # x86-64 builds of xload (this machine), readers and writers

elapsed() { echo "---- $1 done at $(($(date +%s) - start)) s"; }
pass() { passed=$((passed + 1)); echo "PASS $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1${2:+: $2}"; }
oneline() { head -n "${1:-4}" | tr '\n' ' ' | cut -c1-400; }

# cc_of TARGET: the compiler command and flags; qemu_of TARGET: how to run its programs
cc_of() {
    case $1 in
    gcc-s390x) echo "s390x-linux-gnu-gcc $BASE $WARN -fexcess-precision=fast" ;;
    gcc-s390x-iso) echo "s390x-linux-gnu-gcc $BASE -Wall -Wextra -Wpedantic -Werror" ;;
    gcc-*) echo "${1#gcc-}-linux-gnu-gcc $BASE $WARN" ;;
    clang-i686) echo "clang --target=i686-linux-gnu $BASE $WARN -msse2 -mfpmath=sse" ;;
    clang-*) echo "clang --target=${1#clang-}-linux-gnu $BASE $WARN" ;;
    gcc) echo "gcc -std=c99 -O2 -I. $WARN" ;;
    clang) echo "clang -std=c99 -O2 -I. $WARN" ;;
    tcc) echo "tcc -std=c99 -I. -Wall -Werror" ;;
    esac
}
qemu_of() {
    case $1 in
    *-aarch64) echo qemu-aarch64 ;;
    *-i686) echo qemu-i386 ;;
    *-s390x | *-s390x-iso) echo qemu-s390x ;;
    *) echo "" ;;
    esac
}
# runs TARGET PROGRAM ARGS...: the program under its qemu (nothing for x86-64 builds)
runs() {
    q=$(qemu_of "$1"); shift
    $q "$@"
}

# tools first: missing ones are installed (root and apt-get, as tools/deps.sh; HEPH_NO_INSTALL=1
# skips that); a tool still missing fails the targets that need it
PKGS="gcc-aarch64-linux-gnu gcc-i686-linux-gnu gcc-s390x-linux-gnu qemu-user clang tcc"
miss=""
for t in qemu-aarch64 qemu-i386 qemu-s390x aarch64-linux-gnu-gcc i686-linux-gnu-gcc s390x-linux-gnu-gcc clang tcc; do
    command -v "$t" >/dev/null 2>&1 || miss="$miss $t"
done
if [ -n "$miss" ] && [ -z "$HEPH_NO_INSTALL" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test_cross: installing $PKGS (missing:$miss)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y $PKGS >/dev/null 2>&1 || { apt-get update >/dev/null 2>&1 && apt-get install -y $PKGS >/dev/null 2>&1; }
fi
for t in qemu-aarch64 qemu-i386 qemu-s390x aarch64-linux-gnu-gcc i686-linux-gnu-gcc s390x-linux-gnu-gcc clang tcc; do
    command -v "$t" >/dev/null 2>&1 || fail "tool $t" "not installed (apt-get install $PKGS)"
done

# ---- builds, JOBS at a time (as tests/run.sh) ------------------------------------------------
JOBS=${JOBS:-2}
running=0
queue() {
    id=$1; shift
    ( "$@" >"$L/$id.log" 2>&1; echo $? >"$L/$id.rc" ) &
    running=$((running + 1))
    if [ "$running" -ge "$JOBS" ]; then wait; running=0; fi
}
built() {
    if [ "$(cat "$L/$1.rc" 2>/dev/null)" = 0 ]; then return 0; fi
    fail "$2" "build failed: $(grep -v -e 'statically linked' -e 'in function' "$L/$1.log" | oneline 6)"
    return 1
}
UNIT=""
for src in tests/test_*.c; do
    t=$(basename "$src" .c)
    [ -f "tests/$t.sh" ] && continue
    UNIT="$UNIT $t"
done
for tg in $NATIVE_X $TARGETS; do
    for t in $UNIT; do
        queue "$tg-$t" $(cc_of "$tg") "tests/$t.c" -o "$B/$tg-$t" -lm
    done
    queue "$tg-xload" $(cc_of "$tg") tests/xload.c -o "$B/$tg-xload" -lm
    case $tg in gcc | gcc-aarch64 | gcc-i686 | gcc-s390x)
        queue "$tg-omp-test_train" $(cc_of "$tg") -fopenmp tests/test_train.c -o "$B/$tg-omp-test_train" -lm ;;
    esac
done
wait
elapsed "builds"

# ---- the unit tests under qemu ---------------------------------------------------------------
# run_tests LABEL CMD...: each PASS/FAIL line is one check; a crash or no test is one more failure
run_tests() {
    label=$1; shift
    "$@" >"$B/run.out" 2>"$B/run.err"
    rc=$?
    np=$(grep -c '^PASS ' "$B/run.out")
    nf=$(grep -c '^FAIL ' "$B/run.out")
    passed=$((passed + np))
    failed=$((failed + nf))
    sed -n "s|^FAIL |FAIL $label/|p" "$B/run.out"
    echo "ran  $label: $np passed, $nf failed"
    echo "$np $nf" >>"$B/tests-$tg.count"
    if [ "$rc" -ne 0 ] && [ "$nf" -eq 0 ]; then
        fail "$label" "exit status $rc without a FAIL line: $(tail -n 3 "$B/run.err" | oneline 3)"
        echo "0 1" >>"$B/tests-$tg.count"
    elif [ "$np" -eq 0 ] && [ "$nf" -eq 0 ]; then
        fail "$label" "no test ran"
        echo "0 1" >>"$B/tests-$tg.count"
    fi
}
for tg in $NATIVE_X $TARGETS; do
    t0=$(date +%s)
    : >"$B/tests-$tg.count"
    nb=0; nok=0
    for t in $UNIT; do
        nb=$((nb + 1))
        built "$tg-$t" "$tg/$t" || continue
        nok=$((nok + 1))
        tmp="$B/tmp-$tg"
        rm -rf "$tmp" && mkdir -p "$tmp"
        run_tests "$tg/$t" env HEPH_TEST_TMP="$tmp" $(qemu_of "$tg") "$B/$tg-$t"
    done
    case $tg in gcc | gcc-aarch64 | gcc-i686 | gcc-s390x)
        nb=$((nb + 1))
        if built "$tg-omp-test_train" "$tg/test_train -fopenmp"; then
            nok=$((nok + 1))
            tmp="$B/tmp-$tg"
            rm -rf "$tmp" && mkdir -p "$tmp"
            run_tests "$tg-openmp/test_train" env OMP_NUM_THREADS=2 HEPH_TEST_TMP="$tmp" $(qemu_of "$tg") "$B/$tg-omp-test_train"
        fi ;;
    esac
    echo "$nok/$nb" >"$B/builds-$tg"
    elapsed "$tg unit tests ($(($(date +%s) - t0)) s)"
done

# ---- the cross-load matrix -------------------------------------------------------------------
X=$B/xload
WRITERS=""
for tg in $NATIVE_X $TARGETS; do
    built "$tg-xload" "$tg/xload" || continue
    if runs "$tg" "$B/$tg-xload" write "$X" "$tg" >"$B/run.out" 2>&1; then
        WRITERS="$WRITERS $tg"
        pass "xload $tg writes its files"
    else
        fail "xload $tg write" "$(oneline 3 <"$B/run.out")"
    fi
done
# same build, same flags, one thread: the same bits (the x86-64 gcc writer again)
if runs gcc "$B/gcc-xload" write "$X" gcc-again >/dev/null 2>&1 && cmp -s "$X/gcc.hpm" "$X/gcc-again.hpm" &&
    cmp -s "$X/gcc.hpd" "$X/gcc-again.hpd" && [ "$(sed 1,2d "$X/gcc.ref" | cksum)" = "$(sed 1,2d "$X/gcc-again.ref" | cksum)" ]; then
    pass "xload: two runs of the x86-64 gcc build write identical .hpd, .hpm and outputs"
else
    fail "xload: two runs of the x86-64 gcc build differ"
fi
: >"$B/xl.txt"
for r in $NATIVE_X $TARGETS; do
    [ -f "$B/$r-xload" ] || continue
    for w in $WRITERS; do
        runs "$r" "$B/$r-xload" check "$X" "$w" "$r" >"$B/run.out" 2>&1
        rc=$?
        np=$(grep -c '^PASS ' "$B/run.out")
        nf=$(grep -c '^FAIL ' "$B/run.out")
        grep '^XL ' "$B/run.out" >>"$B/xl.txt"
        if [ "$rc" -eq 0 ] && [ "$nf" -eq 0 ] && [ "$np" -ge 7 ]; then
            passed=$((passed + 1))
            echo "$r $w ok" >>"$B/xl-ok.txt"
        else
            failed=$((failed + 1))
            echo "$r $w FAIL" >>"$B/xl-ok.txt"
            echo "FAIL xload $r<-$w: $(grep -e '^FAIL' "$B/run.out" | oneline 3) (exit $rc)"
        fi
    done
done
elapsed "cross-load matrix"

# ---- summary ---------------------------------------------------------------------------------
# per build: test programs built, checks passed/run, files it read and files of it others read,
# and the largest differences against the x86-64 gcc build (both directions: it reads gcc's
# files and trains from the seed; gcc reads its files)
echo
echo "build           | builds | tests pass   | loads others' files | its files load | params vs gcc x86-64, 40 steps | pixels | D^2 rel"
for tg in $NATIVE_X $TARGETS; do
    bl=$(cat "$B/builds-$tg")
    tp=$(awk '{p += $1; f += $2} END {printf "%d/%d", p, p + f}' "$B/tests-$tg.count")
    rd=$(awk -v t="$tg" '$1 == t {n++; if ($3 == "ok") k++} END {printf "%d/%d", k, n}' "$B/xl-ok.txt")
    wr=$(awk -v t="$tg" '$2 == t {n++; if ($3 == "ok") k++} END {printf "%d/%d", k, n}' "$B/xl-ok.txt")
    diffs=$(awk -v t="$tg" '
        function v(s) { sub(/^[a-z0-9]+=/, "", s); return s + 0 }
        ($2 == t && $3 == "gcc") || ($2 == "gcc" && $3 == t) {
            if (v($7) > tr) tr = v($7); if (v($4) > px) px = v($4); if (v($5) > d2) d2 = v($5)
            split($8, b, "="); split(b[2], c, "/"); if (c[1] + 0 > nb) nb = c[1] + 0; np = c[2] }
        END { printf "%-8.3g (%d of %d differ) | %-6.3g | %.3g", tr, nb, np, px, d2 }' "$B/xl.txt")
    printf '%-15s | %-6s | %-12s | %-19s | %-14s | %s\n' "$tg" "$bl" "$tp" "$rd" "$wr" "$diffs"
done
echo
echo "tests/test_cross.sh: $(($(date +%s) - start)) s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

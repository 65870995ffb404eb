#!/bin/sh
# tests/run.sh - the test suite, run by `make test` from the repository root (POSIX sh).
# Builds into tests/build/ and counts every check as passed or failed:
#   a. every tests/test_*.c (the unit-test programs, on tests/test_harness.h: "PASS name" /
#      "FAIL name: why" lines; those without a setting of their own share one program,
#      tests/build/unit_all.c, whose lines say "test_X/name") built portable: -std=c99 -O2 -Wall -Wextra -Wpedantic -Wdouble-promotion -Werror
#   b. the same built with -fsanitize=address,undefined -fno-sanitize-recover=all (plus leaks)
#   c. the same built native: -O3 -march=native -ffp-contract=fast -fopenmp, 2 threads
#      and every unit test once more built with -DHEPH_REFERENCE_KERNELS: part A (the plain loops) alone
#      (a test_X.c that has a driver script tests/test_X.sh is left to that script instead)
#   d. the header from gcc -std=c99/c11, clang -std=c99, g++ -std=c++11/c++17, each with and
#      without -fopenmp, -Werror; and HEPHAESTUS_STATIC in two translation units of one program
#      (gcc, clang, g++, tcc); every test program also built with tcc -Wall -Werror and run
#      (tcc: Debian's tcc, a minimal C99 compiler without OpenMP; skipped when not installed)
#   e. determinism: one training gives the same parameter bits without OpenMP, and with OpenMP
#      on 1 and on 2 threads
#   f. tools/idx2hpd: plain and gzip IDX files converted and checked picture by picture; corrupt,
#      truncated and inconsistent inputs fail with a message naming the file
#   g. every other tests/test_*.sh driver script (PASS/FAIL lines; a script that only prints
#      SKIP lines, e.g. test_shapes3d2hpd.sh without libhdf5-dev, is skipped, not failed)
# A crashed test program, a sanitizer report or a build error counts as a failure.
# The last line is "N passed, N failed"; the exit status is 1 when anything failed.
# Environment: CC (default gcc) builds a, b, c, e, f; d always uses gcc, g++, clang and tcc.
# For other CPUs (aarch64, i686, s390x under qemu-user) see tests/test_cross.sh (make test-cross).
# JOBS (default 2): compilers run this many at a time; the tests themselves run one by one.
# ONLY="test_layers test_conv ...": run only these test programs and scripts (plus d, e, f).

cd "$(dirname "$0")/.." || exit 1
CC=${CC:-gcc}
B=tests/build
mkdir -p "$B" || exit 1
start=$(date +%s)
passed=0
failed=0
WARN="-Wall -Wextra -Wpedantic -Wdouble-promotion -Werror"
PORTABLE="-std=c99 -O2 $WARN -I."
ASAN="-std=c99 -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all $WARN -I."
NATIVE="-std=c99 -O3 -march=native -ffp-contract=fast $WARN -I."
export ASAN_OPTIONS="detect_leaks=1:exitcode=86"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=86"
# threads that wait passively: with other work on the machine, spinning OpenMP threads slow
# every parallel region down by orders of magnitude (results are the same bits either way)
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}

elapsed() { echo "---- $1 done at $(($(date +%s) - start)) s"; }
pass() { passed=$((passed + 1)); echo "PASS $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1${2:+: $2}"; }
skip() { echo "SKIP $1: $2"; }
oneline() { head -n "${1:-4}" | tr '\n' ' ' | cut -c1-400; }

# Builds run in the background, JOBS at a time: queue ID CMD... starts one (its output goes to
# $L/ID.log, its exit status to $L/ID.rc); built ID NAME later says whether it worked and
# counts a failure with the compiler's first lines when it did not.
L=$B/log
rm -rf "$L" && mkdir -p "$L" || exit 1
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
    fail "$2" "build failed: $(oneline 6 <"$L/$1.log")"
    return 1
}

# run_tests LABEL CMD...: run a test program; each PASS/FAIL line is one check; a crash, an
# exit status without a FAIL line, a sanitizer report or no test at all is one more failure
run_tests() {
    label=$1; shift
    t0=$(date +%s)
    "$@" >"$B/run.out" 2>"$B/run.err"
    rc=$?
    dt=$(($(date +%s) - t0))
    np=$(grep -c '^PASS ' "$B/run.out")
    nf=$(grep -c '^FAIL ' "$B/run.out")
    passed=$((passed + np))
    failed=$((failed + nf))
    sed -n "s|^FAIL |FAIL $label/|p" "$B/run.out"
    echo "ran  $label: $np passed, $nf failed ($dt s)"
    if grep -q -e 'Sanitizer' -e 'runtime error' "$B/run.err"; then
        fail "$label" "sanitizer report: $(grep -m 3 -e 'Sanitizer' -e 'runtime error' "$B/run.err" | oneline 3)"
    elif [ "$rc" -ne 0 ] && [ "$nf" -eq 0 ]; then
        fail "$label" "exit status $rc without a FAIL line: $(tail -n 3 "$B/run.err" | oneline 3)"
    elif [ "$np" -eq 0 ] && [ "$nf" -eq 0 ] && [ "$rc" -eq 0 ] && grep -q '^SKIP ' "$B/run.out"; then
        grep '^SKIP ' "$B/run.out" # an optional part whose dependency is not installed
    elif [ "$np" -eq 0 ] && [ "$nf" -eq 0 ]; then
        fail "$label" "no test ran"
    fi
}

# selected NAME: is test program NAME to run (ONLY unset, or NAME listed in it)?
selected() {
    [ -z "$ONLY" ] && return 0
    case " $ONLY " in *" $1 "*) return 0 ;; esac
    return 1
}

# can CC... -fopenmp build a program that includes omp.h?
have_openmp() {
    printf '#include <omp.h>\nint main(void){return omp_get_max_threads()>0?0:1;}\n' >"$B/omp_probe.c"
    "$@" -fopenmp "$B/omp_probe.c" -o "$B/omp_probe" >/dev/null 2>&1 && "$B/omp_probe"
}

# ---- build everything first (JOBS compilers at a time) --------------------------------------
OMP_FLAG=""
if have_openmp $CC; then OMP_FLAG="-fopenmp"; else skip "openmp" "$CC -fopenmp does not work here: native builds without it"; fi
UNIT=""
TCC=""
TCCFLAGS="-std=c99 -Wall -Werror -I."
if command -v tcc >/dev/null 2>&1; then TCC=tcc; else skip "tcc" "not installed (apt-get install tcc): no tcc builds"; fi
# The unit tests that set nothing of their own before the header (no #define HEPH... or
# T_ALLOC_LIMIT) share one program per build, tests/build/unit_all.c: the header is compiled
# once per build instead of once per test file (make test's budget). The others, and every
# test_X.c under test-cross, valgrind and tsan, stay programs of their own.
SHARED=""
rm -f "$B/unit_all.c"
for src in tests/test_*.c; do
    t=$(basename "$src" .c)
    [ -f "tests/$t.sh" ] && continue
    selected "$t" || continue
    grep -q -E '^#define (HEPH|T_ALLOC_LIMIT)' "$src" || SHARED="$SHARED $t"
done
if [ -n "$SHARED" ]; then
    {
        echo "/* generated by tests/run.sh: the unit tests$SHARED in one program */"
        echo '#include "test_harness.h"'
        echo '#undef T_MAIN'
        echo '#define T_MAIN(t) static int T_SUITE(int argc, char **argv) { return t_main(argc, argv, t, (int)(sizeof t / sizeof t[0])); }'
        for t in $SHARED; do
            printf '#define tests tests_%s\n#define t_cases t_cases_%s\n#define T_SUITE suite_%s\n#include "%s.c"\n#undef tests\n#undef t_cases\n#undef T_SUITE\n' "$t" "$t" "$t" "$t"
        done
        echo 'int main(int argc, char **argv) {'
        echo '    int bad = 0;'
        for t in $SHARED; do printf '    t_prefix = "%s/";\n    bad |= suite_%s(argc, argv);\n' "$t" "$t"; done
        echo '    return bad;'
        echo '}'
    } >"$B/unit_all.c"
fi
for src in "$B/unit_all.c" tests/test_*.c; do
    [ -f "$src" ] || continue
    t=$(basename "$src" .c)
    [ -f "tests/$t.sh" ] && continue # driven by its own script (g)
    case " $SHARED " in *" $t "*) continue ;; esac # in unit_all
    [ "$t" = unit_all ] || selected "$t" || continue
    UNIT="$UNIT $t"
    queue "$t-portable" $CC $PORTABLE -Itests "$src" -o "$B/$t-portable" -lm
    queue "$t-asan" $CC $ASAN -Itests "$src" -o "$B/$t-asan" -lm
    queue "$t-native" $CC $NATIVE $OMP_FLAG -Itests "$src" -o "$B/$t-native" -lm
    [ -n "$TCC" ] && queue "$t-tcc" tcc $TCCFLAGS -Itests "$src" -o "$B/$t-tcc" -lm
    # and once more on part A alone: every layer, network and VAE on the reference loops
    queue "$t-reference" $CC $PORTABLE -DHEPH_REFERENCE_KERNELS -Itests "$src" -o "$B/$t-reference" -lm
done
# d: compile-only (-c) checks of the header, and a two-unit HEPHAESTUS_STATIC program
HDR=""
for cc in "gcc -std=c99" "gcc -std=c11" "clang -std=c99" "g++ -std=c++11" "g++ -std=c++17"; do
    exe=${cc%% *}
    case $exe in g++) srcf=tests/compile_check.cpp; w="-Wall -Wextra -Wpedantic -Werror" ;; *) srcf=tests/compile_check.c; w=$WARN ;; esac
    for omp in "" "-fopenmp"; do
        id=$(echo "hdr $cc $omp" | tr -c 'a-z0-9+\n' '_')
        name="header: $cc${omp:+ $omp} -Wall -Wextra -Wpedantic -Werror (compile only)"
        if [ -n "$omp" ] && ! have_openmp $exe; then skip "$name" "OpenMP is not installed for $exe"; continue; fi
        HDR="$HDR $id"
        echo "$name" >"$L/$id.name"
        queue "$id" $cc $omp $w -I. -c "$srcf" -o "$B/$id.o"
    done
done
queue static-gcc gcc -std=c99 $WARN -I. tests/static_a.c tests/static_b.c -o "$B/static-gcc" -lm
# HEPH_NO_STDIO: the implementation without any file function (an embedded build)
printf '#define HEPH_NO_STDIO\n#define HEPHAESTUS_IMPLEMENTATION\n#include "hephaestus.h"\n' >"$B/nostdio.c"
queue nostdio-gcc gcc -std=c99 $WARN -I. -c "$B/nostdio.c" -o "$B/nostdio-gcc.o"
queue nostdio-gxx g++ -x c++ -std=c++11 -Wall -Wextra -Wpedantic -Werror -I. -c "$B/nostdio.c" -o "$B/nostdio-gxx.o"
queue static-clang clang -std=c99 $WARN -I. tests/static_a.c tests/static_b.c -o "$B/static-clang" -lm
queue static-gxx g++ -x c++ -std=c++11 -Wall -Wextra -Wpedantic -Werror -I. tests/static_a.c tests/static_b.c -o "$B/static-gxx" -lm
if [ -n "$TCC" ]; then
    HDR="$HDR hdr_tcc"
    echo "header: tcc -std=c99 -Wall -Werror (compile only)" >"$L/hdr_tcc.name"
    queue hdr_tcc tcc $TCCFLAGS -c tests/compile_check.c -o "$B/hdr_tcc.o"
    queue static-tcc tcc $TCCFLAGS tests/static_a.c tests/static_b.c -o "$B/static-tcc" -lm
fi
# clang's front end on every C file of the repository: it warns where gcc does not (a float
# passed to a double parameter under -Wdouble-promotion), and make check-matrix is CI only
CLANG_FILES="$(ls tests/*.c tools/*.c examples/*.c)"
[ -f /usr/include/hdf5/serial/hdf5.h ] || CLANG_FILES=$(echo "$CLANG_FILES" | grep -v shapes3d2hpd)
CLANG_OMP=""
have_openmp clang && CLANG_OMP="-fopenmp" # without clang's omp.h the OpenMP parts are left out
queue clang-fe clang -std=c99 -fsyntax-only $WARN -D_POSIX_C_SOURCE=200809L -D_FILE_OFFSET_BITS=64 -I. -Itests \
    -I/usr/include/hdf5/serial $CLANG_OMP $CLANG_FILES
# e, f
queue det $CC $NATIVE tests/determinism.c -o "$B/determinism" -lm
queue det-omp $CC $NATIVE $OMP_FLAG tests/determinism.c -o "$B/determinism-omp" -lm
queue idx2hpd $CC -std=c99 -O2 -Wall -Wextra -Wpedantic -Werror -D_POSIX_C_SOURCE=200809L -I. tools/idx2hpd.c -o "$B/idx2hpd" -lm
queue idx_helper $CC $PORTABLE tests/idx_helper.c -o "$B/idx_helper" -lm
queue idx_sweep $CC -std=c99 -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -Wall -Wextra -Wpedantic -Werror -D_POSIX_C_SOURCE=200809L -I. tests/idx_sweep.c -o "$B/idx_sweep" -lm
wait
elapsed "builds"

# ---- a, b, c: the unit-test programs in three builds -----------------------------------------
for t in $UNIT; do
    for v in portable asan native ${TCC:+tcc} reference; do
        tmp="$B/tmp-$v"
        rm -rf "$tmp" && mkdir -p "$tmp"
        built "$t-$v" "$v/$t" || continue
        if [ "$v" = native ]; then
            run_tests "$v/$t" env OMP_NUM_THREADS=2 HEPH_TEST_TMP="$tmp" "$B/$t-$v"
        else
            run_tests "$v/$t" env HEPH_TEST_TMP="$tmp" "$B/$t-$v"
        fi
    done
done

elapsed "unit tests"
# ---- d: the header from several compilers and standards ---------------------------------------
for id in $HDR; do
    name=$(cat "$L/$id.name")
    built "$id" "$name" && pass "$name"
done
for id in nostdio-gcc nostdio-gxx; do
    name="HEPH_NO_STDIO: the implementation references no file function ($id)"
    if built "$id" "$name"; then
        used=$(nm -u "$B/$id.o" | grep -E ' (fopen|fread|fwrite|fclose|fflush|fseeko?|ftello?|rename|remove|fileno|fsync)$' | tr -s ' \n' ' ')
        if [ -z "$used" ]; then pass "$name"; else fail "$name" "it still calls:$used"; fi
    fi
done
name="clang -fsyntax-only $WARN: every tests/, tools/ and examples/ C file"
built clang-fe "$name" && pass "$name"
for id in static-gcc static-clang static-gxx ${TCC:+static-tcc}; do
    name="HEPHAESTUS_STATIC in two units linked together ($id)"
    if built "$id" "$name"; then
        if out=$("$B/$id" 2>&1); then pass "$name"; else fail "$name" "the program failed: $out"; fi
    fi
done

# ---- e: determinism across builds and thread counts -------------------------------------------
if built det "determinism" && built det-omp "determinism (OpenMP)"; then
    h0=$("$B/determinism")
    h1=$(OMP_NUM_THREADS=1 "$B/determinism-omp")
    h2=$(OMP_NUM_THREADS=2 "$B/determinism-omp")
    h3=$(OMP_NUM_THREADS=3 "$B/determinism-omp") # more threads than cores, slices unevenly shared
    if [ -n "$h0" ] && [ "$h0" = "$h1" ] && [ "$h0" = "$h2" ] && [ "$h0" = "$h3" ]; then
        pass "determinism: no OpenMP, 1, 2 and 3 threads give $(echo $h0)"
    else
        fail "determinism" "no OpenMP [$h0], 1 thread [$h1], 2 threads [$h2], 3 threads [$h3]"
    fi
fi

elapsed "header checks, determinism"
# ---- f: idx2hpd --------------------------------------------------------------------------------
D="$B/idx"
X="$B/idx2hpd"
H="$B/idx_helper"
rm -rf "$D" && mkdir -p "$D"
# convert_ok NAME SET LABELS SOURCE FILES...: converts expecting success, then checks the
# output (the last file) against SET ("small" or "big"), LABELS 1 or 0, SOURCE (may be "")
convert_ok() {
    name=$1; set=$2; labels=$3; src=$4; shift 4
    eval "out_=\${$#}"
    if [ -n "$src" ]; then msg=$("$X" --source "$src" "$@" 2>&1); else msg=$("$X" "$@" 2>&1); fi
    if [ $? -ne 0 ]; then
        fail "idx2hpd: $name" "conversion failed: $(printf '%s\n' "$msg" | oneline 3)"
    elif ! msg=$("$H" verify "$out_" "$set" "$labels" $src 2>&1); then
        fail "idx2hpd: $name" "$(printf '%s\n' "$msg" | oneline 3)"
    else
        pass "idx2hpd: $name"
    fi
}
# convert_fails NAME NEEDLE FILES...: expects exit status != 0, a message containing NEEDLE
# (the file's name) and no output file (the last file) left behind
convert_fails() {
    name=$1; needle=$2; shift 2
    eval "out_=\${$#}"
    msg=$("$X" "$@" 2>&1)
    rc=$?
    if [ "$rc" -eq 0 ]; then
        fail "idx2hpd: $name" "exit status 0"
    elif ! printf '%s\n' "$msg" | grep -q -F -- "$needle"; then
        fail "idx2hpd: $name" "message does not name $needle: $(printf '%s\n' "$msg" | oneline 2)"
    elif [ -e "$out_" ] || [ -e "$out_.tmp" ]; then
        fail "idx2hpd: $name" "a failed conversion left $out_ behind"
    else
        pass "idx2hpd: $name (exit $rc)"
    fi
}
if built idx2hpd "idx2hpd: build" && built idx_helper "idx2hpd: test helper" && "$H" write "$D"; then
    for f in small-img small-lab big-img big-lab; do
        gzip -c "$D/$f.idx" >"$D/$f.idx.gz" && gzip -9 -n -c "$D/$f.idx" >"$D/$f-9n.idx.gz" || fail "gzip $f"
    done
    convert_ok "plain images and labels" small 1 "test/small" "$D/small-img.idx" "$D/small-lab.idx" "$D/small.hpd"
    convert_ok "gzip -c images and labels" small 1 "test/small-gz" "$D/small-img.idx.gz" "$D/small-lab.idx.gz" "$D/small-gz.hpd"
    convert_ok "gzip -9 -n images and labels" small 1 "" "$D/small-img-9n.idx.gz" "$D/small-lab-9n.idx.gz" "$D/small-9n.hpd"
    convert_ok "images without labels" small 0 "" "$D/small-img.idx" "$D/small-nolab.hpd"
    convert_ok "600 pictures 28x28, gzip -9 -n" big 1 "test/big" "$D/big-img-9n.idx.gz" "$D/big-lab-9n.idx.gz" "$D/big.hpd"
    convert_ok "600 pictures 28x28, gzip -c images, plain labels" big 1 "" "$D/big-img.idx.gz" "$D/big-lab.idx" "$D/big2.hpd"
    convert_ok "output over an existing file" small 1 "" "$D/small-img.idx" "$D/small-lab.idx" "$D/small.hpd"
    "$H" flip "$D/small-img.idx.gz" "$D/flip-small.gz" mid
    "$H" flip "$D/big-img-9n.idx.gz" "$D/flip-big.gz" mid
    "$H" flip "$D/big-lab-9n.idx.gz" "$D/flip-lab.gz" mid
    n=$("$H" size "$D/small-img.idx.gz")
    "$H" trunc "$D/small-img.idx.gz" "$D/cut.gz" $((n / 2))
    "$H" trunc "$D/small-img.idx.gz" "$D/cut-trailer.gz" $((n - 3))
    convert_fails "corrupt gzip images (flipped middle byte)" "flip-small.gz" "$D/flip-small.gz" "$D/small-lab.idx" "$D/o1.hpd"
    convert_fails "corrupt gzip, 600 pictures (flipped middle byte)" "flip-big.gz" "$D/flip-big.gz" "$D/big-lab.idx" "$D/o2.hpd"
    convert_fails "corrupt gzip labels (flipped middle byte)" "flip-lab.gz" "$D/big-img.idx" "$D/flip-lab.gz" "$D/o3.hpd"
    convert_fails "truncated gzip" "cut.gz" "$D/cut.gz" "$D/small-lab.idx" "$D/o4.hpd"
    convert_fails "gzip without its trailer" "cut-trailer.gz" "$D/cut-trailer.gz" "$D/o5.hpd"
    convert_fails "truncated IDX images" "trunc-img.idx" "$D/trunc-img.idx" "$D/small-lab.idx" "$D/o6.hpd"
    convert_fails "truncated IDX header" "hdr-img.idx" "$D/hdr-img.idx" "$D/o7.hpd"
    convert_fails "wrong IDX magic" "magic-img.idx" "$D/magic-img.idx" "$D/small-lab.idx" "$D/o8.hpd"
    convert_fails "labels given as images (wrong magic)" "small-lab.idx" "$D/small-lab.idx" "$D/o9.hpd"
    convert_fails "label and image counts differ" "lab6.idx" "$D/small-img.idx" "$D/lab6.idx" "$D/o10.hpd"
    convert_fails "trailing byte after the IDX data" "trail-img.idx" "$D/trail-img.idx" "$D/o11.hpd"
    convert_fails "missing input file" "no-such.idx" "$D/no-such.idx" "$D/o12.hpd"
    convert_fails "output folder does not exist" "no-such-dir/o13.hpd" "$D/small-img.idx" "$D/no-such-dir/o13.hpd"
    if "$X" >/dev/null 2>&1; then fail "idx2hpd: no arguments" "exit status 0"; else pass "idx2hpd: no arguments fails"; fi
    if "$X" --help | grep -q usage; then pass "idx2hpd: --help"; else fail "idx2hpd: --help"; fi
    if ls "$D"/*.tmp >/dev/null 2>&1; then fail "idx2hpd: temporary files left behind" "$(ls "$D"/*.tmp | oneline 3)"; fi
    # sanitizer sweeps (idx2hpd's main in-process): every byte flip of a small gzip file and of
    # the start of a large one converts or fails with status 1; every truncation fails
    if built idx_sweep "idx2hpd: sanitizer sweep build"; then
        for f in small-img.idx.gz big-img-9n.idx.gz; do
            "$B/idx_sweep" "$D/$f" "$D/$(echo "$f" | sed 's/img/lab/')" "$D" >/dev/null 2>"$D/sweep.err"
            rc=$?
            what=$(tail -n 1 "$D/sweep.err")
            if grep -q -e 'Sanitizer' -e 'runtime error' "$D/sweep.err"; then
                fail "idx2hpd sweep $f" "sanitizer report: $(grep -m 3 -e 'Sanitizer' -e 'runtime error' "$D/sweep.err" | oneline 3)"
            elif [ "$rc" -ne 0 ]; then
                fail "idx2hpd sweep $f" "exit $rc: $what"
            else
                pass "idx2hpd (sanitizers): $what"
            fi
        done
    fi
else
    fail "idx2hpd: set-up"
fi

elapsed "idx2hpd"
# ---- g: other test scripts ------------------------------------------------------------------
for s in tests/test_*.sh; do
    [ -f "$s" ] || continue
    case "$s" in tests/test_cross.sh) continue ;; esac # slow: make test-cross
    selected "$(basename "$s" .sh)" || continue
    run_tests "$(basename "$s" .sh)" env CC="$CC" sh "$s"
done

echo "tests/run.sh: $(($(date +%s) - start)) s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

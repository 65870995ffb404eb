#!/bin/sh
# tests/test_matrix.sh - the CPU/compiler warning matrix (issue #16). gcc's flow analysis runs
# after inlining, and -march changes what is inlined and vectorised: a -Wmaybe-uninitialized
# that one CPU's build shows can be absent from another's. This compiles what a user builds
# (the header's compile check, the CLI, every tool and example) with -Werror for several
# -march values, levels and compilers, so a warning that only one CPU shows is caught on any
# machine. Compile only (-c -o /dev/null): warnings come from the compiler, nothing is run.
#   MATRIX=sample (default; run by make test): gcc -O3 for skylake-avx512 (the CPU whose
#                 inlining showed issue #16's warning), on the files that showed it, the CLI
#                 and the header's compile check (one cell: ~30 s; make test's budget)
#   MATRIX=full   (make check-matrix, run by CI): gcc at -O2, -O3 and -Os for -march x86-64,
#                 x86-64-v3, x86-64-v4, skylake-avx512, icelake-server, znver3, and clang at -O2
#                 for x86-64 and x86-64-v4; every tool and example. clang warns from its front
#                 end, before optimisation, and no file tests a CPU macro (the header has no
#                 intrinsics), so its other 16 cells repeated these two: CI's 60 minutes go
#                 to gcc, whose warnings do change with -march and the level.
# A -march value the compiler does not know is probed first and reported SKIP. The flags are
# the Makefile's native ones (-std=c99 -ffp-contract=fast -fno-math-errno -fopenmp and its
# warnings) plus -Werror. One PASS/FAIL line per (compiler, level, CPU), naming the files and
# the first warning. JOBS (default 2) compilers at a time.
cd "$(dirname "$0")/.." || exit 1
MATRIX=${MATRIX:-sample}
JOBS=${JOBS:-2}
B=tests/build/matrix
rm -rf "$B" && mkdir -p "$B" || exit 1
passed=0; failed=0
pass() { passed=$((passed + 1)); echo "PASS $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1${2:+: $2}"; }
skip() { echo "SKIP $1: $2"; }

WARN="-Wall -Wextra -Wpedantic -Wdouble-promotion -Werror"
POSIX="-D_POSIX_C_SOURCE=200809L -D_FILE_OFFSET_BITS=64"
HDF5_INC=/usr/include/hdf5/serial
case $MATRIX in
sample)
    CCS="gcc"; LEVELS="-O3"; CPUS="skylake-avx512"
    FILES="tests/compile_check.c tools/hephaestus.c examples/betavae_dsprites.c examples/betatcvae_shapes3d.c" ;;
full)
    CCS="gcc clang"; LEVELS="-O2 -O3 -Os"
    CPUS="x86-64 x86-64-v3 x86-64-v4 skylake-avx512 icelake-server znver3"
    CLANG_LEVELS="-O2"; CLANG_CPUS="x86-64 x86-64-v4"
    FILES="tests/compile_check.c $(ls tools/*.c examples/*.c)" ;;
*) echo "test_matrix.sh: MATRIX is sample or full, not '$MATRIX'" >&2; exit 2 ;;
esac
[ -f /usr/include/stb/stb_image_write.h ] || { skip "matrix" "no libstb-dev (make deps): the tools and examples need it"; exit 0; }

# extra flags a file needs (the Makefile's recipes): hdf5 for the 3dshapes.h5 converter
extra() {
    case $1 in
    tools/shapes3d2hpd.c) [ -f "$HDF5_INC/hdf5.h" ] && echo "-I$HDF5_INC" || echo SKIP ;;
    *) echo "" ;;
    esac
}

# compile CC LEVEL CPU: every file of the cell, JOBS at a time; one line for the cell
cell() {
    cc=$1; lvl=$2; cpu=$3
    name="matrix: $cc $lvl -march=$cpu -Werror"
    id=$(echo "$cc$lvl$cpu" | tr -c 'a-zA-Z0-9\n' '_')
    omp="-fopenmp"
    printf 'int main(void){return 0;}\n' >"$B/probe.c"
    if ! $cc -march="$cpu" -c "$B/probe.c" -o /dev/null >/dev/null 2>&1; then
        skip "$name" "$cc does not know -march=$cpu"; return
    fi
    $cc -fopenmp -c "$B/probe.c" -o /dev/null >/dev/null 2>&1 || omp=""
    n=0; bad=""
    for f in $FILES; do
        x=$(extra "$f")
        [ "$x" = SKIP ] && continue
        n=$((n + 1))
        log="$B/$id-$(basename "$f" .c).log"
        ( $cc -std=c99 $lvl -march="$cpu" -ffp-contract=fast -fno-math-errno $omp $WARN -I. $POSIX $x \
            -c "$f" -o /dev/null >"$log" 2>&1 || echo "$f" >"$log.bad" ) &
        [ $((n % JOBS)) -eq 0 ] && wait
    done
    wait
    for f in "$B/$id"-*.log.bad; do
        [ -f "$f" ] || continue
        bad="$bad $(cat "$f")"
    done
    if [ -z "$bad" ]; then
        pass "$name ($n files)"
    else
        first=$(cat "$B/$id"-*.log | grep -m 2 -e 'error' -e 'warning' | tr '\n' ' ' | cut -c1-300)
        fail "$name" "$(echo $bad | wc -w) of $n files:$bad; $first"
    fi
}

for cc in $CCS; do
    if ! command -v "$cc" >/dev/null 2>&1; then skip "matrix: $cc" "not installed"; continue; fi
    lv=$LEVELS; cp=$CPUS
    [ "$cc" = clang ] && [ -n "${CLANG_CPUS:-}" ] && { lv=$CLANG_LEVELS; cp=$CLANG_CPUS; }
    for lvl in $lv; do
        for cpu in $cp; do cell "$cc" "$lvl" "$cpu"; done
    done
done
echo "test_matrix.sh ($MATRIX): $passed passed, $failed failed"
[ "$failed" -eq 0 ]

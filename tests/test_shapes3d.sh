#!/bin/sh
# tests/test_shapes3d.sh - tests of tools/gen_shapes3d.c and tools/shapes3d_render.h (POSIX sh).
# Run from the repository root: sh tests/test_shapes3d.sh
# Builds into tests/build/ (gen_shapes3d, shapes3d_check from tests/shapes3d_check.c), prints
# one "PASS name" or "FAIL name: why" line per check, a last line "N passed, N failed", and
# exits 1 if any check failed. Needs a C compiler and libstb-dev; takes about 10 s.
# Environment: CC (default cc); SHAPES3D_CFLAGS replaces the compiler flags below.

cd "$(dirname "$0")/.." || exit 1
CC=${CC:-cc}
B=tests/build
T=$B/shapes3d_tmp
FLAGS=${SHAPES3D_CFLAGS:-"-std=c99 -O2 -Wall -Wextra -Wpedantic -Wdouble-promotion -Werror -D_POSIX_C_SOURCE=200809L -I."}
GEN=$B/gen_shapes3d
CHK=$B/shapes3d_check
npass=0
nfail=0
mkdir -p "$B" "$T" || exit 1
rm -f "$T"/*

pass() { npass=$((npass + 1)); echo "PASS $1"; }
fail() { nfail=$((nfail + 1)); echo "FAIL $1: $2"; }
finish() {
    rm -rf "$T"
    echo "shapes3d: $npass passed, $nfail failed"
    [ "$nfail" -eq 0 ]
    exit $?
}
# check NAME CMD...: PASS when CMD exits 0, else FAIL with CMD's last output line
check() {
    name=$1; shift
    if out=$("$@" 2>&1); then pass "$name"; else fail "$name" "$(echo "$out" | tail -n 1)"; fi
}

# ---- build --------------------------------------------------------------------------------
if ! out=$($CC $FLAGS tools/gen_shapes3d.c -o $GEN -lstb -lm 2>&1); then
    fail shapes3d_build_gen "$(echo "$out" | head -n 3 | tr '\n' ' ')"; finish
fi
if ! out=$($CC $FLAGS tests/shapes3d_check.c -o $CHK -lm 2>&1); then
    fail shapes3d_build_check "$(echo "$out" | head -n 3 | tr '\n' ' ')"; finish
fi
pass shapes3d_build

# ---- the renderer and the factor mapping --------------------------------------------------
check shapes3d_index_roundtrip $CHK map
check shapes3d_picture_sanity $CHK pictures

# ---- grid mode with --where: count, order, labels, pixels ---------------------------------
# floor 2, wall 3, object 4, sphere: 8 scales x 15 orientations = 120 pictures
check shapes3d_grid_where_run $GEN --quiet --where floor_hue=2,wall_hue=3,object_hue=4,shape=2 $T/g1.hpd
check shapes3d_grid_where_file $CHK hpd $T/g1.hpd grid floor_hue=2,wall_hue=3,object_hue=4,shape=2 120
# numbers for names, '|' for alternatives: 8 x 2 x 15 = 240
check shapes3d_grid_where_alt_run $GEN --quiet --where "0=0,1=0,2=0,shape=1|2" $T/g2.hpd
check shapes3d_grid_where_alt_file $CHK hpd $T/g2.hpd grid "0=0,1=0,2=0,4=1|2" 240

# ---- random mode: only satisfying pictures; --violate: only breaking ones, uniformly ------
check shapes3d_random_where_run $GEN --quiet --random 300 --seed 3 --where shape=2,wall_hue=3 $T/r1.hpd
check shapes3d_random_where_file $CHK hpd $T/r1.hpd random shape=2,wall_hue=3 300
check shapes3d_violate_run $GEN --quiet --random 2000 --seed 4 --where shape=2,wall_hue=3 --violate $T/v1.hpd
check shapes3d_violate_file $CHK hpd $T/v1.hpd violate shape=2,wall_hue=3 2000
check shapes3d_violate_uniform $CHK violate-stats $T/v1.hpd

# ---- determinism --------------------------------------------------------------------------
$GEN --quiet --random 100 --seed 9 $T/d1.hpd >/dev/null 2>&1
$GEN --quiet --random 100 --seed 9 $T/d2.hpd >/dev/null 2>&1
$GEN --quiet --random 100 --seed 10 $T/d3.hpd >/dev/null 2>&1
if [ -s $T/d1.hpd ] && cmp -s $T/d1.hpd $T/d2.hpd; then pass shapes3d_same_seed_same_bytes
else fail shapes3d_same_seed_same_bytes "two runs with --seed 9 differ"; fi
if [ -s $T/d3.hpd ] && ! cmp -s $T/d1.hpd $T/d3.hpd; then pass shapes3d_other_seed_other_bytes
else fail shapes3d_other_seed_other_bytes "--seed 9 and --seed 10 give the same file"; fi
# OpenMP build (when the compiler has it): 1 and 3 threads give the serial build's bytes
if $CC $FLAGS -fopenmp tools/gen_shapes3d.c -o $B/gen_shapes3d_omp -lstb -lm >/dev/null 2>&1; then
    OMP_NUM_THREADS=1 $B/gen_shapes3d_omp --quiet --random 700 --seed 9 $T/o1.hpd >/dev/null 2>&1
    OMP_NUM_THREADS=3 $B/gen_shapes3d_omp --quiet --random 700 --seed 9 $T/o3.hpd >/dev/null 2>&1
    $GEN --quiet --random 700 --seed 9 $T/o0.hpd >/dev/null 2>&1
    if [ -s $T/o1.hpd ] && cmp -s $T/o1.hpd $T/o3.hpd && cmp -s $T/o0.hpd $T/o1.hpd; then pass shapes3d_openmp_deterministic
    else fail shapes3d_openmp_deterministic "1 thread, 3 threads and the serial build differ"; fi
else
    echo "SKIP shapes3d_openmp_deterministic: $CC has no -fopenmp"
fi

# ---- previews -----------------------------------------------------------------------------
png_ok() { [ -s "$1" ] && [ "$(od -An -c -N4 "$1" | tr -d ' ')" = "211PNG" ]; }
$GEN --quiet --random 20 --png $T/p.png --png-count 12 --png-cols 4 >/dev/null 2>&1
$GEN --sweeps --png $T/s.png >/dev/null 2>&1
if png_ok $T/p.png && png_ok $T/s.png; then pass shapes3d_png
else fail shapes3d_png "--png or --sweeps did not write a PNG"; fi

# ---- command line errors: exit status 2 and a message that names the problem --------------
expect_error() { # NAME PATTERN ARGS...
    name=$1; pat=$2; shift 2
    out=$($GEN "$@" 2>&1); rc=$?
    if [ $rc -eq 2 ] && echo "$out" | grep -q "$pat"; then pass "$name"
    else fail "$name" "exit $rc, message: $out"; fi
}
expect_error shapes3d_err_unknown_factor "unknown factor" --where colour=2 $T/e.hpd
expect_error shapes3d_err_value_range "0..3" --where shape=4 $T/e.hpd
expect_error shapes3d_err_violate_alone "needs --where" --random 5 --violate $T/e.hpd
expect_error shapes3d_err_violate_all "every picture satisfies" --random 5 --where "shape=0|1|2|3" --violate $T/e.hpd
expect_error shapes3d_err_nothing "nothing to do" --random 5
expect_error shapes3d_err_bad_count "integer" --random abc $T/e.hpd
if $GEN --help | grep -q "usage: gen_shapes3d"; then pass shapes3d_help; else fail shapes3d_help "--help"; fi
if [ -e $T/e.hpd ] || [ -e $T/e.hpd.tmp ]; then fail shapes3d_err_no_file "an error left $T/e.hpd behind"
else pass shapes3d_err_no_file; fi

finish

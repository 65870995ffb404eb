#!/bin/sh
# tests/test_sprites.sh - tests of tools/gen_sprites.c and tools/sprites_render.h (POSIX sh).
# Run from the repository root: sh tests/test_sprites.sh
# Builds into tests/build/ (gen_sprites, sprites_check from tests/sprites_check.c; both again
# with ASan+UBSan, and gen_sprites with OpenMP), prints one "PASS name" or "FAIL name: why" line
# per check, a last line "sprites: N passed, N failed", and exits 1 if any check failed.
# Needs a C compiler and libstb-dev; takes about 20 s.
# Environment: CC (default cc); SPRITES_CFLAGS replaces the compiler flags below.

cd "$(dirname "$0")/.." || exit 1
CC=${CC:-cc}
B=tests/build
T=$B/sprites_tmp
FLAGS=${SPRITES_CFLAGS:-"-std=c99 -O2 -Wall -Wextra -Wpedantic -Wdouble-promotion -Werror -D_POSIX_C_SOURCE=200809L -I."}
SAN="-std=c99 -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -Wall -Wextra -Wpedantic -Wdouble-promotion -Werror -D_POSIX_C_SOURCE=200809L -I."
GEN=$B/gen_sprites
CHK=$B/sprites_check
npass=0
nfail=0
mkdir -p "$B" || exit 1
rm -rf "$T" && mkdir -p "$T" || exit 1

pass() { npass=$((npass + 1)); echo "PASS $1"; }
fail() { nfail=$((nfail + 1)); echo "FAIL $1: $2"; }
finish() {
    rm -rf "$T"
    echo "sprites: $npass passed, $nfail failed"
    [ "$nfail" -eq 0 ]
    exit $?
}
# check NAME CMD...: PASS when CMD exits 0, else FAIL with CMD's last output line
check() {
    name=$1; shift
    if out=$("$@" 2>&1); then pass "$name"; else fail "$name" "$(echo "$out" | tail -n 1)"; fi
}

# ---- build (two at a time) ------------------------------------------------------------------
( $CC $FLAGS tools/gen_sprites.c -o $GEN -lstb -lm >$T/b1.log 2>&1; echo $? >$T/b1.rc ) &
( $CC $FLAGS tests/sprites_check.c -o $CHK -lm >$T/b2.log 2>&1; echo $? >$T/b2.rc ) &
wait
( $CC $SAN tools/gen_sprites.c -o ${GEN}_san -lstb -lm >$T/b3.log 2>&1; echo $? >$T/b3.rc ) &
( $CC $SAN tests/sprites_check.c -o ${CHK}_san -lm >$T/b4.log 2>&1; echo $? >$T/b4.rc ) &
wait
for i in 1 2; do
    if [ "$(cat $T/b$i.rc)" != 0 ]; then fail sprites_build "$(head -n 3 $T/b$i.log | tr '\n' ' ')"; finish; fi
done
pass sprites_build
SANITIZE=1
for i in 3 4; do
    if [ "$(cat $T/b$i.rc)" != 0 ]; then
        if grep -q -e 'sanitize' -e 'asan' $T/b$i.log; then echo "SKIP sprites_sanitizers: $CC cannot build with -fsanitize=address,undefined"
        else fail sprites_build_sanitizers "$(head -n 3 $T/b$i.log | tr '\n' ' ')"; fi
        SANITIZE=0
    fi
done

# ---- the renderer, the factor mapping and the splits ------------------------------------------
check sprites_index_roundtrip $CHK map
check sprites_splits_500_72_100_documented $CHK splits
check sprites_picture_sanity $CHK pictures
check sprites_every_picture_fits $CHK fit
if [ $SANITIZE = 1 ]; then
    check sprites_asan_ubsan_map_splits ${CHK}_san map
    check sprites_asan_ubsan_pictures ${CHK}_san pictures
fi

# ---- files: selections in index order, labels, pixels ----------------------------------------
# one pose of every identity: 672 pictures, each identity exactly once, in order
check sprites_all_identities_run $GEN --quiet --where action=0,view=0,frame=0 $T/all.hpd
check sprites_all_identities_file $CHK hpd $T/all.hpd order all all - action=0,view=0,frame=0 672
# the identity splits, one pose each: 500 + 72 + 100, disjoint, together all 672
for s in train:500 val:72 test:100; do
    check sprites_split_${s%:*}_run $GEN --quiet --split ${s%:*} --where action=1,view=2,frame=3 $T/s_${s%:*}.hpd
    check sprites_split_${s%:*}_file $CHK hpd $T/s_${s%:*}.hpd order ${s%:*} all - action=1,view=2,frame=3 ${s#*:}
done
check sprites_splits_disjoint_cover $CHK split-files $T/s_train.hpd $T/s_val.hpd $T/s_test.hpd
# the pose split: 72 val identities x 12 held-out poses; 4 identities x 36 train poses
check sprites_pose_test_run $GEN --quiet --split val --pose-split test $T/pt.hpd
check sprites_pose_test_file $CHK hpd $T/pt.hpd order val test - - 864
check sprites_pose_train_run $GEN --quiet --identities 3,10-12 --pose-split train $T/ptr.hpd
check sprites_pose_train_file $CHK hpd $T/ptr.hpd order all train 3,10-12 - 144
# --identities with --where: 5 identities x 16 cast poses
check sprites_identities_where_run $GEN --quiet --identities 0,5,10-12 --where action=1 $T/iw.hpd
check sprites_identities_where_file $CHK hpd $T/iw.hpd order all all 0,5,10-12 action=1 80
# random mode: only pictures of the selection
check sprites_random_run $GEN --quiet --random 300 --seed 3 --split test --where "top=5|6,view=1" $T/r.hpd
check sprites_random_file $CHK hpd $T/r.hpd random test all - "top=5|6,view=1" 300
if head -c 256 $T/pt.hpd | tr -d '\000' | grep -a -q 'sprites-proc/val/pose-test'; then pass sprites_source_name
else fail sprites_source_name "the header does not name the source sprites-proc/val/pose-test"; fi

# ---- determinism --------------------------------------------------------------------------
$GEN --quiet --random 100 --seed 9 $T/d1.hpd >/dev/null 2>&1
$GEN --quiet --random 100 --seed 9 $T/d2.hpd >/dev/null 2>&1
$GEN --quiet --random 100 --seed 10 $T/d3.hpd >/dev/null 2>&1
if [ -s $T/d1.hpd ] && cmp -s $T/d1.hpd $T/d2.hpd; then pass sprites_same_seed_same_bytes
else fail sprites_same_seed_same_bytes "two runs with --seed 9 differ"; fi
if [ -s $T/d3.hpd ] && ! cmp -s $T/d1.hpd $T/d3.hpd; then pass sprites_other_seed_other_bytes
else fail sprites_other_seed_other_bytes "--seed 9 and --seed 10 give the same file"; fi
# OpenMP build (when the compiler has it): 1, 2 and 3 threads give the serial build's bytes
# (1200 pictures: three chunks of parallel rendering)
if $CC $FLAGS -fopenmp tools/gen_sprites.c -o ${GEN}_omp -lstb -lm >/dev/null 2>&1; then
    OMP_NUM_THREADS=1 ${GEN}_omp --quiet --random 1200 --seed 9 $T/o1.hpd >/dev/null 2>&1
    OMP_NUM_THREADS=2 ${GEN}_omp --quiet --random 1200 --seed 9 $T/o2.hpd >/dev/null 2>&1
    ${GEN}_omp --quiet --threads 3 --random 1200 --seed 9 $T/o3.hpd >/dev/null 2>&1
    $GEN --quiet --random 1200 --seed 9 $T/o0.hpd >/dev/null 2>&1
    if [ -s $T/o1.hpd ] && cmp -s $T/o1.hpd $T/o2.hpd && cmp -s $T/o1.hpd $T/o3.hpd && cmp -s $T/o0.hpd $T/o1.hpd; then
        pass sprites_openmp_deterministic
    else fail sprites_openmp_deterministic "1, 2, 3 threads and the serial build differ"; fi
else
    echo "SKIP sprites_openmp_deterministic: $CC has no -fopenmp"
fi
rm -f $T/o?.hpd

# ---- previews -------------------------------------------------------------------------------
png_ok() { [ -s "$1" ] && [ "$(od -An -c -N4 "$1" | tr -d ' ')" = "211PNG" ]; }
$GEN --quiet --random 20 --png $T/p.png --png-count 12 --png-cols 4 >/dev/null 2>&1
$GEN --preview $T/f.png --png-scale 2 >/dev/null 2>&1
if png_ok $T/p.png && png_ok $T/f.png; then pass sprites_png
else fail sprites_png "--png or --preview did not write a PNG"; fi
if [ $SANITIZE = 1 ]; then # the tool itself under the sanitizers: a file and both previews
    check sprites_asan_ubsan_tool ${GEN}_san --quiet --random 40 --seed 2 --split val --png $T/sp.png --preview $T/sf.png $T/san.hpd
fi

# ---- command line errors: exit status 2 and a message that names the problem --------------
expect_error() { # NAME PATTERN ARGS...
    name=$1; pat=$2; shift 2
    out=$($GEN "$@" 2>&1); rc=$?
    if [ $rc -eq 2 ] && echo "$out" | grep -q -- "$pat"; then pass "$name"
    else fail "$name" "exit $rc, message: $out"; fi
}
expect_error sprites_err_unknown_option "unknown option --colour" --colour 2 $T/e.hpd
expect_error sprites_err_split "takes train, val, test or all" --split dev $T/e.hpd
expect_error sprites_err_pose_split "pose-split takes train, test or all" --pose-split val $T/e.hpd
expect_error sprites_err_identity_range "identities 0..671" --identities 5,672 $T/e.hpd
expect_error sprites_err_identity_order "got \"9-3\"" --identities 1,9-3 $T/e.hpd
expect_error sprites_err_identity_comma "nothing after the last comma" --identities 1, $T/e.hpd
expect_error sprites_err_where_identity "use --identities" --where identity=3 $T/e.hpd
expect_error sprites_err_unknown_factor "unknown factor" --where colour=2 $T/e.hpd
expect_error sprites_err_value_range "top takes value indices 0..6" --where top=7 $T/e.hpd
expect_error sprites_err_base_single "give one value per factor" --base "view=0|1" --preview $T/e.png
expect_error sprites_err_empty_selection "no identity is left" --identities 0 --where skin=1 $T/e.hpd
expect_error sprites_err_empty_poses "no pose is left" --pose-split test --where action=0,view=0,frame=1 $T/e.hpd
expect_error sprites_err_bad_count "integer" --random abc $T/e.hpd
expect_error sprites_err_missing_value "needs a value" $T/e.hpd --split
expect_error sprites_err_nothing "nothing to do" --random 5
expect_error sprites_err_two_outputs "more than one output file" $T/e.hpd $T/e2.hpd
expect_error sprites_err_source "longer than 32 characters" --source 0123456789012345678901234567890123 $T/e.hpd
if $GEN --help | grep -q "usage: gen_sprites"; then pass sprites_help; else fail sprites_help "--help"; fi
if ls $T/e.* $T/e2.* >/dev/null 2>&1; then fail sprites_err_no_file "an error left $(ls $T/e.* $T/e2.* | tr '\n' ' ')"
else pass sprites_err_no_file; fi

# ---- atomic outputs -------------------------------------------------------------------------
# over an existing file: replaced whole; a stale OUT.tmp (a link to another file) is neither
# followed nor clobbered (the temporary is OUT.PID.N.tmp, created exclusively)
printf 'old' >$T/a.hpd
printf 'precious' >$T/victim
ln -s victim $T/a.hpd.tmp
if $GEN --quiet --random 10 $T/a.hpd >/dev/null 2>&1 && [ "$(cat $T/victim)" = precious ] &&
   $CHK hpd $T/a.hpd random all all - - 10 >/dev/null; then pass sprites_atomic_replace_and_stale_tmp
else fail sprites_atomic_replace_and_stale_tmp "victim '$(cat $T/victim)', $($CHK hpd $T/a.hpd random all all - - 10)"; fi
rm -f $T/a.hpd.tmp $T/victim
# SIGKILL while the whole set is being written: the old file stays as it was, and only the
# killed process's temporary is left
printf 'old' >$T/k.hpd
$GEN --quiet $T/k.hpd >/dev/null 2>&1 &
kpid=$!
n=0
while [ $n -lt 100 ] && ! ls $T/k.hpd.$kpid.*.tmp >/dev/null 2>&1; do sleep 0.05; n=$((n + 1)); done
sleep 0.2
kill -9 $kpid 2>/dev/null
wait $kpid 2>/dev/null
left=$(ls $T/k.hpd.*.tmp 2>/dev/null | grep -v "k.hpd.$kpid\." | tr '\n' ' ')
if [ "$(cat $T/k.hpd)" = old ] && ls $T/k.hpd.$kpid.*.tmp >/dev/null 2>&1 && [ -z "$left" ]; then pass sprites_atomic_kill
else fail sprites_atomic_kill "after the kill: k.hpd '$(head -c 8 $T/k.hpd)', temporaries: $(ls $T/k.hpd.*.tmp 2>/dev/null | tr '\n' ' ')"; fi
rm -f $T/k.hpd.*.tmp
# a folder that does not exist: exit 1 naming the file, nothing created
out=$($GEN --quiet --random 5 $T/nodir/x.hpd 2>&1); rc=$?
if [ $rc -eq 1 ] && echo "$out" | grep -q "nodir/x.hpd" && [ ! -e $T/nodir ]; then pass sprites_err_missing_folder
else fail sprites_err_missing_folder "exit $rc, message: $out"; fi
left=$(find $T -name '*.tmp' | tr '\n' ' ')
if [ -z "$left" ]; then pass sprites_no_temporaries_left; else fail sprites_no_temporaries_left "$left"; fi

finish

#!/bin/sh
# tests/test_dsprites.sh - tests of tools/gen_dsprites.c and tools/dsprites2hpd.c (POSIX sh).
# Run from the repository root: sh tests/test_dsprites.sh
# Builds into tests/build/, prints one "PASS name" or "FAIL name: why" line per check, a last
# line "N passed, N failed", and exits 1 if any check failed. Needs a C compiler, libstb-dev
# (gen_dsprites writes PNG previews) and gzip; no Python and no network (the fixtures under
# tests/fixtures/ were written by tools/make_dsprites_fixture.py).
# Environment: CC (default cc); DSPRITES_CFLAGS replaces the compiler flags below.
# The full 737,280-picture grid (395 MB) is generated once into tests/build/ and deleted at
# the end; the whole script takes about 20 s.

cd "$(dirname "$0")/.." || exit 1
CC=${CC:-cc}
FLAGS=${DSPRITES_CFLAGS:-"-std=c99 -O2 -Wall -Wextra -Wpedantic -Wdouble-promotion -Werror -D_POSIX_C_SOURCE=200809L -I."}
B=tests/build
T=$B/dsprites_tmp
FX=tests/fixtures
GEN=$B/gen_dsprites
CONV=$B/dsprites2hpd
CHK=$B/dsprites_check
npass=0
nfail=0
mkdir -p "$T" || exit 1
rm -f "$T"/*

pass() { npass=$((npass + 1)); echo "PASS $1"; }
fail() { nfail=$((nfail + 1)); echo "FAIL $1: $2"; }
oneline() { head -n 3 | tr '\n' ' ' | cut -c1-300; }
finish() {
    rm -f "$T/grid.hpd"
    echo "dsprites: $npass passed, $nfail failed"
    [ "$nfail" -eq 0 ]
    exit $?
}

# ok NAME CMD...: PASS when CMD exits 0, else FAIL with its first output lines
ok() {
    name=$1; shift
    if out=$("$@" 2>&1); then pass "$name"; else fail "$name" "$(printf '%s\n' "$out" | oneline)"; fi
}

# checks CMD...: run dsprites_check; each of its PASS/FAIL lines counts
checks() {
    out=$("$CHK" "$@" 2>&1)
    rc=$?
    printf '%s\n' "$out" | grep -e '^PASS ' -e '^FAIL '
    np=$(printf '%s\n' "$out" | grep -c '^PASS ')
    nf=$(printf '%s\n' "$out" | grep -c '^FAIL ')
    npass=$((npass + np))
    nfail=$((nfail + nf))
    if [ "$rc" -ne 0 ] && [ "$nf" -eq 0 ]; then fail "dsprites_check $1" "exit $rc: $(printf '%s\n' "$out" | oneline)"; fi
}

# reject NAME WORDS CMD...: CMD must fail with exactly one line on stderr that contains WORDS
# (a grep pattern), write nothing to $T/rej.hpd and leave no temporary file
reject() {
    name=$1; words=$2; shift 2
    rm -f "$T/rej.hpd" "$T/rej.hpd.tmp"
    if "$@" >"$T/rej.out" 2>"$T/rej.err"; then
        fail "$name" "accepted (exit 0)"
    elif ! grep -q -e "$words" "$T/rej.err"; then
        fail "$name" "message lacks '$words': $(oneline <"$T/rej.err")"
    elif [ "$(wc -l <"$T/rej.err")" -ne 1 ]; then
        fail "$name" "not a one-line message: $(oneline <"$T/rej.err")"
    elif [ -e "$T/rej.hpd" ] || [ -e "$T/rej.hpd.tmp" ]; then
        fail "$name" "left an output file behind"
    else
        pass "$name"
    fi
}

# ---- build ------------------------------------------------------------------------------------
built=1
build() {
    name=$1; shift
    if out=$("$@" 2>&1); then pass "dsprites build $name"; else fail "dsprites build $name" "$(printf '%s\n' "$out" | oneline)"; built=0; fi
}
build gen_dsprites $CC $FLAGS tools/gen_dsprites.c -o $GEN -lstb -lm
build dsprites2hpd $CC $FLAGS tools/dsprites2hpd.c -o $CONV -lm
build dsprites_check $CC $FLAGS tests/dsprites_check.c -o $CHK -lm
build inflate_stream_check $CC $FLAGS tests/inflate_stream_check.c -o $B/inflate_stream_check
[ "$built" -eq 1 ] || finish

# ---- gen_dsprites: the full grid --------------------------------------------------------------
ok "gen_dsprites --help" $GEN --help
t0=$(date +%s)
if out=$($GEN --quiet $T/grid.hpd 2>&1); then
    pass "gen_dsprites full grid ($(($(date +%s) - t0)) s, $(wc -c <$T/grid.hpd | tr -d ' ') bytes)"
    checks grid $T/grid.hpd
    checks geometry $T/grid.hpd
else
    fail "gen_dsprites full grid" "$(printf '%s\n' "$out" | oneline)"
fi

# ---- gen_dsprites: --where, --random, --pick, --png -------------------------------------------
if [ -f $T/grid.hpd ]; then
    ok "gen_dsprites --where shape=1,scale=5" $GEN --quiet --where "shape=1,scale=5" $T/w1.hpd
    checks where --grid $T/w1.hpd 40960 shape=1 scale=5
    checks match $T/w1.hpd $T/grid.hpd
    ok "gen_dsprites --where with ranges and alternatives" $GEN --quiet --where "orientation=0-3|39, posX=31,posY=2-4,0=0" $T/w2.hpd
    checks where --grid $T/w2.hpd 270 orientation=0-3\|39 posX=31 posY=2-4

    ok "gen_dsprites --random 2000 --seed 5" $GEN --quiet --random 2000 --seed 5 $T/r1.hpd
    $GEN --quiet --random 2000 --seed 5 $T/r2.hpd >/dev/null 2>&1
    $GEN --quiet --random 2000 --seed 6 $T/r3.hpd >/dev/null 2>&1
    if [ -s $T/r1.hpd ] && cmp -s $T/r1.hpd $T/r2.hpd; then pass "gen_dsprites random: same seed, same bytes"
    else fail "gen_dsprites random: same seed, same bytes" "two runs with --seed 5 differ"; fi
    if [ -s $T/r3.hpd ] && ! cmp -s $T/r1.hpd $T/r3.hpd; then pass "gen_dsprites random: another seed, other pictures"
    else fail "gen_dsprites random: another seed, other pictures" "--seed 5 and --seed 6 give the same file"; fi
    checks random $T/r1.hpd 2000 5
    checks match $T/r1.hpd $T/grid.hpd
    ok "gen_dsprites --random with --where" $GEN --quiet --random 500 --seed 9 --where "shape=2,posY=0-3|30" $T/r4.hpd
    checks where $T/r4.hpd 500 shape=2 posY=0-3\|30
    checks match $T/r4.hpd $T/grid.hpd

    ok "gen_dsprites --pick" $GEN --quiet --pick 0,1,32,737279,491520,12345 $T/p.hpd
    checks indices $T/p.hpd 0,1,32,737279,491520,12345
    checks match $T/p.hpd $T/grid.hpd
fi
if $GEN --where "shape=2,scale=5,posX=16,posY=16" --png-count 40 --png-cols 10 --png $T/hearts.png >/dev/null 2>&1 &&
   [ "$(head -c 4 $T/hearts.png | tail -c 3)" = "PNG" ]; then pass "gen_dsprites --png writes a PNG preview"
else fail "gen_dsprites --png writes a PNG preview" "no PNG written"; fi
reject "gen_dsprites rejects an unknown factor" "unknown factor" $GEN --where "size=1" $T/rej.hpd
reject "gen_dsprites rejects an index out of range" "shape indices are 0..2" $GEN --where "shape=3" $T/rej.hpd
reject "gen_dsprites rejects a malformed --where" "NAME=VALUES" $GEN --where "shape" $T/rej.hpd
reject "gen_dsprites rejects --random 0" "at least" $GEN --random 0 $T/rej.hpd
reject "gen_dsprites rejects --pick with --where" "cannot be combined" $GEN --pick 1 --where shape=1 $T/rej.hpd
reject "gen_dsprites rejects a bad --pick index" "not a grid index" $GEN --pick 1,737280 $T/rej.hpd
reject "gen_dsprites rejects an unknown option" "unknown option" $GEN --frobnicate $T/rej.hpd

# ---- the streaming inflater, on data with every kind of deflate block --------------------------
inflate_ok() {
    name=$1; file=$2; level=$3
    if gzip -n "-$level" -c <"$file" >"$T/in.gz" && $B/inflate_stream_check <"$T/in.gz" >"$T/in.out" 2>"$T/in.err" &&
       cmp -s "$T/in.out" "$file"; then pass "$name"
    else fail "$name" "$(oneline <"$T/in.err")"; fi
}
inflate_ok "inflate_stream: text, gzip -1 (dynamic blocks)" hephaestus.h 1
inflate_ok "inflate_stream: text, gzip -9" hephaestus.h 9
gzip -n -c <tests/fixtures/dsprites_small_stored.npz >"$T/once.gz"
inflate_ok "inflate_stream: incompressible data (stored blocks)" "$T/once.gz" 6
printf 'dsprites dsprites dsprites' >"$T/short.txt"
inflate_ok "inflate_stream: short input (fixed Huffman block)" "$T/short.txt" 6
: >"$T/empty.txt"
inflate_ok "inflate_stream: empty input" "$T/empty.txt" 6
gzip -n -c <hephaestus.h | head -c 2000 >"$T/trunc.gz"
reject "inflate_stream: truncated stream" "truncated deflate stream" sh -c "$B/inflate_stream_check <$T/trunc.gz >/dev/null"

# ---- dsprites2hpd on the fixture: every route gives the fixture's pixels and classes -----------
ok "dsprites2hpd --help" $CONV --help
ok "dsprites2hpd npz deflated" $CONV --quiet --npz $FX/dsprites_small.npz $T/z.hpd
checks fixture $T/z.hpd
ok "dsprites2hpd npz stored" $CONV --quiet --npz $FX/dsprites_small_stored.npz $T/zs.hpd
checks fixture $T/zs.hpd
ok "dsprites2hpd npz with data descriptors" $CONV --quiet --npz $FX/dsprites_small_stream.npz $T/zd.hpd
checks fixture $T/zd.hpd
ok "dsprites2hpd --cat imgs.npy" sh -c "$CONV --npz $FX/dsprites_small.npz --cat imgs.npy >$T/imgs.npy"
ok "dsprites2hpd --cat latents_classes.npy" sh -c "$CONV --npz $FX/dsprites_small_stored.npz --cat latents_classes.npy >$T/classes.npy"
ok "dsprites2hpd npy files" $CONV --quiet --imgs $T/imgs.npy --classes $T/classes.npy $T/f.hpd
checks fixture $T/f.hpd
ok "dsprites2hpd npy from a pipe" sh -c "cat $T/imgs.npy | $CONV --quiet --imgs - --classes $T/classes.npy $T/pipe.hpd"
checks fixture $T/pipe.hpd
ok "dsprites2hpd npy version 2.0" $CONV --quiet --imgs $T/imgs.npy --classes $FX/classes_v2.npy $T/v2.hpd
checks fixture $T/v2.hpd
same=1
for f in zs zd f pipe v2; do cmp -s $T/z.hpd $T/$f.hpd || same=0; done
if [ "$same" -eq 1 ]; then pass "dsprites2hpd: all six routes write the same bytes"
else fail "dsprites2hpd: all six routes write the same bytes" "the .hpd files differ"; fi

# ---- dsprites2hpd rejections --------------------------------------------------------------------
head -c 100000 $T/imgs.npy >$T/trunc.npy
head -c 50 $T/imgs.npy >$T/trunc_header.npy
reject "dsprites2hpd rejects a truncated npy file" "trunc.npy: .*truncated" $CONV --imgs $T/trunc.npy --classes $T/classes.npy $T/rej.hpd
reject "dsprites2hpd rejects a truncated npy from a pipe" "standard input.*truncated: 99872 of 163840" \
    sh -c "cat $T/trunc.npy | $CONV --imgs - --classes $T/classes.npy $T/rej.hpd"
reject "dsprites2hpd rejects a truncated npy header" "truncated in the header" \
    sh -c "cat $T/trunc_header.npy | $CONV --imgs - --classes $T/classes.npy $T/rej.hpd"
# labels that imgs cannot hold are refused from the header, before they are read (issue #20: a
# deflated member of a few MB claiming 960 MB of labels took 1.4 GB; tests/hostile/run.sh)
sed "s/'shape': (40, 6), }     /'shape': (9999999, 6), }/" $T/classes.npy >$T/classes_many.npy
# a .npy's own size bounds its rows (the .npz case, where the inflated stream is the risk, is
# bounded by imgs.npy's size: class 7 in tests/test_hostile.sh)
reject "dsprites2hpd refuses more label rows than the .npy file holds" "classes_many.npy: the file holds 2048 bytes but its header promises 480000080" \
    $CONV --imgs $T/imgs.npy --classes $T/classes_many.npy $T/rej.hpd
reject "dsprites2hpd rejects a wrong magic" "bad_magic.npy: not a .npy file (wrong magic" $CONV --imgs $T/imgs.npy --classes $FX/bad_magic.npy $T/rej.hpd
reject "dsprites2hpd rejects a wrong dtype (classes int32)" "classes_i4.npy: field 'descr' is '<i4'" $CONV --imgs $T/imgs.npy --classes $FX/classes_i4.npy $T/rej.hpd
reject "dsprites2hpd rejects a wrong dtype (imgs uint16)" "imgs_u2.npy: field 'descr' is '<u2'" $CONV --imgs $FX/imgs_u2.npy --classes $T/classes.npy $T/rej.hpd
reject "dsprites2hpd rejects fortran_order True" "classes_fortran.npy: field 'fortran_order' is True" $CONV --imgs $T/imgs.npy --classes $FX/classes_fortran.npy $T/rej.hpd
reject "dsprites2hpd rejects imgs and classes of different lengths" "imgs.npy: field 'shape': imgs holds 40 pictures but latents_classes has 39 rows" \
    $CONV --imgs $T/imgs.npy --classes $FX/classes_39.npy $T/rej.hpd
reject "dsprites2hpd rejects a class index out of range" "row 7, column 1 (shape) is 3" $CONV --imgs $T/imgs.npy --classes $FX/classes_range.npy $T/rej.hpd
reject "dsprites2hpd rejects an absurd picture count" "imgs_absurd.npy: field 'shape': 1000000000000 pictures" \
    $CONV --imgs $FX/imgs_absurd.npy --classes $T/classes.npy $T/rej.hpd
reject "dsprites2hpd rejects a shape beyond 64 bits" "imgs_overflow.npy: header: field 'shape' has a number too large" \
    $CONV --imgs $FX/imgs_overflow.npy --classes $T/classes.npy $T/rej.hpd
reject "dsprites2hpd rejects trailing bytes" "trailing bytes" sh -c "cat $T/imgs.npy $T/short.txt | $CONV --imgs - --classes $T/classes.npy $T/rej.hpd"
head -c 2000 $FX/dsprites_small.npz >$T/trunc.npz
reject "dsprites2hpd rejects a truncated npz" "trunc.npz: truncated ZIP file" $CONV --npz $T/trunc.npz $T/rej.hpd
cp $FX/dsprites_small.npz $T/corrupt.npz
printf 'ZZZZ' | dd of=$T/corrupt.npz bs=1 seek=700 conv=notrunc 2>/dev/null
reject "dsprites2hpd rejects a corrupt deflated member" "corrupt.npz: imgs.npy: \(corrupt deflate data\|CRC-32 mismatch\|[0-9]* bytes inflated, the directory says\)" $CONV --npz $T/corrupt.npz $T/rej.hpd
cp $FX/dsprites_small_stored.npz $T/corrupt_stored.npz
printf 'ZZZZ' | dd of=$T/corrupt_stored.npz bs=1 seek=9000 conv=notrunc 2>/dev/null
reject "dsprites2hpd rejects a stored member with a wrong CRC" "imgs.npy: CRC-32 mismatch" $CONV --npz $T/corrupt_stored.npz $T/rej.hpd
reject "dsprites2hpd names a missing member" "no member nothing.npy (members: metadata.npy imgs.npy" $CONV --npz $FX/dsprites_small.npz --cat nothing.npy
reject "dsprites2hpd rejects an npz on a pipe" "needs a file, not a pipe" sh -c "cat $FX/dsprites_small.npz | $CONV --npz - $T/rej.hpd"
reject "dsprites2hpd rejects a file that is not a zip" "not a ZIP" $CONV --npz $T/imgs.npy $T/rej.hpd

finish

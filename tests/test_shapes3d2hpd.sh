#!/bin/sh
# tests/test_shapes3d2hpd.sh - tests of tools/shapes3d2hpd.c, the 3dshapes.h5 converter (POSIX sh).
# Run from the repository root: sh tests/test_shapes3d2hpd.sh
# Needs Debian's libhdf5-dev (headers in /usr/include/hdf5/serial); without it the script prints
# one SKIP line and exits 0 (tests/run.sh counts a script that only skipped as skipped). Also
# needs libstb-dev (gen_shapes3d, for the same-bytes comparison). Builds into tests/build/;
# tests/shapes3d_h5.c writes small .h5 files with the real file's layout through the HDF5 C
# API and checks the converted .hpd files. Prints one "PASS name" or "FAIL name: why" line per
# check, a last line "N passed, N failed", and exits 1 if any check failed. About 10 s.
# Environment: CC (default cc); SHAPES3D_CFLAGS replaces the compiler flags below; HDF5_INC
# (default /usr/include/hdf5/serial) and HDF5_LIB (default -lhdf5_serial) as in the Makefile.

cd "$(dirname "$0")/.." || exit 1
CC=${CC:-cc}
HDF5_INC=${HDF5_INC:-/usr/include/hdf5/serial}
HDF5_LIB=${HDF5_LIB:--lhdf5_serial}
if [ ! -f "$HDF5_INC/hdf5.h" ]; then
    echo "SKIP shapes3d2hpd: no $HDF5_INC/hdf5.h, so no converter to test (apt-get install libhdf5-dev)"
    exit 0
fi
FLAGS=${SHAPES3D_CFLAGS:-"-std=c99 -O2 -Wall -Wextra -Wpedantic -Wdouble-promotion -Werror -D_POSIX_C_SOURCE=200809L -I."}
ASAN="-std=c99 -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -Wall -Wextra -Wpedantic -Werror -D_POSIX_C_SOURCE=200809L -I."
B=tests/build
T=$B/shapes3d2hpd_tmp
CONV=$B/shapes3d2hpd
CONV_ASAN=$B/shapes3d2hpd-asan
H5=$B/shapes3d_h5
GEN=$B/shapes3d2hpd_gen
npass=0
nfail=0
mkdir -p "$T" || exit 1
rm -f "$T"/*
export ASAN_OPTIONS="detect_leaks=1:exitcode=86"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=86"

pass() { npass=$((npass + 1)); echo "PASS $1"; }
fail() { nfail=$((nfail + 1)); echo "FAIL $1: $2"; }
oneline() { head -n 3 | tr '\n' ' ' | cut -c1-300; }
finish() {
    rm -rf "$T"
    echo "shapes3d2hpd: $npass passed, $nfail failed"
    [ "$nfail" -eq 0 ]
    exit $?
}

# ok NAME CMD...: PASS when CMD exits 0, else FAIL with its first output lines
ok() {
    name=$1; shift
    if out=$("$@" 2>&1); then pass "$name"; else fail "$name" "$(printf '%s\n' "$out" | oneline)"; fi
}

# convert NAME HPD CONVERTER ARGS...: the conversion succeeds, prints nothing on stderr (the
# files are small: no progress line) and leaves no temporary file; an ASan build must not report
convert() {
    name=$1; hpd=$2; shift 2
    if ! "$@" >"$T/conv.out" 2>"$T/conv.err"; then
        fail "$name" "exit $?: $(oneline <"$T/conv.err")"
    elif [ -s "$T/conv.err" ]; then
        fail "$name" "wrote to stderr: $(oneline <"$T/conv.err")"
    elif [ ! -s "$hpd" ] || [ -e "$hpd.tmp" ]; then
        fail "$name" "no $hpd, or its temporary file left behind"
    else
        pass "$name"
    fi
}

# reject NAME WORDS FILE.h5 [ARGS...]: converting FILE.h5 must fail with exactly one line on stderr
# that names FILE.h5 and contains WORDS (fixed text), write nothing to $T/rej.hpd and leave no
# temporary file; the ASan build fails the same way without a sanitizer report
reject() {
    name=$1; words=$2; in=$3; shift 3
    for c in "$CONV" "$CONV_ASAN"; do
        rm -f "$T/rej.hpd" "$T/rej.hpd.tmp"
        "$c" "$@" "$in" "$T/rej.hpd" >"$T/rej.out" 2>"$T/rej.err"
        rc=$?
        if [ "$rc" -eq 0 ]; then
            fail "$name" "$c accepted $in (exit 0)"; return
        elif grep -q -e Sanitizer -e 'runtime error' "$T/rej.err" || [ "$rc" -eq 86 ]; then
            fail "$name" "$c: sanitizer report: $(oneline <"$T/rej.err")"; return
        elif ! grep -q -F -e "$words" "$T/rej.err" || ! grep -q -F -e "$in" "$T/rej.err"; then
            fail "$name" "$c: message lacks '$words' or the file name: $(oneline <"$T/rej.err")"; return
        elif [ "$(wc -l <"$T/rej.err")" -ne 1 ]; then
            fail "$name" "$c: not a one-line message: $(oneline <"$T/rej.err")"; return
        elif [ -e "$T/rej.hpd" ] || [ -e "$T/rej.hpd.tmp" ]; then
            fail "$name" "$c left an output file behind"; return
        fi
    done
    pass "$name ($(cat "$T/rej.err" | cut -c1-160))"
}

# ---- build ------------------------------------------------------------------------------------
built=1
build() {
    name=$1; shift
    if out=$("$@" 2>&1); then pass "shapes3d2hpd build $name"; else fail "shapes3d2hpd build $name" "$(printf '%s\n' "$out" | oneline)"; built=0; fi
}
build converter $CC $FLAGS -I"$HDF5_INC" tools/shapes3d2hpd.c -o $CONV $HDF5_LIB -lm
build "converter (ASan, UBSan)" $CC $ASAN -I"$HDF5_INC" tools/shapes3d2hpd.c -o $CONV_ASAN $HDF5_LIB -lm
build "test helper" $CC $FLAGS -I"$HDF5_INC" tests/shapes3d_h5.c -o $H5 $HDF5_LIB -lm
build gen_shapes3d $CC $FLAGS tools/gen_shapes3d.c -o $GEN -lstb -lm
[ "$built" = 1 ] || finish

# ---- conversions: pixels and factor indices exact ------------------------------------------
# 1,500 pictures in chunks of 7 rows (so reads of 1,022 rows, the last one short), shuffle +
# deflate, scattered grid tuples, odd rows' labels rounded to float32
ok "write good.h5 (chunked, deflate)" $H5 write $T/good.h5 good 1500
convert "convert good.h5" $T/good.hpd $CONV --quiet $T/good.h5 $T/good.hpd
ok "good.hpd: header, factor table, pixels CHW, indices" $H5 check $T/good.hpd good 1500
convert "convert good.h5 (ASan, UBSan build)" $T/good-asan.hpd $CONV_ASAN --quiet $T/good.h5 $T/good-asan.hpd
if cmp -s $T/good.hpd $T/good-asan.hpd; then pass "ASan build writes the same bytes"; else fail "ASan build writes the same bytes" "good.hpd differs"; fi
convert "--limit 100" $T/l100.hpd $CONV --limit 100 $T/good.h5 $T/l100.hpd
ok "--limit 100: the first 100 pictures" $H5 check $T/l100.hpd good 100
convert "--limit above the count" $T/l9.hpd $CONV -q --limit 9999 $T/good.h5 $T/l9.hpd
ok "--limit above the count: all 1500" $H5 check $T/l9.hpd good 1500
out=$($CONV --limit 100 $T/good.h5 $T/l100.hpd 2>/dev/null)
if printf '%s\n' "$out" | grep -q -F "wrote $T/l100.hpd: 100 of 1500 pictures"; then pass "summary line on stdout"
else fail "summary line on stdout" "$(printf '%s\n' "$out" | oneline)"; fi
# contiguous, uncompressed: 1,100 rows read as 1,024 + 76
ok "write contig.h5 (contiguous)" $H5 write $T/contig.h5 contig 1100
convert "convert contig.h5" $T/contig.hpd $CONV $T/contig.h5 $T/contig.hpd
ok "contig.hpd: pixels and indices" $H5 check $T/contig.hpd contig 1100
# over an existing file: replaced
convert "output over an existing file" $T/contig.hpd $CONV $T/contig.h5 $T/contig.hpd

# ---- the same bytes as gen_shapes3d: a model trained on rendered data reads converted data --
# 120 rendered pictures stored HWC as in the real file, converted, against gen_shapes3d's file
ok "write rendered.h5 (gen_shapes3d's pictures, HWC)" $H5 write $T/rendered.h5 rendered 120
convert "convert rendered.h5" $T/rendered.hpd $CONV $T/rendered.h5 $T/rendered.hpd
ok "rendered.hpd: pictures equal the renderer's" $H5 check $T/rendered.hpd rendered 120
ok "gen_shapes3d --where floor_hue=2,wall_hue=3,object_hue=4,shape=2" \
    $GEN --quiet --where floor_hue=2,wall_hue=3,object_hue=4,shape=2 $T/gen.hpd
ok "converted file = gen_shapes3d's file but flags and source" $H5 same-as-gen $T/gen.hpd $T/rendered.hpd

# ---- malformed inputs: one line naming the file and the problem, nothing written ------------
for k in chw rgba imgrank u16 i8 labi64 labf32 labcols labrank count noimages nolabels group offgrid nan; do
    $H5 write $T/$k.h5 $k 40 >/dev/null || fail "write $k.h5" "$($H5 write $T/$k.h5 $k 40)"
done
$H5 write $T/empty.h5 empty 0 >/dev/null || fail "write empty.h5" "helper failed"
reject "missing dataset images" "no dataset 'images' at the root" $T/noimages.h5
reject "missing dataset labels" "no dataset 'labels' at the root" $T/nolabels.h5
reject "images is a group" "'images' is not a dataset" $T/group.h5
reject "images CHW (N,3,64,64)" "dataset 'images' has shape (40, 3, 64, 64); expected (N, 64, 64, 3)" $T/chw.h5
reject "images RGBA (N,64,64,4)" "has shape (40, 64, 64, 4); expected (N, 64, 64, 3)" $T/rgba.h5
reject "images rank 3" "has shape (40, 64, 64); expected" $T/imgrank.h5
reject "images uint16" "dataset 'images' holds uint16; expected uint8" $T/u16.h5
reject "images int8" "dataset 'images' holds int8; expected uint8" $T/i8.h5
reject "labels int64" "dataset 'labels' holds int64; expected float64" $T/labi64.h5
reject "labels float32" "dataset 'labels' holds float32; expected float64" $T/labf32.h5
reject "labels (N,5)" "dataset 'labels' has shape (40, 5); expected (N, 6)" $T/labcols.h5
reject "labels rank 1" "dataset 'labels' has shape (240,); expected (N, 6)" $T/labrank.h5
reject "labels one row short" "images has 40 pictures but labels has 39 rows" $T/count.h5
reject "label off the grid" "labels row 5, column 3 (scale) is 0.80000000000000004: not one of the 8 scale values" $T/offgrid.h5
reject "label NaN" "labels row 2, column 0 (floor_hue) is nan" $T/nan.h5
reject "label off the grid beyond --limit is not read" "labels row 5" $T/offgrid.h5 --limit 6
reject "no pictures" "the datasets hold no pictures" $T/empty.h5
printf 'not hdf5\n' >$T/text.h5
reject "not an HDF5 file" "not an HDF5 file" $T/text.h5
reject "missing input file" "cannot open: No such file" $T/no-such.h5
head -c $(($(wc -c <$T/good.h5) / 2)) $T/good.h5 >$T/trunc.h5
reject "truncated file (half)" "cannot open as HDF5 (truncated or corrupt file?) (HDF5: truncated file" $T/trunc.h5
cp $T/good.h5 $T/corrupt.h5 && $H5 corrupt $T/corrupt.h5
reject "corrupt chunk (512 bytes flipped mid-file)" "cannot read images rows" $T/corrupt.h5 --quiet
convert "offgrid.h5 --limit 5 (rows before the bad one)" $T/lim5.hpd $CONV --limit 5 $T/offgrid.h5 $T/lim5.hpd
# a failed conversion leaves an existing output untouched (temporary file + rename)
echo old >$T/keep.hpd
if $CONV $T/offgrid.h5 $T/keep.hpd >/dev/null 2>&1; then fail "failed conversion keeps the old output" "exit 0"
elif [ "$(cat $T/keep.hpd)" != old ] || [ -e $T/keep.hpd.tmp ]; then fail "failed conversion keeps the old output" "changed or .tmp left"
else pass "failed conversion keeps the old output"; fi
if out=$($CONV $T/good.h5 $T/no-such-dir/o.hpd 2>&1); then fail "output folder missing" "exit 0"
elif printf '%s\n' "$out" | grep -q "no-such-dir/o.hpd"; then pass "output folder missing: $(printf '%s\n' "$out" | oneline)"
else fail "output folder missing" "message: $out"; fi

# ---- command line -------------------------------------------------------------------------
usage_err() { # NAME WORDS ARGS...: exit status 2 and WORDS in the message
    name=$1; words=$2; shift 2
    out=$($CONV "$@" 2>&1); rc=$?
    if [ $rc -eq 2 ] && printf '%s\n' "$out" | grep -q -F -e "$words"; then pass "$name"; else fail "$name" "exit $rc: $out"; fi
}
usage_err "no arguments" "give the .h5 file and the output .hpd"
usage_err "one argument" "give the .h5 file" $T/good.h5
usage_err "unknown option" "unknown option --fast" --fast $T/good.h5 $T/x.hpd
usage_err "--limit 0" "--limit needs a positive integer" --limit 0 $T/good.h5 $T/x.hpd
usage_err "--limit abc" "--limit needs a positive integer" --limit abc $T/good.h5 $T/x.hpd
usage_err "--limit without a value" "--limit needs a value" $T/good.h5 $T/x.hpd --limit
usage_err "three files" "too many arguments" $T/good.h5 $T/x.hpd $T/y.hpd
if $CONV --help | grep -q "usage: shapes3d2hpd"; then pass "--help"; else fail "--help" "no usage line"; fi
if ls $T/*.tmp >/dev/null 2>&1; then fail "temporary files left behind" "$(ls $T/*.tmp | oneline)"; else pass "no temporary files left behind"; fi

finish

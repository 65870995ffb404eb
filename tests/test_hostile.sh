#!/bin/sh
# tests/test_hostile.sh - regression tests of issue #20 (hostile files and flags, non-finite
# state, bounded work, atomic outputs, concurrent runs), one group per class of the issue:
#   1  checkpoints whose step is >= 2^63 or 2^64-1 (valid checksum): refused, no endless run;
#   2  checkpoints with lr Inf/NaN/-1/1e6, beta1 1, NaN/Inf/negative Adam moments, NaN or Inf
#      weights, objective weights Inf or negative: refused at load, naming the field;
#   4  a sparse .hpd of 2^32 pictures (picture 0 grey, the others black) trains on all of them;
#   6  every subcommand refuses --out "" and nothing appears in /;
#   9  on a full 2 MB tmpfs and then read-only: exit 1 with ENOSPC/EROFS, old outputs intact,
#      no temporaries left (SKIP when not root: it mounts the tmpfs);
#  10  a second training in a folder being trained in refuses; readers see whole checkpoints;
#   8  FIFOs, folders and dangling links among pictures are skipped; as data they are refused;
#   5  --enc/--dec longer than the 511 characters a checkpoint holds are usage errors;
#   3  float pictures with NaN, -1 or 2 (value_max 1) are refused naming the picture;
#   7  a gzip bomb behind an IDX header, an .npz claiming millions of label rows beside one
#      picture, a checkpoint whose max_batch asks for GBs (--mem-budget), a spec of seconds
#      per step (warning), and --mem-budget in every converter and generator;
#  every writer (21 subcommands and tools: PNG, JSON, CSV, HTML, .hpd, .hpm, .hpn, safetensors):
#      a stale OUT.tmp link is not followed; SIGKILL at each fsync, rename and write
#      (tests/kill_shim.c, LD_PRELOAD) loses no old file and leaves only temporaries of the
#      dead process; a full disk and a read-only folder give exit 1 with the errno, the old
#      files intact and no temporary (root only).
# Files are made by tests/hostile/hostile_gen.c (checkpoint fields with a valid checksum, sparse
# .hpd files) and by printf. POSIX sh; PASS/FAIL lines, then "hostile: N passed, N failed".
cd "$(dirname "$0")/.." || exit 1
CC=${CC:-cc}
B=tests/build
T=$B/hostile_tmp
H=$B/hephaestus_hostile
G=$B/hostile_gen
FLAGS=${CLI_CFLAGS:-"-std=c99 -O2 -Wall -Wextra -Wpedantic -Wdouble-promotion -Werror -D_POSIX_C_SOURCE=200809L -D_FILE_OFFSET_BITS=64 -I."}
npass=0; nfail=0
rm -rf "$T" && mkdir -p "$T" || exit 1
pass() { npass=$((npass + 1)); echo "PASS $1"; }
fail() { nfail=$((nfail + 1)); echo "FAIL $1: $2"; }
finish() { [ "$nfail" -eq 0 ] && rm -rf "$T"; echo "hostile: $npass passed, $nfail failed"; [ "$nfail" -eq 0 ]; exit $?; }
# check_err NAME CODE TEXT CMD...: CMD (given 60 s) exits with CODE, one line on stderr with TEXT
check_err() {
    name=$1; code=$2; text=$3; shift 3
    out=$(timeout 60 "$@" 2>&1 >/dev/null)
    rc=$?
    if [ "$rc" -eq 124 ]; then fail "$name" "still running after 60 s (killed)"
    elif [ "$rc" -ne "$code" ]; then fail "$name" "exit status $rc, expected $code ($(echo "$out" | tail -n 1))"
    elif [ "$(echo "$out" | wc -l)" -ne 1 ]; then fail "$name" "expected one line on stderr, got: $(echo "$out" | tr '\n' '|')"
    elif ! echo "$out" | grep -q -- "$text"; then fail "$name" "message lacks \"$text\": $out"
    else pass "$name"; fi
}
# check_last NAME CODE TEXT CMD...: as check_err, for commands that print progress lines first:
# only the last line of stderr must hold TEXT
check_last() {
    name=$1; code=$2; text=$3; shift 3
    out=$(timeout 60 "$@" 2>&1 >/dev/null | tail -n 1)
    rc=$(timeout 60 "$@" >/dev/null 2>&1; echo $?)
    if [ "$rc" -ne "$code" ]; then fail "$name" "exit status $rc, expected $code ($out)"
    elif ! echo "$out" | grep -q -- "$text"; then fail "$name" "message lacks \"$text\": $out"
    else pass "$name"; fi
}
le32() { printf '\\%03o\\%03o\\%03o\\%03o' $(($1 & 255)) $((($1 >> 8) & 255)) $((($1 >> 16) & 255)) $((($1 >> 24) & 255)); }
le64() { printf '%s%s' "$(le32 $(($1 & 4294967295)))" "$(le32 $(($1 >> 32)))"; }
# mk_hpd FILE COUNT PX: f32 pictures 1x2x2 without factors, every value PX (printf escapes)
mk_hpd() {
    {
        printf 'HEPHHPD\000'; printf "$(le32 1)$(le32 128)$(le64 "$2")$(le32 1)$(le32 2)$(le32 2)$(le32 2)$(le32 0)"
        printf '\000\000\200\077'; printf "$(le32 0)$(le32 0)$(le64 0)$(le64 $((128 + $2 * 16)))"
        head -c 56 /dev/zero
        i=0; while [ "$i" -lt $(($2 * 4)) ]; do printf "$3"; i=$((i + 1)); done
    } >"$1"
}

if ! out=$($CC $FLAGS tools/hephaestus.c -o $H -lstb -lm 2>&1); then fail build "$(echo "$out" | head -n 3 | tr '\n' ' ')"; finish; fi
if ! out=$($CC $FLAGS tests/hostile/hostile_gen.c -o $G 2>&1); then fail "build hostile_gen" "$(echo "$out" | head -n 3 | tr '\n' ' ')"; finish; fi
HALF='\000\000\000\077'
mk_hpd $T/good.hpd 8 "$HALF"
M="--enc dense4,relu --dec dense4 --z 2 --batch-size 2 --seed 3"
if ! $H train --data $T/good.hpd $M --steps 2 --out $T/m >/dev/null 2>&1; then fail "a small model trains" "no checkpoint"; finish; fi
C=$T/m/model.hpm

# ---- class 1: step counters beyond the signed range ------------------------------------------------
$G hpm-set $C $T/step63.hpm step 9223372036854775808
$G hpm-set $C $T/stepmax.hpm step 18446744073709551615
check_err "class 1: a checkpoint at step 2^63 is refused (no endless run)" 1 "step63.hpm: step 9223372036854775808 is out of range" \
    $H train --data $T/good.hpd --resume $T/step63.hpm --steps 10 --out $T/x1
check_err "class 1: a checkpoint at step 2^64-1 is refused" 1 "stepmax.hpm: step 18446744073709551615 is out of range" \
    $H train --data $T/good.hpd --resume $T/stepmax.hpm --steps 10 --out $T/x1

# ---- class 2: numeric fields of a checkpoint validated as the flags are -----------------------------
# hostile FIELD VALUE TEXT: the patched checkpoint is refused by train --resume and by sample
hostile_field() {
    $G hpm-set $C $T/f.hpm "$1" "$2"
    check_err "class 2: $1 = $2 in a checkpoint is refused (train --resume)" 1 "f.hpm: $3" \
        $H train --data $T/good.hpd --resume $T/f.hpm --steps 10 --out $T/x2
}
hostile_field lr inf "learning rate inf is out of range"
hostile_field lr nan "learning rate nan is out of range"
hostile_field lr -1 "learning rate -1 is out of range"
hostile_field lr 1e6 "learning rate 1e+06 is out of range"
hostile_field beta1 1 "Adam beta1 1 is out of range"
hostile_field eps 0 "Adam eps 0 is out of range"
hostile_field beta inf "objective beta inf is out of range"
hostile_field gamma -1 "objective gamma -1 is out of range"
hostile_field c_max nan "objective c_max nan is out of range"
hostile_field param0 nan "parameter 0 is nan"
hostile_field param0 inf "parameter 0 is inf"
hostile_field adam_m0 nan "Adam first moment of parameter 0 is nan"
hostile_field adam_v0 -1 "Adam second moment of parameter 0 is -1"
hostile_field adam_v0 inf "Adam second moment of parameter 0 is inf"
$G hpm-set $C $T/f.hpm param0 nan
check_err "class 2: NaN weights are refused when the model is loaded, not blamed on the batch (outliers)" 1 "f.hpm: parameter 0 is nan" \
    $H outliers --model $T/f.hpm --batch $T/good.hpd --out $T/x2
# a finite state whose next update is not: first moment 3e38 with a tiny second moment
$G hpm-set $C $T/big_m.hpm adam_m0 3e38
check_err "class 2: a step whose Adam update overflows is refused before anything changes" 1 \
    "training stopped at step 2: step 2: the Adam update of parameter 0 (encoder) is not finite" \
    $H train --data $T/good.hpd --resume $T/big_m.hpm --steps 10 --checkpoint-every 1 --out $T/x2u
if [ ! -e $T/x2u/model.hpm ]; then pass "class 2: the refused step left no checkpoint with an Inf weight"
else fail "class 2: refused update" "a checkpoint was written: $($H export --model $T/x2u/model.hpm --out $T/x2u/c.hpm 2>&1)"; fi
check_err "class 2: the message does not claim a checkpoint that does not exist" 1 "no checkpoint was written to $T/x2u/model.hpm" \
    $H train --data $T/good.hpd --resume $T/big_m.hpm --steps 10 --checkpoint-every 1 --out $T/x2u

# ---- class 4: 2^32 pictures and more are drawn with 64-bit draws ---------------------------------
# picture 0 is grey (BCE at least ln 2 = 0.69), the 2^32 - 1 others black (BCE can fall to 0): a
# run that draws only picture 0 cannot get its reconstruction loss below 0.69
if $G hpd-sparse $T/big.hpd 4294967296 1 1 1; then
    out=$(timeout 120 $H train --data $T/big.hpd --enc dense4,relu --dec dense1 --z 1 --batch-size 32 --lr 0.02 --steps 300 \
        --log-every 50 --out $T/x4 2>&1)
    rc=$?
    r=$(tail -n 1 $T/x4/train_log.csv 2>/dev/null | cut -d, -f3)
    if [ "$rc" -eq 0 ] && [ -n "$r" ] && awk "BEGIN { exit !($r < 0.3) }"; then
        pass "class 4: a sparse .hpd of 2^32 pictures trains on all of them (recon $r nats, < 0.3)"
    else fail "class 4: 2^32 pictures" "exit $rc, last recon '$r' (0.69 or more: only picture 0 was drawn): $(echo "$out" | tail -n 1)"; fi
else fail "class 4: 2^32 pictures" "cannot write a sparse file"; fi

# ---- class 6: an empty --out is refused, nothing is written to / -------------------------------------
# (on the old code train wrote /model.hpm: anything new in / is removed again)
LC_ALL=C ls -a / | LC_ALL=C sort >$T/root_before
for sub in train outliers explain counterfactual morph report traverse sample eval batch export classifier relabel cycle-train transfer cycle-eval; do
    case $sub in
        classifier|cycle-train) args="--data $T/good.hpd" ;;
        transfer|cycle-eval) args="--model $C --data $T/good.hpd" ;;
        relabel) args="--model $C --data $T/good.hpd" ;;
        train) args="--data $T/good.hpd $M --steps 2" ;;
        batch) args="--data $T/good.hpd --normal 0=0" ;;
        export|traverse|sample) args="--model $C" ;;
        eval) args="--model $C --data $T/good.hpd" ;;
        *) args="--model $C --batch $T/good.hpd --cov ridge" ;;
    esac
    check_err "class 6: $sub --out \"\" is a usage error" 2 "needs a file or folder name, got an empty string" $H $sub $args --out ""
done
LC_ALL=C ls -a / | LC_ALL=C sort >$T/root_after
for f in $(LC_ALL=C comm -13 $T/root_before $T/root_after); do fail "class 6" "/$f was written"; rm -rf "/$f"; done

# ---- class 9: a full disk or a read-only folder: exit 1 with the errno, the old files intact -------
FULL=$T/full
mkdir -p $FULL
if [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=2m tmpfs $FULL 2>/dev/null; then
    # the previous outputs are of 8 pictures, the new ones of 300: they need more room than the old
    # ones free, so a writer that truncates in place loses the old file
    mk_hpd $T/many.hpd 300 "$HALF"
    $H outliers --model $C --batch $T/good.hpd --cov ridge --out $FULL/o >/dev/null 2>&1
    $H report --model $C --batch $T/good.hpd --cov ridge --out $FULL/r >/dev/null 2>&1
    cp $FULL/o/outliers.json $T/outliers.good 2>/dev/null; cp $FULL/r/report.html $T/report.good 2>/dev/null
    mkdir -p $FULL/s $FULL/t $FULL/e $FULL/b
    dd if=/dev/zero of=$FULL/filler bs=4096 >/dev/null 2>&1 # until the disk is full
    check_err "class 9: sample on a full disk exits 1 with ENOSPC" 1 "samples.png: cannot write (No space left on device)" \
        $H sample --model $C --out $FULL/s
    if [ -e $FULL/s/samples.png ]; then fail "class 9: sample on a full disk" "left a (truncated) samples.png"; else pass "class 9: sample on a full disk leaves no truncated PNG"; fi
    check_err "class 9: outliers on a full disk exits 1 with ENOSPC" 1 "No space left on device" \
        $H outliers --model $C --batch $T/many.hpd --cov ridge --out $FULL/o
    if [ -s $T/outliers.good ] && cmp -s $T/outliers.good $FULL/o/outliers.json; then pass "class 9: outliers on a full disk keeps the previous outliers.json"
    else fail "class 9: outliers on a full disk" "the previous outliers.json was truncated or lost"; fi
    check_err "class 9: report on a full disk exits 1 with ENOSPC" 1 "No space left on device" \
        $H report --model $C --batch $T/many.hpd --cov ridge --out $FULL/r
    if [ -s $T/report.good ] && cmp -s $T/report.good $FULL/r/report.html; then pass "class 9: report on a full disk keeps the previous report.html"
    else fail "class 9: report on a full disk" "the previous report.html was truncated or lost"; fi
    check_last "class 9: train on a full disk exits 1 naming the file and ENOSPC" 1 "t/\(train_log.csv\|model.hpm\): cannot write.*No space left on device" \
        $H train --data $T/good.hpd $M --steps 2 --out $FULL/t
    check_last "class 9: train on a full disk, no log lines: the checkpoint's write fails with ENOSPC" 1 "t/model.hpm: cannot write the checkpoint (.*No space left on device)" \
        $H train --data $T/good.hpd $M --steps 3 --checkpoint-every 1 --log-every 1000 --out $FULL/t
    check_err "class 9: export on a full disk exits 1 with ENOSPC" 1 "No space left on device" $H export --model $C --out $FULL/e/w.hpm
    check_err "class 9: eval on a full disk exits 1 with ENOSPC" 1 "No space left on device" $H eval --model $C --data $T/good.hpd --out $FULL/e
    left=$(find $FULL -name '*.tmp' | head -n 3)
    if [ -z "$left" ]; then pass "class 9: failed writes leave no temporary files"; else fail "class 9: temporaries left" "$left"; fi
    rm -f $FULL/filler
    mount -o remount,ro $FULL
    for sub in sample outliers report train export; do
        case $sub in
            train) args="--data $T/good.hpd $M --steps 2 --out $FULL/t" ;;
            sample) args="--model $C --out $FULL/s" ;;
            export) args="--model $C --out $FULL/e/w.hpm" ;;
            *) args="--model $C --batch $T/good.hpd --cov ridge --out $FULL/o" ;;
        esac
        check_err "class 9: $sub into a read-only folder exits 1 with EROFS" 1 "Read-only file system" $H $sub $args
    done
    umount $FULL
else
    echo "SKIP class 9: full disk and read-only folder (needs root to mount a small tmpfs)"
fi

# ---- class 10: one training per folder; readers never see a torn checkpoint --------------------------
timeout 120 $H train --data $T/good.hpd $M --steps 100000 --checkpoint-every 1 --log-every 100000 --out $T/c10 >/dev/null 2>&1 &
pid=$!
i=0; while [ ! -e $T/c10/model.hpm ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i + 1)); done
check_err "class 10: a second training in the same folder refuses clearly" 1 "another training is running in this folder" \
    $H train --data $T/good.hpd $M --steps 5 --checkpoint-every 1 --out $T/c10
torn=0; i=0
while [ $i -lt 30 ]; do $H export --model $T/c10/model.hpm --out $T/c10.hpm >/dev/null 2>&1 || torn=$((torn + 1)); i=$((i + 1)); done
if [ $torn -eq 0 ] && kill -0 $pid 2>/dev/null; then pass "class 10: 30 reads of a checkpoint rewritten every step all load"
else fail "class 10: reads during training" "$torn of 30 reads failed (or the first training died)"; fi
kill $pid 2>/dev/null; wait $pid 2>/dev/null

# ---- class 8: only regular files are read as data -----------------------------------------------------
mkdir -p $T/pics
$H sample --model $C --n 6 --each --out $T/pics >/dev/null 2>&1
mkfifo $T/pics/x.png && mkdir $T/pics/dir.png && ln -s $T/nowhere.png $T/pics/dangling.png
out=$(timeout 30 $H train --data $T/pics $M --steps 2 --out $T/x8 2>&1)
rc=$?
if [ "$rc" -eq 0 ] && echo "$out" | grep -q "skipping $T/pics/x.png (a FIFO)" && echo "$out" | grep -q "skipping $T/pics/dir.png (a folder)" \
    && echo "$out" | grep -q "skipping $T/pics/dangling.png"; then
    pass "class 8: a FIFO, a folder and a dangling link named *.png in a picture folder are skipped with a warning"
else fail "class 8: picture folder with a FIFO" "exit $rc (124: hung): $(echo "$out" | tail -n 2 | tr '\n' '|')"; fi
mkfifo $T/fifo.hpd $T/fifo.hpm
check_err "class 8: a FIFO given as --data is refused, not opened" 1 "fifo.hpd: not a regular file (a FIFO)" \
    $H train --data $T/fifo.hpd $M --steps 2 --out $T/x8
check_err "class 8: a FIFO given as --model is refused" 1 "fifo.hpm: not a regular file (a FIFO)" $H sample --model $T/fifo.hpm --out $T/x8
check_err "class 8: a FIFO given as --batch is refused" 1 "fifo.hpd: not a regular file (a FIFO)" \
    $H outliers --model $C --batch $T/fifo.hpd --out $T/x8
check_err "class 8: a FIFO given as --resume is refused" 1 "fifo.hpm: not a regular file (a FIFO)" \
    $H train --data $T/good.hpd --resume $T/fifo.hpm --steps 2 --out $T/x8
check_err "class 8: /dev/zero given as --data is refused" 1 "/dev/zero: not a regular file (a device)" \
    $H train --data /dev/zero $M --steps 2 --out $T/x8

# ---- class 5: spec strings longer than the checkpoint holds are refused, not cut mid-word ------------
# 36 x "lrelu0.010000," (504 characters) + "dense400": 512 characters, which the 511 of a spec
# field cut to "...dense40", a valid spec of another model
long=""; i=0; while [ $i -lt 36 ]; do long="${long}lrelu0.010000,"; i=$((i + 1)); done
check_err "class 5: an --enc of 512 characters is a usage error, not cut to 511 (a different model)" 2 "enc is 512 characters long; a spec has at most 511" \
    $H train --data $T/good.hpd --enc "${long}dense400" --dec dense4 --z 2 --batch-size 2 --steps 1 --out $T/x5
check_err "class 5: a --dec of 512 characters is a usage error" 2 "dec is 512 characters long; a spec has at most 511" \
    $H train --data $T/good.hpd --enc dense4 --dec "${long}dense400" --z 2 --batch-size 2 --steps 1 --out $T/x5

# ---- class 3: float pictures outside [0, 1] (NaN, Inf, negative, above value_max) are refused --------
# at the first batch that reads them, naming the file and the picture
mk_hpd $T/allnan.hpd 8 '\000\000\300\177'
mk_hpd $T/neg.hpd 8 '\000\000\200\277'
mk_hpd $T/two.hpd 8 '\000\000\000\100'
check_err "class 3: a batch of NaN pictures is refused, not scored D^2 = 0 (outliers)" 1 "allnan.hpd: picture 0, value 0 is nan" \
    $H outliers --model $C --batch $T/allnan.hpd --cov ridge --out $T/x3
check_err "class 3: pixels of -1 are refused (train)" 1 "neg.hpd: picture [0-9]*, value 0 is -1: pixels must lie in \[0, value_max 1\]" \
    $H train --data $T/neg.hpd $M --steps 2 --out $T/x3
check_err "class 3: pixels of 2 with value_max 1 are refused (eval)" 1 "two.hpd: picture 0, value 0 is 2" \
    $H eval --model $C --data $T/two.hpd --out $T/x3

# a u8 file whose value_max is 100 with a pixel of 200 (found by fuzz_hpd: a 1-bit file with
# value_max 0.99999994 gave pixels above 1, silently)
{
    printf 'HEPHHPD\000'; printf "$(le32 1)$(le32 128)$(le64 2)$(le32 1)$(le32 2)$(le32 2)$(le32 1)$(le32 0)"
    printf '\000\000\310\102'; printf "$(le32 0)$(le32 0)$(le64 0)$(le64 136)"; head -c 56 /dev/zero
    printf '\000\144\144\144\310\000\000\000'
} >$T/u8over.hpd
check_err "class 3: a u8 pixel above value_max (200 > 100) is refused, not read as 2.0 (eval)" 1 "u8over.hpd: picture 1, value 0 is 200: pixels must lie in \[0, value_max 100\]" \
    $H eval --model $C --data $T/u8over.hpd --out $T/x3

# ---- class 7: work bounded by the input ---------------------------------------------------------------
# a gzip'd IDX header of 10 pictures 28x28 (7,856 bytes) followed by 200 MB of zeros: 0.9 MB of
# gzip; refused once the header's size is out, in 100 MB of address space
X=$B/idx2hpd_hostile
if $CC $FLAGS tools/idx2hpd.c -o $X -lm 2>/dev/null; then
    { printf '\000\000\010\003\000\000\000\012\000\000\000\034\000\000\000\034'; head -c 200000000 /dev/zero; } | gzip -1 >$T/bomb-img.gz
    check_err "class 7: idx2hpd stops inflating at the size the IDX header gives (200 MB bomb, 100 MB of memory)" 1 \
        "bomb-img.gz: the gzip data inflates past the size its IDX header gives" sh -c "ulimit -v 100000; exec $X $T/bomb-img.gz $T/bomb.hpd"
    { printf '\000\000\010\007'; head -c 1000 /dev/zero; } | gzip -1 >$T/magic-img.gz
    check_err "class 7: idx2hpd refuses a gzip'd file whose IDX header is wrong after its first bytes" 1 \
        "magic-img.gz: the data inside the gzip file is not an IDX file of 3 dimensions" $X $T/magic-img.gz $T/bomb.hpd
else fail "class 7: build idx2hpd" "does not compile"; fi
# an .npz whose latents_classes.npy (deflated zeros: 0.2 MB) claims 4,000,000 rows (192 MB of
# labels) beside an imgs.npy of one picture: refused from the header, before the labels are
# inflated or allocated, in 100 MB of address space (the old reader took 1.4 GB for 960 MB)
le16() { printf '\\%03o\\%03o' $(($1 & 255)) $((($1 >> 8) & 255)); }
npy_hdr() { printf '\223NUMPY\001\000\166\000%-117s\n' "{'descr': '$1', 'fortran_order': False, 'shape': $2, }"; }
# mk_npz FILE ROWS: the .npz above, built with gzip (raw deflate, CRC-32) and printf
mk_npz() {
    { npy_hdr '<i8' "($2, 6)"; head -c $(($2 * 48)) /dev/zero; } | gzip -1 -n >$T/c.gz
    cs=$(($(wc -c <$T/c.gz) - 18)); us=$((128 + $2 * 48)); n1=latents_classes.npy; n2=imgs.npy
    tail -c 8 $T/c.gz | head -c 4 >$T/c.crc
    { npy_hdr '|u1' "(1, 64, 64)"; head -c 4096 /dev/zero; } >$T/i.npy
    icrc=$(gzip -c $T/i.npy | tail -c 8 | head -c 4 | od -An -tu4 | tr -d ' ')
    o2=$((30 + ${#n1} + cs))
    {
        printf "PK\003\004$(le16 20)$(le16 0)$(le16 8)$(le32 0)"; cat $T/c.crc; printf "$(le32 $cs)$(le32 $us)$(le16 ${#n1})$(le16 0)$n1"
        tail -c +11 $T/c.gz | head -c $cs
        printf "PK\003\004$(le16 20)$(le16 0)$(le16 0)$(le32 0)$(le32 $icrc)$(le32 4224)$(le32 4224)$(le16 ${#n2})$(le16 0)$n2"
        cat $T/i.npy
        printf "PK\001\002$(le16 20)$(le16 20)$(le16 0)$(le16 8)$(le32 0)"; cat $T/c.crc
        printf "$(le32 $cs)$(le32 $us)$(le16 ${#n1})$(le16 0)$(le16 0)$(le16 0)$(le16 0)$(le32 0)$(le32 0)$n1"
        printf "PK\001\002$(le16 20)$(le16 20)$(le16 0)$(le16 0)$(le32 0)$(le32 $icrc)$(le32 4224)$(le32 4224)$(le16 ${#n2})"
        printf "$(le16 0)$(le16 0)$(le16 0)$(le16 0)$(le32 0)$(le32 $o2)$n2"
        printf "PK\005\006$(le16 0)$(le16 0)$(le16 2)$(le16 2)$(le32 $((92 + ${#n1} + ${#n2})))$(le32 $((o2 + 30 + ${#n2} + 4224)))$(le16 0)"
    } >"$1"
}
D=$B/dsprites2hpd_hostile
if $CC $FLAGS tools/dsprites2hpd.c -o $D -lm 2>/dev/null; then
    mk_npz $T/labels1.npz 1
    if $D -q --npz $T/labels1.npz $T/labels1.hpd >/dev/null 2>&1; then pass "class 7: the hand-made .npz (1 row, 1 picture) converts"
    else fail "class 7: hand-made .npz" "$($D -q --npz $T/labels1.npz $T/labels1.hpd 2>&1)"; fi
    mk_npz $T/labels4M.npz 4000000
    check_err "class 7: an .npz claiming 4,000,000 label rows beside 1 picture is refused before the labels are read (100 MB)" 1 \
        "labels4M.npz: latents_classes.npy: field 'shape': 4000000 rows of labels, but imgs can hold at most 1 pictures" \
        sh -c "ulimit -v 100000; exec $D --npz $T/labels4M.npz $T/labels.hpd"
    rm -f $T/c.gz
else fail "class 7: build dsprites2hpd" "does not compile"; fi
# a 300 kB checkpoint whose max_batch is patched to 65536: its 4096-wide layers then ask for GBs
# of batch buffers; refused against the memory budget, with the size, before anything is taken
$H train --data $T/good.hpd --enc dense4096,relu --dec dense4096,relu,dense4 --z 2 --batch-size 2 --steps 1 --out $T/x7 >/dev/null 2>&1
$G hpm-set $T/x7/model.hpm $T/wide.hpm max_batch 65536
check_err "class 7: a checkpoint whose max_batch asks for GBs is refused against --mem-budget, naming the size" 1 \
    "wide.hpm: out of memory.*(a block of [0-9.]* MB would pass the memory budget of 256.0 MB; see --mem-budget)" \
    sh -c "ulimit -v 4000000; exec $H sample --model $T/wide.hpm --out $T/x7 --mem-budget 256"
# a spec whose one step would take minutes (conv4096k64s1p63 on 8x8: 4096 x 71 x 71 outputs of
# 4096 multiply-adds each) says so before it starts (the 512 MB budget then stops its build)
$G hpd-sparse $T/eight.hpd 4 1 8 8
out=$(timeout 10 $H train --data $T/eight.hpd --enc conv4096k64s1p63,flatten --dec dense64 --z 2 --batch-size 2 --steps 1 --mem-budget 512 --out $T/x7w 2>&1)
if echo "$out" | grep -q "warning: one step of this model is about [0-9.e+]* GFLOP (batch 2)"; then
    pass "class 7: a spec of minutes per step is announced with a warning before training"
else fail "class 7: work warning" "no warning within 10 s: $(echo "$out" | head -n 2 | tr '\n' '|')"; fi

# ---- every writer: full disk, read-only folder, SIGKILL during each kind of write -------------------
# The same 24 writers in each test: every CLI subcommand that writes (train, outliers, explain,
# counterfactual, morph, report, traverse, sample, eval, batch, export as .hpm and safetensors,
# import, classifier, relabel, cycle-train, transfer, cycle-eval) and the converters and generators (idx2hpd, dsprites2hpd, gen_dsprites, gen_shapes3d, gen_sprites;
# shapes3d2hpd when libhdf5 is there), writing PNG, JSON, CSV, HTML, .hpd, .hpm, safetensors.
GD=$B/gen_dsprites_hostile; GS=$B/gen_shapes3d_hostile; GP=$B/gen_sprites_hostile; S3=$B/shapes3d2hpd_hostile
$CC $FLAGS tools/gen_dsprites.c -o $GD -lstb -lm 2>/dev/null || fail "faults: build gen_dsprites" "does not compile"
$CC $FLAGS tools/gen_shapes3d.c -o $GS -lstb -lm 2>/dev/null || fail "faults: build gen_shapes3d" "does not compile"
$CC $FLAGS tools/gen_sprites.c -o $GP -lstb -lm 2>/dev/null || fail "faults: build gen_sprites" "does not compile"
[ -f /usr/include/hdf5/serial/hdf5.h ] && $CC $FLAGS -I/usr/include/hdf5/serial tools/shapes3d2hpd.c -o $S3 -lhdf5_serial -lm 2>/dev/null \
    && $CC $FLAGS -I/usr/include/hdf5/serial tests/shapes3d_h5.c -o $B/shapes3d_h5_hostile -lhdf5_serial -lm 2>/dev/null \
    && $B/shapes3d_h5_hostile write $T/s3.h5 good 10 >/dev/null 2>&1 || rm -f $S3
$GD -q --random 40 --seed 2 $T/gd.hpd >/dev/null 2>&1
$H export --format safetensors $C $T/m.safetensors >/dev/null 2>&1
printf '\000\000\010\003\000\000\000\002\000\000\000\002\000\000\000\002\001\002\003\004\005\006\007\010' >$T/img.idx
# a classifier of gd.hpd's shapes and a conditional model, for the classifier and relabel writers
$H classifier --data $T/gd.hpd --labels shape --spec flatten,dense3 --epochs 1 --out $T/hcls >/dev/null 2>&1
$H train --data $T/gd.hpd --enc dense8,relu --dec dense4096 --z 2 --labels shape --steps 2 --out $T/hcv >/dev/null 2>&1
# and a cycle-consistent VAE, for transfer and cycle-eval
CYH="--data $T/gd.hpd --pairs shape --enc dense8,relu --dec dense4096 --s-dim 2 --z-dim 2 --batch-size 8"
$H cycle-train $CYH --steps 2 --out $T/hcy >/dev/null 2>&1
WRITERS="train outliers explain counterfactual morph report traverse sample eval batch export safetensors import idx2hpd dsprites2hpd gen_dsprites gen_shapes3d gen_sprites classifier relabel cycle-train transfer cycle-eval"
[ -x $S3 ] && WRITERS="$WRITERS shapes3d2hpd"
# writer NAME ROOT: the command line of writer NAME with its outputs under ROOT/NAME
writer() {
    o=$2/$1
    case $1 in
        train) echo "$H train --data $T/good.hpd $M --steps 2 --out $o" ;;
        outliers|explain|report) echo "$H $1 --model $C --batch $T/good.hpd --cov ridge --out $o" ;;
        counterfactual|morph) echo "$H $1 --model $C --batch $T/good.hpd --cov ridge --top 2 --out $o" ;;
        traverse|sample) echo "$H $1 --model $C --out $o" ;;
        eval) echo "$H eval --model $C --data $T/good.hpd --out $o" ;;
        batch) echo "$H batch --data $T/gd.hpd --normal shape=0 --n-normal 4 --n-outlier 2 --out $o/b.hpd" ;;
        export) echo "$H export $C $o/w.hpm" ;;
        safetensors) echo "$H export --format safetensors $C $o/w.safetensors" ;;
        import) echo "$H import $T/m.safetensors $o/m.hpm" ;;
        idx2hpd) echo "$X $T/img.idx $o/i.hpd" ;;
        dsprites2hpd) echo "$D -q --npz $T/labels1.npz $o/d.hpd" ;;
        gen_dsprites) echo "$GD -q --random 20 --seed 1 --png $o/p.png $o/d.hpd" ;;
        gen_shapes3d) echo "$GS --quiet --random 4 --png $o/p.png $o/d.hpd" ;;
        gen_sprites) echo "$GP --quiet --random 4 --png $o/p.png $o/d.hpd" ;;
        shapes3d2hpd) echo "$S3 -q $T/s3.h5 $o/s.hpd" ;;
        classifier) echo "$H classifier --data $T/gd.hpd --labels shape --spec flatten,dense3 --epochs 1 --out $o" ;;
        relabel) echo "$H relabel --model $T/hcv/model.hpm --data $T/gd.hpd --judge $T/hcls/classifier.hpn --out $o" ;;
        cycle-train) echo "$H cycle-train $CYH --steps 2 --out $o" ;;
        transfer) echo "$H transfer --model $T/hcy/model.hpc --data $T/gd.hpd --n 2 --steps 2 --judge shape=$T/hcls/classifier.hpn --s-factor shape --judge-n 3 --out $o" ;;
        cycle-eval) echo "$H cycle-eval --model $T/hcy/model.hpc --data $T/gd.hpd --factors shape --epochs 1 --out $o" ;;
    esac
}

# ---- the converters and generators write as the CLI does, and count against --mem-budget -----------
# a stale OUT.tmp (here a link to another file, as a dead run or another user could leave) is
# neither followed nor clobbered: the temporary is OUT.PID.N.tmp, created exclusively
printf 'precious' >$T/victim
for w in idx2hpd dsprites2hpd gen_dsprites gen_shapes3d gen_sprites shapes3d2hpd; do
    case " $WRITERS " in *" $w "*) ;; *) continue ;; esac
    cmd=$(writer $w $T/stale); o=$(echo "$cmd" | awk '{ print $NF }')
    mkdir -p $T/stale/$w && ln -sf $T/victim $o.tmp
    if $cmd >/dev/null 2>&1 && [ "$(cat $T/victim)" = precious ] && [ -s $o ] && [ ! -L $o ]; then
        pass "class 9: $w writes through a per-process temporary (a stale $(basename $o).tmp link is not followed)"
    else fail "class 9: $w and a stale temporary" "victim now '$(cat $T/victim)', output $(ls -l $o 2>&1)"; printf 'precious' >$T/victim; fi
done
check_err "class 7: gen_dsprites refuses a preview beyond --mem-budget, naming the size" 1 \
    "out of memory for the preview (a block of [0-9.]* MB would pass the memory budget of 64.0 MB; see --mem-budget)" \
    $GD --png-count 10000 --png-zoom 16 --mem-budget 64 --png $T/big.png
check_err "class 7: gen_shapes3d refuses factor lists beyond --mem-budget" 1 \
    "out of memory (a block of [0-9.]* MB would pass the memory budget of 64.0 MB; see --mem-budget)" \
    $GS --bench 100000000 --mem-budget 64
check_err "class 7: gen_sprites refuses a preview beyond --mem-budget, naming the size" 1 \
    "out of memory (a block of [0-9.]* MB would pass the memory budget of 64.0 MB; see --mem-budget)" \
    $GP --random 10000 --png-count 10000 --mem-budget 64 --png $T/big.png
{ npy_hdr '<i8' "(30000, 6)"; head -c 1440000 /dev/zero; } >$T/classes30k.npy
check_err "class 7: dsprites2hpd refuses labels beyond --mem-budget" 1 \
    "classes30k.npy: out of memory for the labels (1440000 bytes) (a block of 1.4 MB would pass the memory budget of 1.0 MB" \
    $D --mem-budget 1 --imgs $T/i.npy --classes $T/classes30k.npy $T/x.hpd
{ printf '\000\000\010\003\000\000\000\002\000\000\004\000\000\000\004\000'; head -c 2097152 /dev/zero; } >$T/two-mb.idx
gzip -c $T/two-mb.idx >$T/two-mb.idx.gz
check_err "class 7: idx2hpd refuses a file beyond --mem-budget" 1 "two-mb.idx: 2097168 bytes cannot be read (a block of 2.0 MB would pass the memory budget of 1.0 MB" \
    $X --mem-budget 1 $T/two-mb.idx $T/x.hpd
check_err "class 7: idx2hpd refuses a gzip'd IDX header asking beyond --mem-budget" 1 \
    "two-mb.idx.gz: the IDX header inside the gzip file asks for 2097168 bytes (a block of 2.0 MB would pass the memory budget of 1.0 MB" \
    $X --mem-budget 1 $T/two-mb.idx.gz $T/x.hpd
if [ -x $S3 ]; then
    check_err "class 7: shapes3d2hpd refuses blocks beyond --mem-budget" 1 "s3.h5: out of memory for [0-9]* pictures (a block of" \
        $S3 --mem-budget 1 $T/s3.h5 $T/x.hpd
fi
rm -f $T/classes30k.npy $T/two-mb.idx $T/two-mb.idx.gz

# snap DIR: the checksums of DIR's files (not the training log, which is appended, nor the lock)
snap() { (cd "$1" 2>/dev/null && find . -type f ! -name train_log.csv ! -name classifier_log.csv ! -name cycle_log.csv ! -name train.lock ! -name '*.tmp' | LC_ALL=C sort | xargs -r md5sum); }

# kills: each writer runs once, then again with SIGKILL at its 1st, 2nd, ... fsync, rename and
# write (tests/kill_shim.c): after every kill each old file must be whole (the same bytes: the
# runs are deterministic), and the only temporaries left must carry the killed process's id
K=$T/kill
if $CC -std=c99 -O2 -shared -fPIC tests/kill_shim.c -o $B/kill_shim.so -ldl 2>/dev/null; then
    for w in $WRITERS; do
        mkdir -p $K/$w
        if ! $(writer $w $K) >/dev/null 2>&1; then fail "kills: $w" "the first run failed"; continue; fi
        before=$(snap $K/$w); kills=0; bad=""
        for at in fsync rename write; do
            n=1
            while [ $n -le 40 ]; do
                # (a subshell, so that the shell's "Killed" goes to /dev/null; sh -c execs the writer)
                rc=$( (sh -c "echo \$\$ >$T/pid; exec env LD_PRELOAD=$PWD/$B/kill_shim.so HEPH_KILL_AT=$at:$n $(writer $w $K) >/dev/null 2>&1"; echo $?) 2>/dev/null)
                pid=$(cat $T/pid)
                [ $rc -ne 137 ] && break
                kills=$((kills + 1))
                [ "$(snap $K/$w)" = "$before" ] || bad="$bad $at:$n changed or lost a file;"
                for f in $(find $K/$w -name '*.tmp'); do
                    case $f in *.$pid.*.tmp) rm -f "$f" ;; *) bad="$bad $at:$n left $f;"; rm -f "$f" ;; esac
                done
                n=$((n + 1))
            done
            [ $rc -ne 137 ] && [ $rc -ne 0 ] && bad="$bad exit $rc after $((n - 1)) kills at $at;"
        done
        if [ -z "$bad" ] && [ $kills -gt 0 ]; then pass "kills: $w killed $kills times during its writes: every old file whole, temporaries only of the dead process"
        else fail "kills: $w ($kills kills)" "${bad:-never killed}"; fi
    done
else fail "kills: build tests/kill_shim.c" "does not compile"; fi

# full disk and read-only folder: every writer exits 1 naming ENOSPC / EROFS, keeps its old
# files and leaves no temporary (a 2 MB tmpfs: root only)
FULL=$T/full2
mkdir -p $FULL
if [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=2m tmpfs $FULL 2>/dev/null; then
    for w in $WRITERS; do mkdir -p $FULL/$w; $(writer $w $FULL) >/dev/null 2>&1 || fail "full disk: $w" "the first run failed"; done
    for w in $WRITERS; do snap $FULL/$w >$T/snap.$w; done
    dd if=/dev/zero of=$FULL/filler bs=4096 >/dev/null 2>&1
    for w in $WRITERS; do
        out=$(timeout 60 $(writer $w $FULL) 2>&1 >/dev/null); rc=$?
        if [ $rc -eq 1 ] && echo "$out" | tail -n 1 | grep -q "No space left on device" && [ "$(snap $FULL/$w)" = "$(cat $T/snap.$w)" ]; then
            pass "full disk: $w exits 1 with ENOSPC and keeps its old files"
        else fail "full disk: $w" "exit $rc, $(echo "$out" | tail -n 1)$([ "$(snap $FULL/$w)" = "$(cat $T/snap.$w)" ] || echo ', old files changed')"; fi
    done
    left=$(find $FULL -name '*.tmp' | head -n 3)
    if [ -z "$left" ]; then pass "full disk: no writer left a temporary"; else fail "full disk: temporaries left" "$left"; fi
    rm -f $FULL/filler
    mount -o remount,ro $FULL
    for w in $WRITERS; do
        out=$(timeout 60 $(writer $w $FULL) 2>&1 >/dev/null); rc=$?
        if [ $rc -eq 1 ] && echo "$out" | tail -n 1 | grep -q "Read-only file system" && [ "$(snap $FULL/$w)" = "$(cat $T/snap.$w)" ]; then
            pass "read-only folder: $w exits 1 with EROFS and keeps its old files"
        else fail "read-only folder: $w" "exit $rc, $(echo "$out" | tail -n 1)"; fi
    done
    umount $FULL
else
    echo "SKIP full disk and read-only folder for every writer (needs root to mount a small tmpfs)"
fi

# ---- the smaller list: loose parsing, unknown .hpd flags, empty stb reasons --------------------------
check_err "smaller: --batch-size \" 4\" (a leading space) is a usage error" 2 "batch-size takes an integer" \
    $H train --data $T/good.hpd --enc dense4 --dec dense4 --z 2 --batch-size " 4" --steps 1 --out $T/xs
check_err "smaller: --lr \" 0.01\" is a usage error" 2 "lr takes a number" \
    $H train --data $T/good.hpd --enc dense4 --dec dense4 --z 2 --lr " 0.01" --steps 1 --out $T/xs
check_err "smaller: --dims 0, (a trailing comma) is a usage error" 2 "dims takes dimensions" \
    $H traverse --model $C --dims 0, --out $T/xs
check_err "smaller: --dims \" 1\" is a usage error" 2 "dims takes dimensions" $H traverse --model $C --dims " 1" --out $T/xs
cp $T/good.hpd $T/flags.hpd && printf '\010\000\000\000' | dd of=$T/flags.hpd bs=1 seek=52 conv=notrunc 2>/dev/null
check_err "smaller: a .hpd with an unknown flag bit (8) is refused" 1 "flags.hpd: unknown flag bits 0x8" \
    $H eval --model $C --data $T/flags.hpd --out $T/xs
# a factor's real value NaN (found by fuzz_hpd's semantic checks; the old reader passed it on
# into batches, correlations and reports)
check_err "smaller: a .hpd whose factor value is NaN is refused, naming the factor and value" 1 \
    "factor_value_nan.hpd: factor 0 (shape) value 2 is -*nan: factor values must be finite" \
    $H batch --data tests/fuzz/regress/hpd/factor_value_nan.hpd --normal shape=0 --n-normal 1 --n-outlier 0 --out $T/xs.hpd
# stb_image's failure reason is NULL until it has failed once with a reason: the loader's message
# then says so instead of "cannot decode the picture ()" (the CLI's picture loader alone)
cat >$T/stb_reason.c <<'EOF2'
#define HEPHAESTUS_IMPLEMENTATION
#include "hephaestus.h"
#include "tools/cli_common.h"
#include "tools/cli_data.h"
int main(void) { return puts(cli_stb_reason()) < 0; }
EOF2
if $CC $FLAGS -Wno-unused-function $T/stb_reason.c -o $B/stb_reason_hostile -lstb -lm 2>/dev/null && [ "$($B/stb_reason_hostile)" = "stb_image gave no reason" ]; then
    pass "smaller: an empty stb_image reason reads \"stb_image gave no reason\""
else fail "smaller: empty stb reason" "got \"$($B/stb_reason_hostile 2>&1)\""; fi
# factor rules: a labelled .hpd from idx2hpd's test helper
if [ -x $X ] && $CC $FLAGS tests/idx_helper.c -o $B/idx_helper_hostile -lm 2>/dev/null && mkdir -p $T/idx && $B/idx_helper_hostile write $T/idx \
    && $X $T/idx/small-img.idx $T/idx/small-lab.idx $T/lab.hpd >/dev/null 2>&1; then
    check_err "smaller: --normal \"class=0|\" (nothing after the bar) is refused" 1 "factor class takes value indices.*got \"0|\"" \
        $H batch --data $T/lab.hpd --normal "class=0|" --n-normal 1 --out $T/xs.hpd
    check_err "smaller: --normal \"class=0,\" (nothing after the comma) is a usage error" 2 "a rule is missing after the last comma" \
        $H batch --data $T/lab.hpd --normal "class=0," --n-normal 1 --out $T/xs.hpd
else fail "smaller: factor rules" "cannot make a labelled .hpd"; fi

finish

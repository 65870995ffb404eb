#!/bin/sh
# tests/test_errors.sh - inputs that are wrong rather than hostile get one clear line and exit
# status 1 from the hephaestus CLI, and a NaN/Inf in training stops it with the step and the
# term named and the last checkpoint intact (issue #7). Complements tests/test_cli.sh.
#   - NaN pixels met after a resume, Inf pixels met in the middle of a run (checkpoint every
#     step): exit 1, "training stopped at step N: FILE: picture P, value 0 is nan|inf" (the
#     reader refuses them since issue #20; the loss guard itself is tested in test_train.c),
#     the checkpoint is byte-identical to the one before (resume) or loads and holds step N;
#   - data and checkpoint disagree on channels (.hpd with outliers and with train --resume,
#     a folder of PNGs for a 2-channel model); an empty folder given to train;
#   - fewer pictures than latent dimensions with --cov empirical / --cov mcd;
#   - a .hpd without any labels given to --auroc and to eval;
#   - picture files: a GIF named .png, a PNG header of 10000x10000 pixels, a PNG whose IDAT
#     claims 1.7 GB, a JPEG with a Huffman table of more than 256 codes, a JPEG whose scan uses
#     a Huffman table it never defines (the last three found by fuzzing: tests/fuzz/regress/image/);
#   - absurd .hpd headers (2^40 pictures, 0x0 pictures, 10^6 channels) and a damaged or
#     truncated checkpoint.
# The .hpd files are written by printf (f32 1x2x2 pictures, no factors). POSIX sh; prints
# PASS/FAIL lines and "errors: N passed, N failed". About 5 s.
cd "$(dirname "$0")/.." || exit 1
CC=${CC:-cc}
B=tests/build
T=$B/errors_tmp
H=$B/hephaestus_err
FLAGS=${CLI_CFLAGS:-"-std=c99 -O2 -Wall -Wextra -Wpedantic -Wdouble-promotion -Werror -D_POSIX_C_SOURCE=200809L -I."}
npass=0; nfail=0
rm -rf "$T" && mkdir -p "$T" || exit 1
pass() { npass=$((npass + 1)); echo "PASS $1"; }
fail() { nfail=$((nfail + 1)); echo "FAIL $1: $2"; }
finish() { [ "$nfail" -eq 0 ] && rm -rf "$T"; echo "errors: $npass passed, $nfail failed"; [ "$nfail" -eq 0 ]; exit $?; }
# check_err NAME CODE TEXT CMD...: CMD exits with CODE and prints exactly one line on stderr,
# containing TEXT
check_err() {
    name=$1; code=$2; text=$3; shift 3
    out=$("$@" 2>&1 >/dev/null)
    rc=$?
    if [ "$rc" -ne "$code" ]; then fail "$name" "exit status $rc, expected $code ($(echo "$out" | tail -n 1))"
    elif [ "$(echo "$out" | wc -l)" -ne 1 ]; then fail "$name" "expected one line on stderr, got: $(echo "$out" | tr '\n' '|')"
    elif ! echo "$out" | grep -q -- "$text"; then fail "$name" "message lacks \"$text\": $out"
    else pass "$name"; fi
}
# le32 V / le64 V: little-endian bytes as printf escapes
le32() { printf '\\%03o\\%03o\\%03o\\%03o' $(($1 & 255)) $((($1 >> 8) & 255)) $((($1 >> 16) & 255)) $((($1 >> 24) & 255)); }
le64() { printf '%s%s' "$(le32 $(($1 & 4294967295)))" "$(le32 $(($1 >> 32)))"; }
# mk_hpd FILE C COUNT PIXEL...: f32 pictures Cx2x2 without factors; picture i (0-based) is all
# PIXEL number i+1 (nan, inf, zero, one or half), the last one given repeating
mk_hpd() {
    f=$1; c=$2; n=$3; shift 3
    np=$((c * 4))
    {
        printf 'HEPHHPD\000'; printf "$(le32 1)$(le32 128)$(le64 "$n")$(le32 "$c")$(le32 2)$(le32 2)$(le32 2)$(le32 0)"
        printf '\000\000\200\077'; printf "$(le32 0)$(le32 0)$(le64 0)$(le64 $((128 + n * np * 4)))"
        head -c 56 /dev/zero
        i=0
        while [ "$i" -lt "$n" ]; do
            [ $# -gt 1 ] && { v=$1; shift; } || v=$1
            case $v in nan) px='\000\000\300\177' ;; inf) px='\000\000\200\177' ;; zero) px='\000\000\000\000' ;;
                one) px='\000\000\200\077' ;; *) px='\000\000\000\077' ;; esac
            k=0; while [ "$k" -lt "$np" ]; do printf "$px"; k=$((k + 1)); done
            i=$((i + 1))
        done
    } >"$f"
}
# patch FILE OFFSET BYTES(printf escapes): overwrite bytes in place
patch() { printf "$3" | dd of="$1" bs=1 seek="$2" conv=notrunc 2>/dev/null; }

if ! out=$($CC $FLAGS tools/hephaestus.c -o $H -lstb -lm 2>&1); then fail build "$(echo "$out" | head -n 3 | tr '\n' ' ')"; finish; fi
mk_hpd $T/good.hpd 1 8 half
mk_hpd $T/nan.hpd 1 8 nan
mk_hpd $T/inf7.hpd 1 8 half half half half half half half inf
mk_hpd $T/rgb.hpd 3 8 half
mk_hpd $T/two.hpd 2 8 half
mk_hpd $T/four.hpd 1 4 half
mk_hpd $T/five.hpd 1 5 half
mk_hpd $T/mixed.hpd 1 8 half zero one zero one half one zero
mk_hpd $T/same.hpd 1 8 half
if $H train --data $T/good.hpd --steps 1 --batch-size 2 --enc dense4 --dec dense4 --z 1 --out $T/probe >/dev/null 2>&1; then pass "printf-made .hpd files train"
else fail "printf-made .hpd files" "$($H train --data $T/good.hpd --steps 1 --batch-size 2 --enc dense4 --dec dense4 --z 1 --out $T/probe 2>&1 | tail -n 1)"; finish; fi
M="--enc dense4,relu --dec dense4 --z 4 --batch-size 2 --seed 5"

# ---- NaN / Inf in training ---------------------------------------------------------------------
$H train --data $T/good.hpd $M --steps 4 --checkpoint-every 2 --out $T/n >/dev/null 2>&1
cp $T/n/model.hpm $T/before.hpm 2>/dev/null
check_err "NaN pixels after a resume: training stops naming the step, the file and the picture" 1 \
    "training stopped at step 4: $T/nan.hpd: picture [0-7], value 0 is nan: pixels must lie in \[0, value_max 1\] (the last checkpoint $T/n/model.hpm is intact)" \
    $H train --data $T/nan.hpd --resume $T/n/model.hpm --steps 10 --out $T/n
if [ -s $T/before.hpm ] && cmp -s $T/before.hpm $T/n/model.hpm; then pass "NaN stop: the checkpoint is byte-identical to the one before"
else fail "NaN stop" "the checkpoint changed or is missing"; fi
out=$($H train --data $T/inf7.hpd $M --steps 200 --checkpoint-every 1 --out $T/i 2>&1 >/dev/null)
rc=$?
s=$(echo "$out" | sed -n 's/.*training stopped at step \([0-9]*\): .*inf7.hpd: picture 7, value 0 is inf.*intact.*/\1/p')
ck=$($H export --model $T/i/model.hpm --out $T/i/copy.hpm 2>&1 | sed -n 's/.*step \([0-9]*\).*/\1/p')
if [ "$rc" -eq 1 ] && [ -n "$s" ] && [ "$s" -ge 1 ] && [ "$ck" = "$s" ]; then
    pass "an Inf picture drawn at step $((s + 1)): exit 1, the checkpoint of step $s loads"
else fail "Inf in the middle of a run" "exit $rc, stopped at '$s', checkpoint at step '$ck': $out"; fi

# ---- data and checkpoint disagree -----------------------------------------------------------------
check_err "3-channel .hpd for a 1-channel model (outliers)" 1 "holds 3x2x2 pictures (CxHxW) but the model takes 1x2x2" \
    $H outliers --model $T/n/model.hpm --batch $T/rgb.hpd --cov ledoit-wolf --out $T/x
check_err "3-channel .hpd for a 1-channel checkpoint (train --resume)" 1 "holds 3x2x2 pictures (CxHxW) but the model takes 1x2x2" \
    $H train --data $T/rgb.hpd --resume $T/n/model.hpm --steps 10 --out $T/x
$H train --data $T/two.hpd --enc dense4,relu --dec dense8 --z 2 --batch-size 2 --steps 2 --out $T/m2 >/dev/null 2>&1
mkdir -p $T/pngs $T/empty
$H sample --model $T/n/model.hpm --n 3 --each --out $T/pngs >/dev/null 2>&1
check_err "a folder of PNGs for a 2-channel model" 1 "PNG/JPEG pictures can feed gray (1 channel) or RGB (3) models, this one takes 2 channels" \
    $H outliers --model $T/m2/model.hpm --batch $T/pngs --cov ledoit-wolf --out $T/x
check_err "train on an empty folder" 1 "the folder holds no PNG or JPEG pictures" \
    $H train --data $T/empty $M --steps 2 --out $T/x
# picture files that are not what their names say, or too large, or hostile
mkdir -p $T/notpng $T/huge $T/dht $T/undef
printf 'GIF89a\001\000\001\000\000\000\000;' >$T/notpng/a.png
check_err "a GIF named .png" 1 "a.png: not a PNG or JPEG file" \
    $H outliers --model $T/n/model.hpm --batch $T/notpng --cov ledoit-wolf --out $T/x
printf '\211PNG\r\n\032\n\000\000\000\015IHDR\000\000\047\020\000\000\047\020\010\000\000\000\000\000\000\000\000' >$T/huge/big.png
check_err "a PNG header of 10000x10000 pixels (no data): refused before decoding" 1 "big.png: 10000x10000 pixels: pictures of 1 to 67108864 pixels are read" \
    $H outliers --model $T/n/model.hpm --batch $T/huge --cov ledoit-wolf --out $T/x
mkdir -p $T/idat && tail -c +2 tests/fuzz/regress/image/png_idat_claims_1.7GB >$T/idat/a.png
check_err "a 700-byte PNG whose IDAT chunk claims 1.7 GB: refused before stb_image allocates it" 1 "a.png: corrupt PNG (a chunk runs past the end of the file)" \
    $H outliers --model $T/n/model.hpm --batch $T/idat --cov ledoit-wolf --out $T/x
tail -c +2 tests/fuzz/regress/image/jpeg_dht_more_than_256_codes >$T/dht/a.jpg
check_err "a JPEG whose Huffman table declares more than 256 codes (overflows stb_image 2.27)" 1 "a.jpg: corrupt JPEG (a Huffman table declares more than 256 codes)" \
    $H outliers --model $T/n/model.hpm --batch $T/dht --cov ledoit-wolf --out $T/x
tail -c +2 tests/fuzz/regress/image/jpeg_scan_uses_undefined_huffman_table >$T/undef/a.jpg
check_err "a JPEG whose scan uses an AC Huffman table it never defines (stb_image 2.27 decodes with uninitialised memory)" 1 "a.jpg: corrupt JPEG (a scan uses a Huffman table the file does not define)" \
    $H outliers --model $T/n/model.hpm --batch $T/undef --cov ledoit-wolf --out $T/x

# ---- too few pictures for the covariance ----------------------------------------------------------
check_err "4 pictures, 4 latent dimensions, --cov empirical" 1 "4 pictures for 4 latent dimensions: the empirical covariance is singular" \
    $H outliers --model $T/n/model.hpm --batch $T/four.hpd --cov empirical --out $T/x
check_err "5 pictures, 4 latent dimensions, --cov mcd" 1 "MCD needs more than 5" \
    $H outliers --model $T/n/model.hpm --batch $T/five.hpd --cov mcd --out $T/x
check_err "--reference of 4 pictures with --cov empirical" 1 "four.hpd: 4 pictures for 4 latent dimensions" \
    $H outliers --model $T/n/model.hpm --batch $T/good.hpd --reference $T/four.hpd --score mahalanobis --cov empirical --out $T/x

# ---- no labels ---------------------------------------------------------------------------------------
check_err "a .hpd without labels given to --auroc" 1 "has no labels at all, so there is no AUROC" \
    $H outliers --model $T/n/model.hpm --batch $T/mixed.hpd --cov ledoit-wolf --auroc --out $T/x
check_err "8 identical pictures, --cov ledoit-wolf: says so and suggests a ridge" 1 "the 8 points in 4 dimensions are all identical (no variance): their covariance is 0; use a ridge (try --cov ridge)" \
    $H outliers --model $T/n/model.hpm --batch $T/same.hpd --cov ledoit-wolf --out $T/x
check_err "8 identical pictures, --cov empirical" 1 "are all identical (no variance).*(try --cov ridge)" \
    $H outliers --model $T/n/model.hpm --batch $T/same.hpd --cov empirical --out $T/x
out=$($H eval --model $T/n/model.hpm --data $T/mixed.hpd --out $T/ev 2>&1)
rc=$?
if [ "$rc" -eq 0 ] && echo "$out" | grep -q "no factors in .*mixed.hpd: no MIG and no correlation matrix"; then
    pass "eval on a .hpd without labels: losses and SSIM, and says there is no MIG"
else fail "eval without labels" "exit $rc: $(echo "$out" | tail -n 2 | tr '\n' '|')"; fi
check_err "batch from a .hpd without labels" 1 "mixed.hpd has no factor labels" \
    $H batch --data $T/mixed.hpd --normal 0=0 --out $T/x.hpd

# ---- absurd headers, damaged checkpoints -----------------------------------------------------------
cp $T/good.hpd $T/count.hpd && patch $T/count.hpd 16 "$(le64 1099511627776)"
check_err ".hpd claiming 2^40 pictures" 1 "count.hpd: 1099511627776 pictures of 1x2x2 (type 2) do not fit the layout" \
    $H outliers --model $T/n/model.hpm --batch $T/count.hpd --out $T/x
cp $T/good.hpd $T/zero.hpd && patch $T/zero.hpd 28 "$(le32 0)$(le32 0)"
check_err ".hpd of 0x0 pictures" 1 "zero.hpd: picture shape 1x0x0 is out of range" \
    $H train --data $T/zero.hpd $M --steps 2 --out $T/x
cp $T/good.hpd $T/chan.hpd && patch $T/chan.hpd 24 "$(le32 1000000)"
check_err ".hpd of 10^6 channels" 1 "chan.hpd: picture shape 1000000x2x2 is out of range" \
    $H eval --model $T/n/model.hpm --data $T/chan.hpd --out $T/x
cp $T/n/model.hpm $T/flip.hpm && patch $T/flip.hpm 200 '\377'
check_err "a checkpoint with one byte changed" 1 "flip.hpm: checksum mismatch" \
    $H train --data $T/good.hpd --resume $T/flip.hpm --steps 10 --out $T/x
head -c 100 $T/n/model.hpm >$T/cut.hpm
check_err "a truncated checkpoint" 1 "cut.hpm: checksum mismatch" \
    $H sample --model $T/cut.hpm --out $T/x
finish

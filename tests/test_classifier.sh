#!/bin/sh
# tests/test_classifier.sh - end-to-end tests of examples/classifier_mnist.c (POSIX sh).
# Run from the repository root: sh tests/test_classifier.sh
# Builds the example and tests/cls_helper.c into tests/build/ (as tests/test_cli.sh builds the
# CLI), writes a small MNIST-like set (1x28x28 pictures of three easy classes, a "class" factor
# with 10 values: no real MNIST needed), trains on it twice with one seed (3 epochs, a small CNN), and feeds the example
# bad input. Prints one "PASS name" or "FAIL name: why" line per check, a last line
# "N passed, N failed", and exits 1 if any check failed. About 10 s on 2 cores.
# Environment: CC (default cc); CLS_CFLAGS replaces the compiler flags below.

cd "$(dirname "$0")/.." || exit 1
CC=${CC:-cc}
B=tests/build
T=$B/cls_tmp
FLAGS=${CLS_CFLAGS:-"-std=c99 -O2 -Wall -Wextra -Wpedantic -Wdouble-promotion -Werror -I."}
X=$B/classifier_mnist
G=$B/cls_helper
# a small CNN of the default's kind (two convolutions, a strided one, dense): fast on 300 pictures
SPEC="conv8k3s1p1,relu,conv8k4s2p1,relu,flatten,dense32,relu,dense10"
npass=0
nfail=0
mkdir -p "$B" || exit 1
rm -rf "$T"
mkdir -p "$T" || exit 1

pass() { npass=$((npass + 1)); echo "PASS $1"; }
fail() { nfail=$((nfail + 1)); echo "FAIL $1: $2"; }
finish() {
    [ "$nfail" -eq 0 ] && rm -rf "$T" # kept for a look when something failed
    echo "classifier: $npass passed, $nfail failed"
    [ "$nfail" -eq 0 ]
    exit $?
}
# check_err NAME TEXT CMD...: CMD must exit 1 and print one line on stderr containing TEXT
check_err() {
    name=$1; text=$2; shift 2
    out=$("$@" 2>&1 >/dev/null)
    rc=$?
    if [ "$rc" -ne 1 ]; then fail "$name" "exit status $rc, expected 1 ($(echo "$out" | tail -n 1))"
    elif [ "$(echo "$out" | wc -l)" -ne 1 ]; then fail "$name" "expected one line on stderr, got: $(echo "$out" | tr '\n' '|')"
    elif ! echo "$out" | grep -q -- "$text"; then fail "$name" "message lacks \"$text\": $out"
    else pass "$name"; fi
}
# json_field FILE KEY: the value of "KEY": VALUE in a results.json
json_field() { sed -n "s/^ *\"$2\": *\([^,]*\),*$/\1/p" "$1"; }

# ---- build ----------------------------------------------------------------------------------
if [ ! -f /usr/include/stb/stb_image_write.h ]; then
    echo "SKIP classifier: no libstb-dev (make deps): the examples need it"; exit 0
fi
if ! out=$($CC $FLAGS examples/classifier_mnist.c -o $X -lstb -lm 2>&1); then
    fail cls_build "$(echo "$out" | head -n 3 | tr '\n' ' ')"; finish
fi
if ! out=$($CC $FLAGS tests/cls_helper.c -o $G -lm 2>&1); then
    fail cls_build_helper "$(echo "$out" | head -n 3 | tr '\n' ' ')"; finish
fi
pass cls_build

# ---- data: 300 training and 99 test pictures, and the bad sets --------------------------------
$G $T/train.hpd 300 1 && $G $T/test.hpd 99 2 && $G $T/small.hpd 30 3 1 8 8 &&
    $G $T/rgb.hpd 30 3 3 28 28 && $G $T/nolabels.hpd 30 3 1 28 28 0 && $G $T/three.hpd 30 3 1 28 28 3 ||
    { fail cls_data "cls_helper failed"; finish; }
head -c 1000 $T/train.hpd >$T/trunc.hpd

# ---- help -------------------------------------------------------------------------------------
if $X --help 2>&1 | grep -q '^usage: classifier_mnist'; then pass cls_help; else fail cls_help "no usage line"; fi
$X >/dev/null 2>&1
rc=$?
if [ $rc -eq 2 ]; then pass cls_usage_no_args; else fail cls_usage_no_args "exit status $rc, expected 2"; fi

# ---- training: outputs, the reloaded network, the same bits for the same seed --------------------
run() { OMP_NUM_THREADS=1 $X --train $T/train.hpd --test $T/test.hpd --epochs 3 --batch 32 --lr 3e-3 --seed 7 --spec "$SPEC" --out "$@"; }
if run $T/a >$T/a.log 2>&1; then pass cls_train; else fail cls_train "$(tail -n 1 $T/a.log)"; finish; fi
if [ -s $T/a/classifier.hpn ] && [ -s $T/a/results.json ]; then pass cls_outputs; else fail cls_outputs "no classifier.hpn or results.json in $T/a"; fi
n=$(grep -c '^ *[0-9]' $T/a.log)
if [ "$n" -eq 3 ]; then pass cls_progress_per_epoch; else fail cls_progress_per_epoch "$n epoch lines, expected 3"; fi
acc=$(json_field $T/a/results.json test_accuracy)
back=$(json_field $T/a/results.json reloaded_test_accuracy)
if [ -n "$acc" ] && [ "$acc" = "$back" ]; then pass cls_reload_same_accuracy; else fail cls_reload_same_accuracy "test_accuracy \"$acc\", reloaded \"$back\""; fi
if grep -q 'reloaded: test accuracy .*(the same)' $T/a.log; then pass cls_reload_printed; else fail cls_reload_printed "no reloaded accuracy line"; fi
if awk -v a="$acc" 'BEGIN { exit !(a >= 0.95) }'; then pass cls_learns; else fail cls_learns "test accuracy $acc on three easy classes, expected >= 0.95"; fi
missing=
for k in epochs train_seconds images_per_second; do
    [ -n "$(json_field $T/a/results.json $k)" ] || missing="$missing $k"
done
if [ -n "$missing" ]; then fail cls_results_fields "results.json lacks$missing"
elif [ "$(json_field $T/a/results.json epochs)" != 3 ]; then fail cls_results_fields "epochs is not 3 in results.json"
else pass cls_results_fields; fi
if run $T/b >$T/b.log 2>&1 && cmp -s $T/a/classifier.hpn $T/b/classifier.hpn; then pass cls_deterministic
else fail cls_deterministic "a second run with seed 7 wrote a different classifier.hpn"; fi

# ---- bad input: one line naming the file --------------------------------------------------------
check_err cls_missing_file "$T/none.hpd" $X --train $T/none.hpd --test $T/test.hpd --out $T/e
check_err cls_missing_test_file "$T/none2.hpd" $X --train $T/train.hpd --test $T/none2.hpd --out $T/e
check_err cls_wrong_shape "$T/small.hpd.*1x8x8.*1x28x28" $X --train $T/small.hpd --test $T/test.hpd --out $T/e
check_err cls_wrong_channels "$T/rgb.hpd.*3x28x28" $X --train $T/train.hpd --test $T/rgb.hpd --out $T/e
check_err cls_no_labels "$T/nolabels.hpd.*label factor with 10 values" $X --train $T/nolabels.hpd --test $T/test.hpd --out $T/e
check_err cls_labels_not_10 "$T/three.hpd.*label factor with 10 values" $X --train $T/three.hpd --test $T/test.hpd --out $T/e
check_err cls_truncated "$T/trunc.hpd" $X --train $T/trunc.hpd --test $T/test.hpd --out $T/e
check_err cls_bad_spec "--spec" $X --train $T/train.hpd --test $T/test.hpd --spec conv8k3,frob --out $T/e
check_err cls_spec_not_10 "10 outputs" $X --train $T/train.hpd --test $T/test.hpd --spec dense7 --out $T/e
check_err cls_bad_batch "--batch" $X --train $T/train.hpd --test $T/test.hpd --batch 0 --out $T/e
finish

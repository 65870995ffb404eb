#!/bin/sh
# bench/outliers/run.sh - issue #21's outlier benchmark: the library's scores (combined and
# each of its members) beside the usual detectors (bench/outliers_peers.py: scikit-learn's
# IsolationForest, LocalOutlierFactor, OneClassSVM, EllipticEnvelope, kNN distance; ECOD and
# COPOD in numpy; pixel PCA), on the same reference sets, batches and latent codes.
#
# Protocols (fixed seeds; no outlier labels are used by any detector):
#   shapes3d  the shipped Shapes3D model (it saw every factor value in training, as a deployed
#             model would). Pictures from gen_shapes3d: reference pool --random 20000 --seed 21,
#             batch pool --seed 22 (no picture in both). For each case the reference set has
#             the held-out values removed (NREF pictures) and each batch mixes 325 normal
#             pictures with 25 whose only unusual factor is the held-out value; BATCHES
#             batches per case. Cases: floor, wall and object hue 4 and 5 (mid-range), scale
#             6 and 7 (the top), scale 3 and 4 (mid-range), shape 3 (one category).
#   fashion   leave one class out: a Fashion-MNIST model (the mlp-mnist preset, 10 epochs on
#             all of Fashion-MNIST train, as bench/foreign/run.sh trains it); reference: NREF
#             training pictures of the nine other classes; batch: 900 test pictures of them
#             and 100 of the left-out class; all ten classes.
#   foreign   Fashion-MNIST -> MNIST: the same model, reference NREF Fashion-MNIST training
#             pictures, batch 1,000 Fashion-MNIST + 1,000 MNIST test pictures.
#   calib     requested vs measured false-positive rate: reference 5,000 normal pictures,
#             batch 5,000 fresh normal pictures, --fpr 0.01 and 0.05 (Shapes3D floor-hue case;
#             Fashion-MNIST with the reference from the model's training set, and with the
#             reference and the batch from the two halves of the test set).
# Our scores: per reference set, one `hephaestus outliers --reference REF --save-scorer` run
# fits and calibrates combined (its time is the "fit" line); each batch is then scored with
# --scorer (the same scores as a --reference run: tests/test_cli.sh checks it), and its time
# is the batch's. outliers.json holds every member's tail -ln p, a monotone map of the
# member's own score, so each member's AUROC is its own. Results: build/outliers/results.jsonl; bench/outliers/report.py prints
# the tables. Environment: PROTOCOLS (default "shapes3d fashion foreign calib"), BATCHES
# (default 10), NREF (default 2000), THREADS (default 2), CASES (Shapes3D cases, default all
# six by name), PEERS (default 1; 0: the library's scores only), RESULTS (default
# build/outliers/results.jsonl, emptied first). Needs make data-mnist data-fashion
# for the Fashion protocols and python3-sklearn. Not part of make test.
cd "$(dirname "$0")/../.." || exit 1
B=build/outliers
PY=/usr/bin/python3
H=build/hephaestus
PROTOCOLS=${PROTOCOLS:-shapes3d fashion foreign calib}
BATCHES=${BATCHES:-10}; NREF=${NREF:-2000}; THREADS=${THREADS:-2}
MODEL3=${MODEL3:-data/models/shapes3d_betatcvae.hpm}
RES=${RESULTS:-$B/results.jsonl}
PEERS=${PEERS:-1}
CASES=${CASES:-floor_hue_4_5 wall_hue_4_5 object_hue_4_5 scale_6_7 scale_3_4 shape_3}
mkdir -p $B || exit 1
$PY -c 'import sklearn' 2>/dev/null || { echo "bench/outliers: needs python3-sklearn (sh tools/deps.sh bench)"; exit 1; }
make -s build/hephaestus build/gen_shapes3d build/idx2hpd || exit 1
: >$RES

# hpd2npy FILE.hpd OUT.npy: the pictures as float32 (n, C*H*W) in [0, 1] (pixel PCA's input)
hpd2npy() {
    $PY - "$1" "$2" <<'PY' || exit 1
import sys, numpy as np
path, out = sys.argv[1], sys.argv[2]
hdr = open(path, "rb").read(128)
u32 = lambda o: int.from_bytes(hdr[o:o + 4], "little")
hb, count = u32(12), int.from_bytes(hdr[16:24], "little")
c, h, w, dtype = u32(24), u32(28), u32(32), u32(36)
vmax = float(np.frombuffer(hdr[44:48], "<f4")[0])
n = c * h * w
nb = {1: n, 2: 4 * n, 3: (n + 7) // 8}[dtype]
raw = np.fromfile(path, np.uint8, count * nb, offset=hb).reshape(count, nb)
x = raw.astype(np.float32) if dtype == 1 else raw.view("<f4") if dtype == 2 else np.unpackbits(raw, axis=1)[:, :n].astype(np.float32)
np.save(out, (x / np.float32(vmax)).astype(np.float32))
PY
}

# one CASE NAME MODEL REF.hpd BATCH.hpd TRUTH: ours (combined + members) and the peers
one() {
    name=$1; model=$2; ref=$3; bat=$4; truth=$5; d=$B/run
    if ! [ $d/scorer.hps -nt "$ref" ]; then # once per reference set: fit and calibrate, save the scorer
        t0=$(date +%s.%N)
        $H outliers --model "$model" --batch "$bat" --reference "$ref" --save-scorer $d/scorer.hps --threads $THREADS \
            --out $d/o >$d/o.txt 2>&1 || { cat $d/o.txt; exit 1; }
        echo "{\"case\": \"fit/$name\", \"seconds\": $(echo "$(date +%s.%N) - $t0" | bc)}" >>$RES
    fi
    t0=$(date +%s.%N)
    $H outliers --model "$model" --batch "$bat" --scorer $d/scorer.hps --truth "$truth" --threads $THREADS --out $d/o \
        >$d/o.txt 2>&1 || { cat $d/o.txt; exit 1; }
    t1=$(date +%s.%N)
    $PY bench/outliers/report.py ours $d/o/outliers.json "$name" "$(echo "$t1 - $t0" | bc)" >>$RES || exit 1
    if [ "$PEERS" = 1 ]; then
        if ! [ $d/rp.npy -nt "$ref" ]; then # once per reference set (each case writes its own)
            rm -f $d/rp.npy
            $H encode --model "$model" --data "$ref" --out $d/er --threads $THREADS >/dev/null 2>&1 || exit 1
            hpd2npy "$ref" $d/rp.npy
        fi
        $H encode --model "$model" --data "$bat" --out $d/eb --threads $THREADS >/dev/null 2>&1 || exit 1
        $PY -c "import json,sys; r=json.load(open('$d/o/outliers.json'))['ranked']; t=[0]*len(r)
for e in r: t[e['index']]=e['truth']
open('$d/truth.txt','w').write(''.join(f'{v}\n' for v in t))" || exit 1
        hpd2npy "$bat" $d/bp.npy
        OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS $PY bench/outliers_peers.py --ref-codes $d/er/mu.npy \
            --batch-codes $d/eb/mu.npy --truth $d/truth.txt --ref-pixels $d/rp.npy --batch-pixels $d/bp.npy \
            --case "$name" --out $RES || exit 1
    fi
    printf '%s: %s\n' "$name" "$(grep '^AUROC' $d/o.txt)"
}
mkdir -p $B/run

for p in $PROTOCOLS; do case $p in
shapes3d)
    [ -f $B/poolA.hpd ] || build/gen_shapes3d --random 20000 --seed 21 --quiet $B/poolA.hpd || exit 1
    [ -f $B/poolB.hpd ] || build/gen_shapes3d --random 20000 --seed 22 --quiet $B/poolB.hpd || exit 1
    for c in "floor_hue_4_5 floor_hue=0-3|6-9 floor_hue=4|5" "wall_hue_4_5 wall_hue=0-3|6-9 wall_hue=4|5" \
             "object_hue_4_5 object_hue=0-3|6-9 object_hue=4|5" "scale_6_7 scale=0-5 scale=6|7" \
             "scale_3_4 scale=0-2|5-7 scale=3|4" "shape_3 shape=0-2 shape=3"; do
        set -- $c
        case " $CASES " in *" $1 "*) ;; *) continue ;; esac
        $H batch --data $B/poolA.hpd --normal "$2" --n-normal $NREF --n-outlier 0 --seed 100 --out $B/ref.hpd >/dev/null || exit 1
        s=1
        while [ $s -le $BATCHES ]; do
            $H batch --data $B/poolB.hpd --normal "$2" --n-normal 325 --outlier "$3" --n-outlier 25 --seed $s \
                --out $B/bat.hpd >/dev/null || exit 1
            one "shapes3d/$1" $MODEL3 $B/ref.hpd $B/bat.hpd is_outlier=1
            s=$((s + 1))
        done
    done ;;
fashion|foreign)
    FM=build/foreign/fashion/model.hpm
    [ -f data/fashion-mnist/train.hpd ] && [ -f data/mnist/test.hpd ] ||
        { echo "bench/outliers: run make data-mnist data-fashion first"; exit 1; }
    [ -f $FM ] || $H train --preset mlp-mnist --data data/fashion-mnist/train.hpd --steps 4690 --batch-size 128 \
        --seed 1 --threads $THREADS --out build/foreign/fashion >/dev/null || exit 1
    if [ $p = fashion ]; then
        for k in 0 1 2 3 4 5 6 7 8 9; do
            others=$(seq 0 9 | grep -v "^$k\$" | tr '\n' '|' | sed 's/|$//')
            $H batch --data data/fashion-mnist/train.hpd --normal "class=$others" --n-normal $NREF --n-outlier 0 \
                --seed 100 --out $B/ref.hpd >/dev/null &&
                $H batch --data data/fashion-mnist/test.hpd --normal "class=$others" --n-normal 900 --outlier "class=$k" \
                    --n-outlier 100 --seed 1 --out $B/bat.hpd >/dev/null || exit 1
            one "fashion/class_$k" $FM $B/ref.hpd $B/bat.hpd is_outlier=1
        done
    else
        # bench/foreign/run.sh writes the mix (label 1 = MNIST) and runs its own table once
        [ -f build/foreign/mix.hpd ] || N=1000 sh bench/foreign/run.sh >/dev/null 2>&1
        [ -f build/foreign/mix.hpd ] || { echo "bench/outliers: bench/foreign/run.sh did not write the mix"; exit 1; }
        $H batch --data data/fashion-mnist/train.hpd --normal class=0-9 --n-normal $NREF --n-outlier 0 --seed 7 \
            --out $B/ref.hpd >/dev/null || exit 1
        one "foreign/fashion_to_mnist" $FM $B/ref.hpd build/foreign/mix.hpd class=1
    fi ;;
calib)
    [ -f $B/poolA.hpd ] && [ -f $B/poolB.hpd ] || { echo "bench/outliers: run PROTOCOLS=shapes3d first (pools)"; exit 1; }
    $H batch --data $B/poolA.hpd --normal "floor_hue=0-3|6-9" --n-normal 5000 --n-outlier 0 --seed 100 --out $B/cref.hpd >/dev/null &&
        $H batch --data $B/poolB.hpd --normal "floor_hue=0-3|6-9" --n-normal 5000 --n-outlier 0 --seed 101 --out $B/cbat.hpd >/dev/null &&
        $H batch --data data/fashion-mnist/train.hpd --normal class=0-9 --n-normal 5000 --n-outlier 0 --seed 100 --out $B/fref.hpd >/dev/null &&
        $H batch --data data/fashion-mnist/test.hpd --normal class=0-9 --n-normal 5000 --n-outlier 0 --seed 101 --out $B/fbat.hpd >/dev/null || exit 1
    # Fashion-MNIST twice: the reference from the model's own training pictures (what the model
    # has seen looks more normal than fresh pictures: calibration too lenient), and from half of
    # the test set, the fresh normals the other half (a fixed permutation, seed 0)
    $PY - "$B" <<'PY' || exit 1
import gzip, sys, numpy as np
b = sys.argv[1]
img = np.frombuffer(gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz").read(), np.uint8, offset=16).reshape(-1, 28, 28)
lab = np.frombuffer(gzip.open("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz").read(), np.uint8, offset=8)
perm = np.random.default_rng(0).permutation(len(img))
for name, sel in (("ta", perm[:5000]), ("tb", perm[5000:])):
    with open(f"{b}/{name}-img.idx", "wb") as f:
        f.write(np.array([0x803, len(sel), 28, 28], ">u4").tobytes()); f.write(img[sel].tobytes())
    with open(f"{b}/{name}-lab.idx", "wb") as f:
        f.write(np.array([0x801, len(sel)], ">u4").tobytes()); f.write(lab[sel].tobytes())
PY
    build/idx2hpd $B/ta-img.idx $B/ta-lab.idx $B/ta.hpd >/dev/null && build/idx2hpd $B/tb-img.idx $B/tb-lab.idx $B/tb.hpd >/dev/null || exit 1
    for c in "shapes3d $MODEL3 $B/cref.hpd $B/cbat.hpd" "fashion(train_reference) build/foreign/fashion/model.hpm $B/fref.hpd $B/fbat.hpd" \
             "fashion(test_halves) build/foreign/fashion/model.hpm $B/ta.hpd $B/tb.hpd"; do
        set -- $c
        for a in 0.01 0.05; do
            if [ $a = 0.01 ]; then src="--reference $3 --save-scorer $B/run/c.hps"; else src="--scorer $B/run/c.hps"; fi
            $H outliers --model $2 --batch $4 $src --fpr $a --threads $THREADS --out $B/run/c >$B/run/c.txt 2>&1 ||
                { cat $B/run/c.txt; exit 1; }
            f=$(sed -n 's/^  "flagged": \([0-9]*\),/\1/p' $B/run/c/outliers.json)
            echo "{\"case\": \"calib/$1\", \"detector\": \"combined\", \"fpr_requested\": $a, \"flagged\": $f, \"n\": 5000}" >>$RES
            echo "calib/$1: --fpr $a flagged $f of 5000"
        done
    done ;;
*) echo "bench/outliers: unknown protocol $p"; exit 1 ;;
esac; done
$PY bench/outliers/report.py table $RES

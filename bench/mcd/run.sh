#!/bin/sh
# bench/mcd/run.sh - FastMCD of hephaestus beside scikit-learn's MinCovDet (issue #21 item 7).
# Two sets of 10 batches: the demo's Shapes3D context batches (325 normal pictures of one
# shape, wall hue and object hue, 25 that break a rule), encoded by the shipped model with
# `hephaestus encode`; and Gaussian codes (350 x 12, 25 shifted by 4 along a random direction).
# Prints one table per set (bench/mcd/compare.py says what each column is). Needs
# python3-sklearn and libstb-dev; about 3 minutes on 2 cores. Not part of make test.
cd "$(dirname "$0")/../.." || exit 1
B=build/mcd
PY=/usr/bin/python3
MODEL=${MODEL:-data/models/shapes3d_betatcvae.hpm}
mkdir -p "$B" || exit 1
$PY -c 'import sklearn' 2>/dev/null || { echo "bench/mcd: needs python3-sklearn (apt-get install python3-sklearn)"; exit 1; }
F="-std=c99 -O2 -fopenmp -D_POSIX_C_SOURCE=200809L -D_FILE_OFFSET_BITS=64 -I."
cc $F bench/mcd/mcd_fit.c -o $B/mcd_fit -lm && cc $F tools/hephaestus.c -o $B/hephaestus -lstb -lm &&
    cc $F tools/gen_shapes3d.c -o $B/gen_shapes3d -lstb -lm || exit 1
[ -f $B/pool.hpd ] || $B/gen_shapes3d --where shape=2,wall_hue=3 --quiet $B/pool.hpd || exit 1
cases=""
for s in 1 2 3 4 5 6 7 8 9 10; do
    $B/hephaestus batch --data $B/pool.hpd --normal object_hue=0 --n-normal 325 --outlier violate \
        --n-outlier 25 --seed $s --out $B/b$s.hpd >/dev/null &&
        $B/hephaestus encode --model "$MODEL" --data $B/b$s.hpd --out $B/e$s >/dev/null 2>&1 || exit 1
    awk -F, 'NR > 1 { print $9 }' $B/e$s/codes.csv > $B/e$s/truth.txt # is_outlier, after 6 factors
    cases="$cases $B/e$s/mu.npy:$B/e$s/truth.txt"
done
echo "Shapes3D context batches, the shipped model:"
$PY bench/mcd/compare.py $B/mcd_fit $cases || exit 1
$PY - "$B" <<'PY' || exit 1
import sys, numpy as np
b = sys.argv[1]
for s in range(1, 11):
    g = np.random.default_rng(s)
    x = g.standard_normal((350, 12)).astype(np.float32)
    u = g.standard_normal(12); u /= np.linalg.norm(u)
    x[325:] += (4.0 * u).astype(np.float32)
    np.save(f"{b}/g{s}.npy", x)
    np.savetxt(f"{b}/g{s}.txt", np.r_[np.zeros(325), np.ones(25)], fmt="%d")
PY
cases=""
for s in 1 2 3 4 5 6 7 8 9 10; do cases="$cases $B/g$s.npy:$B/g$s.txt"; done
echo
echo "Gaussian codes (350 x 12, 25 shifted by 4 along a random direction):"
$PY bench/mcd/compare.py $B/mcd_fit $cases

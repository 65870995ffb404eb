#!/bin/sh
# make demo: the main job on a fresh machine, in a few minutes on 2 cores.
#  1. a beta-TCVAE on Shapes3D-like scenes: the weights the project trained and ships
#     (data/models/shapes3d_betatcvae.hpm; how they were made: data/models/README.md), or,
#     when that file is missing, a short training run here (DEMO_STEPS steps, ~8 minutes);
#  2. the seed's outlier experiments on freshly rendered batches: semantic outliers over 10
#     batches (AUROC mean and worst), counterfactual experiments 1 and 2;
#  3. one context batch through the CLI and its self-contained HTML report.
set -e
start=$(date +%s)
B=build
OUT=out/demo
mkdir -p "$OUT"
MODEL=${DEMO_MODEL:-data/models/shapes3d_betatcvae.hpm}
if [ ! -f "$MODEL" ]; then
  echo "demo: $MODEL not found; training a small beta-TCVAE for ${DEMO_STEPS:-1500} steps instead"
  [ -f "$OUT/train.hpd" ] || $B/gen_shapes3d --random 30000 --seed 11 --quiet "$OUT/train.hpd"
  $B/hephaestus train --preset cnn-shapes3d --objective tcvae --beta 6 --ramp-steps 500 \
      --lr 5e-4 --batch-size 64 --steps "${DEMO_STEPS:-1500}" --data "$OUT/train.hpd" --out "$OUT/model"
  MODEL=$OUT/model/model.hpm
fi
echo "demo: model $MODEL"
$B/outliers_shapes3d --model "$MODEL" --batches 10 --seed 2026 --out "$OUT/experiments" | tee "$OUT/experiments.txt"
# one batch through the CLI: a pool of every sphere in front of a green wall (12,000 pictures),
# normals with a red object, outliers with any other object colour
[ -f "$OUT/pool.hpd" ] || $B/gen_shapes3d --where shape=2,wall_hue=3 --quiet "$OUT/pool.hpd"
$B/hephaestus batch --data "$OUT/pool.hpd" --normal object_hue=0 --n-normal 325 \
    --outlier violate --n-outlier 25 --seed 3 --out "$OUT/batch.hpd"
$B/hephaestus report --model "$MODEL" --batch "$OUT/batch.hpd" --out "$OUT/report"
echo "demo: done in $(( $(date +%s) - start )) s; results in $OUT/ (open $OUT/report/report.html)"

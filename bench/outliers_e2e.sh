#!/bin/sh
# bench/outliers_e2e.sh - the whole `hephaestus outliers` run on a 350-picture batch, end to end
# (model load, reading the pictures, encode, FastMCD fit, scoring, explanations, writing the
# results), beside the same pipeline in PyTorch + scikit-learn (bench/outliers_peer.py).
# Issue #19. Each repeat is one whole process from start to exit (wall time). Run --help.
set -eu

usage() {
    cat <<'EOF'
usage: sh bench/outliers_e2e.sh [options]
Times N whole runs of
  C:    build/hephaestus outliers --model M.hpm --batch B.hpd --out DIR --threads T
  peer: /usr/bin/python3 bench/outliers_peer.py --model M.safetensors --batch B.hpd --out DIR
        --threads T   (torch.set_num_threads(T), OpenBLAS of libopenblas0-pthread) in up to
        four configurations: OPENBLAS_NUM_THREADS 1 or T, glibc's malloc as it is or tuned as
        `make bench` does (GLIBC_TUNABLES mmap_threshold 32 MiB, trim_threshold 1 GiB, so
        PyTorch keeps its buffers instead of mapping fresh pages for every layer); the fastest
        is reported and named (the C side does not change with that tuning: checked)
for T = 1 and 2, and prints the medians as a Markdown table with the ratio peer / C, then how
far the two rankings agree (Spearman of D^2, top-25 overlap, flagged pictures, AUROC).
Both sides do the CLI's default work: encode, mcd:0.9, D^2, chi^2 0.975 threshold, z-scores
and contributions, outliers.csv, outliers.json, md_scores.png, md_histogram.png, auroc.txt,
each file written to a temporary, fsynced and renamed.
The batch (made once, kept in --work): `make demo`'s recipe, 325 normals + 25 outliers:
  gen_shapes3d --where shape=2,wall_hue=3 pool.hpd          (12,000 pictures, deleted after)
  hephaestus batch --data pool.hpd --normal object_hue=0 --n-normal 325 \
      --outlier violate --n-outlier 25 --seed 3 --out batch.hpd
and the model exported once for PyTorch: hephaestus export --format safetensors M.hpm M.safetensors.
Options:
  --repeats N     timed runs of each configuration (default 5; one warm-up run more)
  --threads LIST  thread counts (default "1 2")
  --model FILE    the checkpoint (default data/models/shapes3d_betatcvae.hpm)
  --cli FILE      the CLI to time (default build/hephaestus; `make -j2 all` builds it)
  --work DIR      batch, exported model and result folders (default ${TMPDIR:-/tmp}/hephaestus_outliers_e2e)
  --out FILE      JSON lines of the results (default bench/results/outliers_e2e.json)
  --no-stages     skip the extra peer run that prints where its time goes
  --timer T       hyperfine or date (default: hyperfine when installed)
  -h, --help      this help
Timer: hyperfine when installed, else a date +%s.%N loop. Run it nice'd on a shared machine;
the environment goes to both sides, e.g. OMP_WAIT_POLICY=passive when another job holds a core
(spinning OpenMP threads then make --threads 2 slower than 1):
  nice -n 10 sh bench/outliers_e2e.sh
EOF
}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
REPEATS=5
THREADS="1 2"
MODEL=$ROOT/data/models/shapes3d_betatcvae.hpm
CLI=$ROOT/build/hephaestus
WORK=${TMPDIR:-/tmp}/hephaestus_outliers_e2e
OUT=$ROOT/bench/results/outliers_e2e.json
STAGES=1
TIMER=""
PY=/usr/bin/python3
BLAS=/usr/lib/x86_64-linux-gnu/openblas-pthread
TUNED=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824
while [ $# -gt 0 ]; do
    case $1 in
        --repeats) REPEATS=$2; shift ;;
        --threads) THREADS=$2; shift ;;
        --model) MODEL=$2; shift ;;
        --cli) CLI=$2; shift ;;
        --work) WORK=$2; shift ;;
        --out) OUT=$2; shift ;;
        --no-stages) STAGES=0 ;;
        --timer) TIMER=$2; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "outliers_e2e.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
GEN=$(dirname "$CLI")/gen_shapes3d
[ -x "$GEN" ] || GEN=$ROOT/build/gen_shapes3d
for f in "$CLI" "$GEN" "$PY"; do
    [ -x "$f" ] || { echo "outliers_e2e.sh: $f is missing (make -j2 all)" >&2; exit 1; }
done
[ -f "$MODEL" ] || { echo "outliers_e2e.sh: no model $MODEL" >&2; exit 1; }

# ---- inputs, made once
mkdir -p "$WORK" "$(dirname "$OUT")"
BATCH=$WORK/batch.hpd
ST=$WORK/model.safetensors
if [ ! -f "$BATCH" ]; then
    "$GEN" --where shape=2,wall_hue=3 --quiet "$WORK/pool.hpd"
    "$CLI" batch --data "$WORK/pool.hpd" --normal object_hue=0 --n-normal 325 --outlier violate \
        --n-outlier 25 --seed 3 --out "$BATCH"
    rm -f "$WORK/pool.hpd"
fi
if [ ! -f "$ST" ] || [ -n "$(find "$MODEL" -newer "$ST")" ]; then
    "$CLI" export --format safetensors "$MODEL" "$ST" >/dev/null
fi

# ---- timing: time_cmd NAME COMMAND sets MED (median seconds) and TIMES (comma-separated)
if [ -z "$TIMER" ]; then
    if command -v hyperfine >/dev/null 2>&1; then TIMER="hyperfine"; else TIMER="date"; fi
fi
case $TIMER in hyperfine|date) ;; *) echo "outliers_e2e.sh: --timer takes hyperfine or date" >&2; exit 2 ;; esac
time_cmd() {
    if [ "$TIMER" = hyperfine ]; then
        hyperfine -S sh --style none --warmup 1 --runs "$REPEATS" --export-json "$WORK/$1.hf.json" "$2" >/dev/null
        # shellcheck disable=SC2046 # two words: the median and the list
        set -- $("$PY" -c 'import json, sys; r = json.load(open(sys.argv[1]))["results"][0]
print("%.4f" % r["median"], ",".join("%.4f" % t for t in r["times"]))' "$WORK/$1.hf.json")
    else
        sh -c "$2" >/dev/null 2>&1
        ts="" i=0
        while [ $i -lt "$REPEATS" ]; do
            a=$(date +%s.%N); sh -c "$2" >/dev/null 2>&1; b=$(date +%s.%N)
            ts="$ts $(echo "$a $b" | awk '{printf "%.4f", $2 - $1}')"
            i=$((i + 1))
        done
        # shellcheck disable=SC2046 # two words: the median and the list
        set -- $(echo "$ts" | tr ' ' '\n' | sort -g | awk 'NF {v[++k] = $1; s = s (k > 1 ? "," : "") $1}
            END {printf "%.4f %s\n", k % 2 ? v[(k + 1) / 2] : (v[k / 2] + v[k / 2 + 1]) / 2, s}')
    fi
    MED=$1 TIMES=$2
}

TMPJ=$OUT.tmp.$$
: >"$TMPJ"
ROWS=""
echo "timing: $TIMER, $REPEATS runs each (+1 warm-up); batch $BATCH; work $WORK" >&2
for T in $THREADS; do
    time_cmd "c_$T" "'$CLI' outliers --model '$MODEL' --batch '$BATCH' --out '$WORK/res_c_$T' --threads $T"
    C=$MED
    echo "{\"bench\": \"outliers_e2e\", \"side\": \"c\", \"threads\": $T, \"median_s\": $C, \"times_s\": [$TIMES], \"timer\": \"$TIMER\", \"cli\": \"$CLI\"}" >>"$TMPJ"
    echo "  C     threads $T: median $C s ($TIMES)" >&2
    BEST="" BESTB=""
    for B in $(echo 1 "$T" | tr ' ' '\n' | sort -un); do
        for MALLOC in plain tuned; do
            if [ $MALLOC = tuned ]; then ENVM="GLIBC_TUNABLES=$TUNED"; else ENVM=""; fi
            K=${T}_${B}_$MALLOC
            time_cmd "peer_$K" "$ENVM LD_LIBRARY_PATH='$BLAS' OPENBLAS_NUM_THREADS=$B '$PY' '$ROOT/bench/outliers_peer.py' --model '$ST' --batch '$BATCH' --out '$WORK/res_py_$K' --threads $T"
            echo "{\"bench\": \"outliers_e2e\", \"side\": \"peer\", \"threads\": $T, \"openblas_threads\": $B, \"malloc\": \"$MALLOC\", \"median_s\": $MED, \"times_s\": [$TIMES], \"timer\": \"$TIMER\"}" >>"$TMPJ"
            echo "  peer  threads $T, OPENBLAS_NUM_THREADS=$B, malloc $MALLOC: median $MED s ($TIMES)" >&2
            if [ -z "$BEST" ] || awk "BEGIN {exit !($MED < $BEST)}"; then BEST=$MED BESTB=$B BESTM=$MALLOC; fi
        done
    done
    RATIO=$(awk "BEGIN {printf \"%.2f\", $BEST / $C}")
    echo "{\"bench\": \"outliers_e2e\", \"row\": true, \"threads\": $T, \"c_s\": $C, \"peer_s\": $BEST, \"peer_config\": \"torch threads $T, OPENBLAS_NUM_THREADS=$BESTB, malloc $BESTM\", \"ratio_peer_over_c\": $RATIO}" >>"$TMPJ"
    ROWS="$ROWS| $T | $C | $BEST (torch $T, OpenBLAS $BESTB, malloc $BESTM) | $RATIO |
"
    LASTT=$T LASTK=${T}_${BESTB}_$BESTM
done

echo
echo "Whole \`hephaestus outliers\` run, 350 pictures (64x64 RGB), shipped Shapes3D model, median of $REPEATS ($TIMER):"
echo
echo "| threads | C (s) | PyTorch + scikit-learn (s) (config) | ratio peer / C |"
echo "|---|---|---|---|"
printf '%s' "$ROWS"
echo

# ---- did both do the same job? (the last thread count's result folders)
"$PY" - "$WORK/res_c_$LASTT/outliers.csv" "$WORK/res_py_$LASTK/outliers.csv" "$TMPJ" <<'EOF'
import csv, json, sys
import numpy as np
from scipy.stats import spearmanr

def read(path):
    rows = sorted(csv.DictReader(open(path)), key=lambda r: int(r["index"]))
    return np.array([float(r["score_d2"]) for r in rows]), np.array([r["flagged"] == "1" for r in rows])

(dc, fc), (dp, fp) = read(sys.argv[1]), read(sys.argv[2])
rho = spearmanr(dc, dp).correlation
top = len(set(np.argsort(-dc)[:25]) & set(np.argsort(-dp)[:25]))
rel = np.abs(dp - dc) / np.abs(dc)
a = dict(bench="outliers_e2e", agreement=True, spearman_d2=round(float(rho), 6), top25_overlap=int(top),
         flagged_c=int(fc.sum()), flagged_peer=int(fp.sum()), flagged_both=int((fc & fp).sum()),
         d2_rel_diff_median=float("%.3g" % np.median(rel)), d2_rel_diff_max=float("%.3g" % rel.max()))
print("Agreement (C vs peer, same batch): Spearman of D^2 %.4f; top-25 overlap %d of 25; flagged %d (C) / %d (peer), "
      "%d by both; D^2 relative difference median %.2g, max %.2g" % (rho, top, a["flagged_c"], a["flagged_peer"],
      a["flagged_both"], a["d2_rel_diff_median"], a["d2_rel_diff_max"]))
with open(sys.argv[3], "a") as f:
    f.write(json.dumps(a) + "\n")
EOF
for d in "$WORK/res_c_$LASTT" "$WORK/res_py_$LASTK"; do
    printf 'AUROC %s: %s\n' "$(basename "$d")" "$(cat "$d/auroc.txt")"
done
mv "$TMPJ" "$OUT"
echo "wrote $OUT"

if [ $STAGES = 1 ]; then
    echo
    echo "Where the peer's time goes (one more run, torch threads 1, OPENBLAS_NUM_THREADS=1, malloc tuned; interpreter start not included):"
    # shellcheck disable=SC2069 # the stage lines (stderr) only
    GLIBC_TUNABLES=$TUNED LD_LIBRARY_PATH=$BLAS OPENBLAS_NUM_THREADS=1 "$PY" "$ROOT/bench/outliers_peer.py" --model "$ST" --batch "$BATCH" \
        --out "$WORK/res_py_stages" --threads 1 --stages 2>&1 >/dev/null
fi

#!/bin/sh
# bench/run.sh - what `make bench` runs: speed and memory of Hephaestus beside PyTorch (DESIGN §10).
#
# Builds bench/bench.c with -O3 -march=native -ffp-contract=fast -fno-math-errno -fopenmp, then
# runs, each in its own process (so every peak memory belongs to one configuration), with C and
# PyTorch interleaved so that both see the same machine:
#   peak    the machine's FMA peak (GFLOP/s) on each thread count
#   train   the four reference models: images/s, ms/step, GFLOP/s, memory of a training step;
#           and the labelled models of issue #22: cvae-mnist (the conditional VAE's step with its
#           frozen classifier and label loss) and classifier-mnist (the 99.5 % BatchNorm CNN)
#   encode  encoder-only inference of cnn-shapes3d, and its matrix products alone (bench ceiling)
#   maha    Mahalanobis fit on 10,000 latents, then scoring (D = 12, 64 and 256)
#   busy    training again with one busy process beside it (a shell loop, no output): C with
#           the thread tuner (what `hephaestus train` does), C on fixed threads, and PyTorch
# PyTorch is measured at its best: at T threads, with OpenBLAS on 1 and on T threads (the
# faster is reported and named); the Mahalanobis scoring also against NumPy/SciPy and
# scikit-learn (bench/maha_peers.py), each way with OpenBLAS on 1 and on T threads.
# and bench/report.py writes the tables (stdout, bench/results/bench.md) and bench.json.
# The PyTorch side runs only when Debian's python3-torch is installed. Figures only: nothing
# here is a pass/fail check. Default total: about 10-15 minutes on 2 cores.
set -u

usage() {
    cat <<'EOF'
usage: sh bench/run.sh [options]
  --models LIST      comma-separated (default mlp-mnist,mlp-dsprites,cnn-dsprites,cnn-shapes3d,
                     cvae-mnist,classifier-mnist)
  --threads LIST     thread counts (default 1,2)
  --parts LIST       peak,train,encode,maha,busy (default all)
  --repeats N        repeats of every measurement, medians reported (default 3)
  --seconds S        timed window per training/inference run (default 5)
  --epochs E         mlp-mnist: timed epochs of real MNIST per run (default 1)
  --warmup S         untimed warm-up per run (default 1)
  --quick            --repeats 1 --seconds 2 --warmup 0.5 (a smoke run; figures are rough)
  --no-torch         C only
  --shared-machine   set OMP_WAIT_POLICY=passive (threads sleep instead of spinning: fairer
                     when other jobs share the cores, slower otherwise)
  --plain-malloc     do not set GLIBC_TUNABLES (see below)
  --out DIR          results folder (default bench/results)
Environment: CC (default cc), BENCH_BIN (use this binary instead of building one).
By default both sides run with GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:
glibc.malloc.trim_threshold=1073741824: without it glibc hands PyTorch's large temporaries
back to the kernel after every operation and PyTorch spends most of a step in page faults
(the C code allocates nothing while training, so it is unaffected).
EOF
}

MODELS=mlp-mnist,mlp-dsprites,cnn-dsprites,cnn-shapes3d,cvae-mnist,classifier-mnist
THREADS=1,2
PARTS=peak,train,encode,maha,busy
REPEATS=3
SECONDS_=5
EPOCHS=1
WARMUP=1
TORCH=1
SHARED=0
TUNE_MALLOC=1
OUT=bench/results
ARGS="$*"
while [ $# -gt 0 ]; do
    case "$1" in
    --models) MODELS=$2; shift ;;
    --threads) THREADS=$2; shift ;;
    --parts) PARTS=$2; shift ;;
    --repeats) REPEATS=$2; shift ;;
    --seconds) SECONDS_=$2; shift ;;
    --epochs) EPOCHS=$2; shift ;;
    --warmup) WARMUP=$2; shift ;;
    --quick) REPEATS=1; SECONDS_=2; WARMUP=0.5 ;;
    --no-torch) TORCH=0 ;;
    --shared-machine) SHARED=1 ;;
    --plain-malloc) TUNE_MALLOC=0 ;;
    --out) OUT=$2; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

cd "$(dirname "$0")/.." || exit 1
mkdir -p "$OUT" build || exit 1
has() { case ",$1," in *",$2,"*) return 0 ;; esac; return 1; }
list() { echo "$1" | tr ',' ' '; }

# ---- the machine --------------------------------------------------------------------------
LOAD0=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo 0)
if awk "BEGIN { exit !($LOAD0 > 0.5) }"; then
    echo "run.sh: WARNING: load average is $LOAD0 (> 0.5): other work is running, so the figures" >&2
    if [ "$SHARED" = 1 ]; then
        echo "        below mean little (--shared-machine: OpenMP threads sleep when idle)." >&2
    else
        echo "        below mean little. Stop it, or pass --shared-machine to at least let threads sleep." >&2
    fi
fi
if [ "$SHARED" = 1 ]; then export OMP_WAIT_POLICY=passive; fi
if [ "$TUNE_MALLOC" = 1 ]; then
    export GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824
fi

# ---- build --------------------------------------------------------------------------------
CFLAGS_BENCH="-std=c99 -O3 -march=native -ffp-contract=fast -fno-math-errno -fopenmp"
if [ -n "${BENCH_BIN:-}" ]; then
    BIN=$BENCH_BIN
else
    BIN=build/bench
    echo "building $BIN: ${CC:-cc} $CFLAGS_BENCH"
    ${CC:-cc} $CFLAGS_BENCH -DBENCH_CFLAGS="\"$CFLAGS_BENCH\"" -I. -o "$BIN" bench/bench.c -lm || exit 1
fi

# ---- PyTorch: Debian's python3-torch with its fastest BLAS ---------------------------------
PY=/usr/bin/python3.11
OBLAS=$(dpkg -L libopenblas0-pthread 2>/dev/null | grep '/libopenblas\.so\.0$' | head -n 1)
OBLAS_DIR=${OBLAS%/*}
TORCH_ENV="env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE"
[ -n "$OBLAS" ] && TORCH_ENV="$TORCH_ENV LD_LIBRARY_PATH=$OBLAS_DIR"
if [ "$TORCH" = 1 ]; then
    if [ -x "$PY" ] && $TORCH_ENV "$PY" -c 'import torch' 2>/dev/null; then
        [ -n "$OBLAS" ] || echo "run.sh: WARNING: libopenblas0-pthread is not installed (sh tools/deps.sh bench installs it): PyTorch and NumPy use Debian's reference BLAS, far from their best" >&2
    else
        echo "run.sh: Debian's python3-torch is not installed ($PY -c 'import torch' fails): C only" >&2
        TORCH=0
    fi
fi
# the peers' configurations at T threads: OpenBLAS on 1 thread, and on T threads when T > 1
ob_list() { if [ "$1" -gt 1 ]; then echo "1 $1"; else echo 1; fi; }
torch_cmd() { echo "$TORCH_ENV OPENBLAS_NUM_THREADS=$1 $PY bench/torch_bench.py"; }
peer_cmd() { echo "$TORCH_ENV OPENBLAS_NUM_THREADS=$1 $PY bench/maha_peers.py"; }
MAX_T=$(list "$THREADS" | tr ' ' '\n' | sort -n | tail -n 1)

# ---- data ---------------------------------------------------------------------------------
data_for() { # the .hpd file a model reads its pool from, if it is there
    case "$1" in
    mlp-mnist|cvae-mnist|classifier-mnist) [ -f data/mnist/train.hpd ] && echo data/mnist/train.hpd ;;
    *dsprites*) [ -f data/dsprites/dsprites.hpd ] && echo data/dsprites/dsprites.hpd ;;
    *shapes3d*) [ -f data/shapes3d/shapes3d.hpd ] && echo data/shapes3d/shapes3d.hpd ;;
    esac
}
if has "$MODELS" mlp-mnist && has "$PARTS" train && [ ! -f data/mnist/train.hpd ]; then
    echo "run.sh: data/mnist/train.hpd is missing (make data-mnist): mlp-mnist is skipped" >&2
    MODELS=$(echo ",$MODELS," | sed 's/,mlp-mnist,/,/; s/^,//; s/,$//')
fi

# ---- running ------------------------------------------------------------------------------
RAW=$OUT/raw.jsonl
CMDS=$OUT/commands.txt
: > "$RAW"
: > "$CMDS"
N_RUN=0
N_FAIL=0
CFG=""  # the configuration a run is tagged with (e.g. "OpenBLAS 1"), for the report
BUSY=0  # 1 while the busy process runs
run() { # run REP COMMAND...: one measurement, its JSON line tagged with the repeat
    rep=$1; shift
    N_RUN=$((N_RUN + 1))
    echo "$*" >> "$CMDS"
    printf '  [%d] %s\n' "$N_RUN" "$(echo "$*" | sed 's/ --info .*}'"'"'//; s/^env .* bench\/torch_bench.py/torch_bench.py/')" >&2
    line=$(eval "$@" | tail -n 1)
    case "$line" in
    "{"*) echo "$line" | sed "s/^{/{\"rep\":$rep,\"cfg\":\"$CFG\",\"busy\":$BUSY,/" >> "$RAW" ;;
    *) N_FAIL=$((N_FAIL + 1)); echo "run.sh: that run failed" >&2 ;;
    esac
}
q() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; } # shell-quote one word

START=$(date +%s)
echo "bench: models $MODELS, threads $THREADS, parts $PARTS, $REPEATS repeats of ${SECONDS_} s" \
     "(mlp-mnist: $EPOCHS epoch(s)), PyTorch $([ $TORCH = 1 ] && echo yes || echo no)," \
     "OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-unset}" >&2

if has "$PARTS" peak; then
    for t in $(list "$THREADS"); do
        for r in $(seq 1 "$REPEATS"); do run "$r" "$BIN" peak --threads "$t" --seconds 1 --json; done
    done
fi

if has "$PARTS" train; then
    for r in $(seq 1 "$REPEATS"); do
        for m in $(list "$MODELS"); do
            d=$(data_for "$m")
            dopt=${d:+--data $d}
            info=$("$BIN" info --model "$m")
            for t in $(list "$THREADS"); do
                common="--model $m --threads $t --seconds $SECONDS_ --epochs $EPOCHS --warmup $WARMUP $dopt --json"
                CFG=""; run "$r" "$BIN" train $common
                if [ "$TORCH" = 1 ]; then
                    for ob in $(ob_list "$t"); do
                        CFG="OpenBLAS $ob"; run "$r" $(torch_cmd "$ob") train $common --info "$(q "$info")"
                    done
                fi
            done
        done
    done
fi

if has "$PARTS" encode; then
    m=cnn-shapes3d
    d=$(data_for "$m")
    dopt=${d:+--data $d}
    info=$("$BIN" info --model "$m")
    for r in $(seq 1 "$REPEATS"); do
        for t in $(list "$THREADS"); do
            common="--model $m --threads $t --seconds $SECONDS_ --warmup $WARMUP $dopt --json"
            CFG=""; run "$r" "$BIN" encode $common
            run "$r" "$BIN" ceiling $(echo "$common" | sed 's/--data [^ ]*//')
            if [ "$TORCH" = 1 ]; then
                for ob in $(ob_list "$t"); do
                    CFG="OpenBLAS $ob"; run "$r" $(torch_cmd "$ob") encode $common --info "$(q "$info")"
                done
            fi
        done
    done
fi

if has "$PARTS" maha; then
    for r in $(seq 1 "$REPEATS"); do
        for D in 12 64 256; do
            for t in $(list "$THREADS"); do
                common="--dim $D --threads $t --fit 10000 --score 100000 --seconds 1 --json"
                CFG=""; run "$r" "$BIN" maha $common
                [ "$TORCH" = 1 ] || continue
                for ob in $(ob_list "$t"); do
                    CFG="OpenBLAS $ob"; run "$r" $(torch_cmd "$ob") maha $common
                    for way in scipy-cholesky numpy-precision sklearn; do
                        run "$r" $(peer_cmd "$ob") --way $way $common
                    done
                done
            done
        done
    done
fi

# ---- one core busy: training beside a busy process (a shell loop that writes nothing) -------
if has "$PARTS" busy && has "$PARTS" train; then
    sh -c 'while :; do :; done' &
    SPIN=$!
    trap 'kill $SPIN 2>/dev/null' EXIT INT TERM
    BUSY=1
    t=$MAX_T
    for r in $(seq 1 "$REPEATS"); do
        for m in $(list "$MODELS"); do
            case $m in cvae-mnist|classifier-mnist) continue ;; esac # the tuner's case is the VAEs'
            d=$(data_for "$m")
            dopt=${d:+--data $d}
            info=$("$BIN" info --model "$m")
            # twice the window: the tuner's first probes fall in the warm-up and the window
            common="--model $m --threads $t --seconds $((SECONDS_ * 2)) --epochs $((EPOCHS * 2)) --warmup $WARMUP $dopt --json"
            CFG="tuner"; run "$r" "$BIN" train $common --adapt
            CFG="fixed"; run "$r" "$BIN" train $common
            [ "$t" -gt 1 ] && { CFG="fixed"; run "$r" "$BIN" train $(echo "$common" | sed "s/--threads $t/--threads 1/"); }
            if [ "$TORCH" = 1 ]; then
                for ob in $(ob_list "$t"); do
                    CFG="OpenBLAS $ob"; run "$r" $(torch_cmd "$ob") train $common --info "$(q "$info")"
                done
            fi
        done
    done
    BUSY=0
    kill $SPIN 2>/dev/null
    trap - EXIT INT TERM
fi

LOAD1=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo 0)
ELAPSED=$(( $(date +%s) - START ))
META=$OUT/meta.txt
{
    echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')"
    echo "cores=$(nproc 2>/dev/null || echo '?')"
    echo "load_start=$LOAD0"
    echo "load_end=$LOAD1"
    echo "elapsed_s=$ELAPSED"
    echo "cc=$(${CC:-cc} --version 2>/dev/null | head -n 1)"
    echo "cflags=$CFLAGS_BENCH"
    echo "torch_env=$([ $TORCH = 1 ] && echo "$TORCH_ENV OPENBLAS_NUM_THREADS=1 or T" || echo 'not run')"
    echo "omp_wait_policy=${OMP_WAIT_POLICY:-unset}"
    echo "glibc_tunables=${GLIBC_TUNABLES:-unset}"
    echo "command=sh bench/run.sh $ARGS"
    echo "repeats=$REPEATS"
    echo "seconds=$SECONDS_"
    echo "epochs=$EPOCHS"
    echo "failed_runs=$N_FAIL"
} > "$META"
echo "bench: $N_RUN runs ($N_FAIL failed) in $ELAPSED s; load average $LOAD0 at the start, $LOAD1 at the end" >&2

PYR=python3
[ -x /usr/bin/python3 ] && PYR=/usr/bin/python3
if command -v "$PYR" >/dev/null 2>&1; then
    "$PYR" bench/report.py --raw "$RAW" --meta "$META" --commands "$CMDS" --out "$OUT"
else
    echo "run.sh: no python3 for the tables; the raw results are in $RAW" >&2
    cat "$RAW"
fi
